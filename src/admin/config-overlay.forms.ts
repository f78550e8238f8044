/**
 * The merchant and official-account forms: strict field lists, and the document each form
 * makes from the item it edits. Secrets are write-only: an empty secret field keeps the
 * current value, and a page only ever learns which secrets are set. What a form does not
 * show (notice templates, intents, quiet hours, CS-window quotas, the website app) is
 * carried over from the current document unchanged.
 */
import { z } from 'zod';
import type { MerchantConfig, OfficialAccountConfig } from '../config/index.ts';
import { secretsSet } from '../config/overlay.ts';
import { formSchema } from './guard.routes.ts';

type Doc = Record<string, unknown>;
const text = (max = 300) => z.string().max(max).optional().transform((v) => (v ?? '').trim());
const on = z.literal('on').optional();
const secret = z.string().max(500).optional().transform((v) => v ?? '');
const version = z.coerce.number().int().min(0);
/** '' stays undefined so the schema's default applies; anything else must be a number there. */
const num = (v: string): number | undefined => (v === '' ? undefined : Number(v));
const orUndef = (v: string): string | undefined => (v === '' ? undefined : v);

export const accountForm = formSchema({
  id: text(40),
  appId: text(40),
  originalId: text(40),
  tokenMethod: z.enum(['stable', 'classic']),
  appSecret: secret,
  token: secret,
  encodingAesKey: secret,
  clearEncodingAesKey: on,
  version,
});
export type AccountForm = z.infer<typeof accountForm>;

export const merchantForm = formSchema({
  id: text(40),
  name: text(100),
  officialAccount: text(40),
  profile: z.enum(['base', 'userinfo']),
  exposeWeChatIds: on,
  maxAccountsPerUser: text(6),
  exclusive: on,
  channel: z.enum(['auto', 'template', 'customer-service']),
  oidcEnabled: on,
  oidcLabel: text(60),
  oidcIssuer: text(),
  oidcClientId: text(),
  oidcClientSecret: secret,
  oidcScope: text(),
  oidcAccountClaim: text(60),
  oidcDisplayClaim: text(60),
  verifyEnabled: on,
  verifyLabel: text(60),
  verifyUrl: text(),
  verifySecret: secret,
  verifyTimeoutMs: text(6),
  codeEnabled: on,
  codeLabel: text(60),
  codeTtlSeconds: text(8),
  webhookUrl: text(),
  webhookSecret: secret,
  version,
});
export type MerchantForm = z.infer<typeof merchantForm>;

/** The official account a form describes. `cur` is the item being edited (undefined: a new one). */
export function accountDoc(f: AccountForm, cur: OfficialAccountConfig | undefined): Doc {
  const doc: Doc = { ...(cur ? structuredClone(cur) : {}), id: cur?.id ?? f.id, appId: cur?.appId ?? f.appId, originalId: f.originalId, tokenMethod: f.tokenMethod };
  doc.appSecret = f.appSecret || cur?.appSecret;
  doc.token = f.token || cur?.token;
  if (f.clearEncodingAesKey) {
    delete doc.encodingAesKey;
    delete doc.previousEncodingAesKey;
  } else if (f.encodingAesKey && f.encodingAesKey !== cur?.encodingAesKey) {
    doc.encodingAesKey = f.encodingAesKey;
    // A key regenerated in the MP console: pushes already on their way still open with the old one.
    if (cur?.encodingAesKey) doc.previousEncodingAesKey = cur.encodingAesKey;
  }
  return doc;
}

/** The merchant a form describes; `lockAccount`: a merchant-scoped admin cannot move it to another official account. */
export function merchantDoc(f: MerchantForm, cur: MerchantConfig | undefined, lockAccount: boolean): Doc {
  const old = <T extends MerchantConfig['linking'][number]['type']>(type: T) => cur?.linking.find((l) => l.type === type) as Extract<MerchantConfig['linking'][number], { type: T }> | undefined;
  const linking: Doc[] = [];
  if (f.oidcEnabled)
    linking.push({ type: 'oidc', label: orUndef(f.oidcLabel), issuer: f.oidcIssuer, clientId: f.oidcClientId, clientSecret: f.oidcClientSecret || old('oidc')?.clientSecret, scope: orUndef(f.oidcScope), accountClaim: orUndef(f.oidcAccountClaim), displayClaim: orUndef(f.oidcDisplayClaim) });
  if (f.verifyEnabled) linking.push({ type: 'verify-api', label: orUndef(f.verifyLabel), url: f.verifyUrl, secret: f.verifySecret || old('verify-api')?.secret, timeoutMs: num(f.verifyTimeoutMs), maxFailedAttempts: old('verify-api')?.maxFailedAttempts });
  if (f.codeEnabled) linking.push({ type: 'binding-code', label: orUndef(f.codeLabel), ttlSeconds: num(f.codeTtlSeconds) });
  // The order of the file's methods (the link page offers them in that order) is kept.
  const rank = (t: unknown) => {
    const i = cur?.linking.findIndex((l) => l.type === t) ?? -1;
    return i < 0 ? 99 : i;
  };
  linking.sort((a, b) => rank(a.type) - rank(b.type));
  const base: Doc = cur ? structuredClone(cur) : {};
  delete base.clients;
  return {
    ...base,
    id: cur?.id ?? f.id,
    name: f.name,
    officialAccount: lockAccount && cur ? cur.officialAccount : f.officialAccount,
    profile: f.profile,
    exposeWeChatIds: f.exposeWeChatIds === 'on',
    binding: { maxAccountsPerUser: num(f.maxAccountsPerUser), exclusive: f.exclusive === 'on' },
    linking: linking.map((l) => JSON.parse(JSON.stringify(l)) as Doc),
    webhook: f.webhookUrl ? { url: f.webhookUrl, secret: f.webhookSecret || cur?.webhook?.secret } : undefined,
    notices: { ...(cur?.notices ?? {}), channel: f.channel },
  };
}

