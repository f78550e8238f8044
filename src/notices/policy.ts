/**
 * What the merchant's config permits for a notice (DESIGN.md "Declarative config",
 * `merchants[].notices`): which channels, which template and how its fields map from the
 * notice's data, quiet hours and the per-user daily cap. Pure; the service checks a request
 * with it at enqueue time and the dispatcher again at send time (config may change between).
 */
import type { AppConfig, MerchantConfig } from '../config/index.ts';
import type { TemplateMessage } from '../wechat/api-messages.ts';
import type { QuietHours } from './schedule.ts';
import type { ChannelChoice } from './notices.types.ts';

export interface MerchantNotices {
  merchantId: string;
  appId: string;
  policy: ChannelChoice;
  templates: MerchantConfig['notices']['templates'];
  quietHours: QuietHours | undefined;
  perUserDailyCap: number | undefined;
  /** Time zone of the merchant's "day" (quiet hours' zone, else Beijing time). */
  timeZone: string;
}

export type MerchantDirectory = (merchantId: string) => MerchantNotices | undefined;

export function createMerchantDirectory(config: Pick<AppConfig, 'merchants' | 'officialAccounts'>): MerchantDirectory {
  const byId = new Map<string, MerchantNotices>();
  for (const m of config.merchants) {
    const account = config.officialAccounts.find((a) => a.id === m.officialAccount);
    if (!account) continue;
    byId.set(m.id, {
      merchantId: m.id,
      appId: account.appId,
      policy: m.notices.channel,
      templates: m.notices.templates,
      quietHours: m.notices.quietHours,
      perUserDailyCap: m.notices.perUserDailyCap,
      timeZone: m.notices.quietHours?.timeZone ?? 'Asia/Shanghai',
    });
  }
  return (id) => byId.get(id);
}

export interface Channels {
  cs: boolean;
  template: boolean;
}

/**
 * Channels a notice may use: the merchant's permission, narrowed by the request, and only
 * those it has content for (a customer-service message needs `text`, a template message a
 * template the merchant configured).
 */
export function channelsFor(
  merchant: MerchantNotices,
  notice: { channel: ChannelChoice; text?: string | null | undefined; template?: string | null | undefined },
): Channels {
  const permits = (c: 'cs' | 'template', choice: ChannelChoice) => choice === 'auto' || (c === 'cs' ? choice === 'customer-service' : choice === 'template');
  const hasTemplate = notice.template !== null && notice.template !== undefined && merchant.templates[notice.template] !== undefined;
  return {
    cs: permits('cs', merchant.policy) && permits('cs', notice.channel) && Boolean(notice.text),
    template: permits('template', merchant.policy) && permits('template', notice.channel) && hasTemplate,
  };
}

/** The notice's data fields a template needs that the notice lacks. */
export function missingTemplateFields(merchant: MerchantNotices, template: string, data: Record<string, unknown>): string[] {
  const t = merchant.templates[template];
  if (!t) return [];
  return Object.values(t.fields).filter((field) => data[field] === undefined || String(data[field]).trim() === '');
}

/** The template message body; `client_msg_id` is the delivery id (SECURITY.md D2). */
export function templateMessage(
  merchant: MerchantNotices,
  d: { id: string; openid: string; notice: { template: string | null; data: Record<string, string | number>; url: string | null } },
): TemplateMessage | null {
  const t = d.notice.template ? merchant.templates[d.notice.template] : undefined;
  if (!t) return null;
  const data: TemplateMessage['data'] = {};
  for (const [keyword, field] of Object.entries(t.fields)) data[keyword] = { value: String(d.notice.data[field] ?? '') };
  return { touser: d.openid, template_id: t.templateId, client_msg_id: d.id, data, ...(d.notice.url ? { url: d.notice.url } : {}) };
}

/** The customer-service text: the notice's text, and its link on a line of its own. */
export function customText(notice: { text: string | null; url: string | null }): string {
  return notice.url ? `${notice.text ?? ''}\n${notice.url}` : (notice.text ?? '');
}
