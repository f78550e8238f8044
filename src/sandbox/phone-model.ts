/**
 * The chat a simulated person sees with one official account: what they sent (from the
 * push log) and what reached them (CS messages, passive replies, template and subscription
 * cards), plus the "该公众号暂时无法提供服务" line WeChat shows when the server failed.
 */
import { isUserFacing } from './pusher.ts';
import type { DeliveredMessage, PushResult, SandboxState } from './state.ts';

export type TextPart = { text: string; href?: string };

export interface ChatItem {
  order: number;
  time: string;
  side: 'user' | 'account' | 'system';
  kind: 'text' | 'card' | 'template' | 'notice' | 'event';
  parts?: TextPart[];
  tag?: string;
  title?: string;
  description?: string;
  url?: string;
  rows?: Array<{ label: string; value: string }>;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

/** Beijing time, as the phone would show it. */
export const clock = (ms: number): string => new Date(ms + 8 * 3600_000).toISOString().slice(11, 19);

/** CS text may hold `<a href="…">…</a>` (§3.1); keep the links clickable, everything else is text. */
export function textParts(content: string): TextPart[] {
  const parts: TextPart[] = [];
  const re = /<a\s+href=(["'])(.*?)\1[^>]*>(.*?)<\/a>/gis;
  let last = 0;
  for (const m of content.matchAll(re)) {
    if (m.index > last) parts.push({ text: content.slice(last, m.index) });
    const href = m[2] ?? '';
    parts.push(/^https?:\/\//i.test(href) ? { text: m[3] ?? href, href } : { text: m[0] });
    last = m.index + m[0].length;
  }
  if (last < content.length) parts.push({ text: content.slice(last) });
  return parts;
}

function fromPush(p: PushResult): ChatItem[] {
  const f = p.fields;
  const base = { order: p.seq, time: clock(p.at) };
  const items: ChatItem[] = [];
  const sys = (text: string): ChatItem => ({ ...base, side: 'system', kind: 'event', parts: [{ text }] });
  if (f.MsgType === 'event') {
    const key = str(f.EventKey);
    const byEvent: Record<string, string> = {
      subscribe: key.startsWith('qrscene_') ? `关注了公众号（扫码 ${key.slice(8)}） Followed via QR` : '关注了公众号 Followed',
      unsubscribe: '取消关注 Unfollowed',
      SCAN: `扫描了二维码 Scanned QR (scene ${key})`,
      CLICK: `点击菜单 Clicked menu「${key}」`,
      VIEW: `打开链接 Opened ${key}`,
      scancode_push: `扫一扫 Scanned: ${str(obj(f.ScanCodeInfo).ScanResult)}`,
      scancode_waitmsg: `扫一扫 Scanned: ${str(obj(f.ScanCodeInfo).ScanResult)}`,
    };
    const text = byEvent[str(f.Event)];
    if (text) items.push(sys(text));
  } else {
    const byType: Record<string, string> = {
      text: str(f.Content),
      voice: `🎤 语音 Voice${f.Recognition ? `：${str(f.Recognition)}` : ''}`,
      image: '🖼 图片 Image',
      location: `📍 ${str(f.Label) || `${str(f.Location_X)}, ${str(f.Location_Y)}`}`,
    };
    items.push({ ...base, side: 'user', kind: 'text', parts: [{ text: byType[str(f.MsgType)] ?? `[${str(f.MsgType)}]` }] });
  }
  if (p.userNotice && isUserFacing(f)) {
    items.push({ order: p.seq + 0.5, time: clock(p.at), side: 'system', kind: 'notice', parts: [{ text: p.userNotice }] });
  }
  return items;
}

function fromDelivery(m: DeliveredMessage): ChatItem {
  const base = { order: m.seq, time: clock(m.at), side: 'account' as const };
  const p = m.payload;
  const tag = { custom: '客服消息 CS message', passive: '被动回复 Reply', template: '模板消息 Template', subscribe: '订阅通知 Notice' }[m.kind];
  if (m.kind === 'template' || m.kind === 'subscribe') {
    const data = obj(p.data);
    const keywords = Array.isArray(p.keywords) ? (p.keywords as string[]) : Object.keys(data);
    return {
      ...base,
      kind: 'template',
      tag,
      title: str(p.template_id),
      rows: keywords.map((k) => ({ label: k, value: str(obj(data[k]).value) })),
      url: str(p.url) || str(p.page) || undefined,
    };
  }
  const type = m.msgType;
  if (type === 'text') return { ...base, kind: 'text', tag, parts: textParts(str(p.content ?? p.Content)) };
  if (type === 'news') {
    // CS news: {articles:[{title,description,url,picurl}]}; passive: Articles/item{Title,…}.
    const csArticle = Array.isArray(p.articles) ? obj(p.articles[0]) : undefined;
    const item = obj(obj(p.Articles).item);
    const a = csArticle ?? { title: item.Title, description: item.Description, url: item.Url };
    return { ...base, kind: 'card', tag, title: str(a.title), description: str(a.description), url: str(a.url) || undefined };
  }
  if (type === 'msgmenu') {
    const list = Array.isArray(p.list) ? p.list.map((i) => `· ${str(obj(i).content)}`) : [];
    return { ...base, kind: 'text', tag, parts: [{ text: [str(p.head_content), ...list, str(p.tail_content)].filter(Boolean).join('\n') }] };
  }
  return { ...base, kind: 'text', tag, parts: [{ text: `[${type}]` }] };
}

export function chatFor(state: SandboxState, appId: string, userId: string): ChatItem[] {
  const pushes = state.pushes.filter((p) => p.appId === appId && p.userId === userId).flatMap(fromPush);
  const delivered = state.messages.filter((m) => m.appId === appId && m.userId === userId).map(fromDelivery);
  return [...pushes, ...delivered].sort((a, b) => a.order - b.order);
}

/** Changes whenever the chat would; the phone page polls it to refresh itself. */
export function chatVersion(state: SandboxState, appId: string, userId: string): string {
  const p = state.pushes.filter((x) => x.appId === appId && x.userId === userId).length;
  const m = state.messages.filter((x) => x.appId === appId && x.userId === userId).length;
  return `${p}.${m}`;
}