/** What the account form shows: no secret, only whether each is set. */
export function accountView(a: OfficialAccountConfig | undefined) {
  const set = a ? secretsSet('official_account', a as unknown as Doc) : new Set<string>();
  return {
    id: a?.id ?? '',
    appId: a?.appId ?? '',
    originalId: a?.originalId ?? '',
    tokenMethod: a?.tokenMethod ?? 'stable',
    set: { appSecret: set.has('appSecret'), token: set.has('token'), encodingAesKey: set.has('encodingAesKey'), previousEncodingAesKey: set.has('previousEncodingAesKey') },
  };
}

/** What the merchant form shows: no secret, only whether each is set. */
export function merchantView(m: MerchantConfig | undefined) {
  const l = <T extends MerchantConfig['linking'][number]['type']>(type: T) => m?.linking.find((x) => x.type === type) as Extract<MerchantConfig['linking'][number], { type: T }> | undefined;
  const oidc = l('oidc');
  const verify = l('verify-api');
  const code = l('binding-code');
  return {
    id: m?.id ?? '',
    name: m?.name ?? '',
    officialAccount: m?.officialAccount ?? '',
    profile: m?.profile ?? 'base',
    exposeWeChatIds: m?.exposeWeChatIds ?? false,
    maxAccountsPerUser: String(m?.binding.maxAccountsPerUser ?? 5),
    exclusive: m?.binding.exclusive ?? true,
    channel: m?.notices.channel ?? 'auto',
    oidc: { enabled: !!oidc, label: oidc?.label ?? '', issuer: oidc?.issuer ?? '', clientId: oidc?.clientId ?? '', scope: oidc?.scope ?? 'openid', accountClaim: oidc?.accountClaim ?? 'sub', displayClaim: oidc?.displayClaim ?? '', secretSet: !!oidc?.clientSecret },
    verify: { enabled: !!verify, label: verify?.label ?? '', url: verify?.url ?? '', timeoutMs: String(verify?.timeoutMs ?? 3000), secretSet: !!verify?.secret },
    code: { enabled: !!code || !m, label: code?.label ?? '', ttlSeconds: String(code?.ttlSeconds ?? 900) },
    webhook: { url: m?.webhook?.url ?? '', secretSet: !!m?.webhook?.secret },
  };
}

/** A form sent back with an error shows what was typed, never a secret typed into it. */
export function merchantViewOfForm(f: MerchantForm, cur: MerchantConfig | undefined) {
  const v = merchantView(cur);
  return {
    ...v,
    id: cur?.id ?? f.id,
    name: f.name,
    officialAccount: f.officialAccount,
    profile: f.profile,
    exposeWeChatIds: f.exposeWeChatIds === 'on',
    maxAccountsPerUser: f.maxAccountsPerUser,
    exclusive: f.exclusive === 'on',
    channel: f.channel,
    oidc: { ...v.oidc, enabled: f.oidcEnabled === 'on', label: f.oidcLabel, issuer: f.oidcIssuer, clientId: f.oidcClientId, scope: f.oidcScope, accountClaim: f.oidcAccountClaim, displayClaim: f.oidcDisplayClaim },
    verify: { ...v.verify, enabled: f.verifyEnabled === 'on', label: f.verifyLabel, url: f.verifyUrl, timeoutMs: f.verifyTimeoutMs },
    code: { enabled: f.codeEnabled === 'on', label: f.codeLabel, ttlSeconds: f.codeTtlSeconds },
    webhook: { ...v.webhook, url: f.webhookUrl },
  };
}
