/**
 * Optional single sign-on through the company's OpenID Provider (config `admin.sso`), with
 * linking's OIDC connector (openid-client: code + PKCE S256 + nonce + state, each per
 * attempt). The flow state lives in Kv, single-use, bound to the browser by a random id
 * in a cookie (ASVS 10.1.2, 10.2.1).
 *
 * Who gets in, and with which role (`ssoAccess`), is decided by the config, never by
 * default: with a role mapping (`roleClaim` + `roles`, or `defaultRole`), the mapping gives
 * the role at every sign-in (an account is made the first time, and its role and merchant
 * follow the mapping after); no role from the mapping, no entry. Without a mapping, the
 * claim must name an account an admin made, which keeps its own role. A disabled account
 * never gets in, and `defaultRole` cannot be admin (schema.ts).
 */
import { z } from 'zod';
import type { AdminSsoConfig } from '../config/schema.ts';
import type { OidcConnector } from '../linking/oidc.connector.ts';
import type { Kv } from '../store/kv.ts';
import type { Db } from '../store/db.ts';
import { randomId } from '../security/secrets.ts';
import * as A from './accounts.queries.ts';
import { adminActor, type AdminAudit } from './audit.service.ts';
import type { Role } from './policy.ts';
import type { SessionsService } from './sessions.service.ts';
import { adminKeys } from './settings.ts';
import { insertSsoAccount } from './sso.queries.ts';

export type { AdminSsoConfig };

const FLOW_TTL_MS = 10 * 60_000;
const flowSchema = z
  .object({ state: z.string(), nonce: z.string(), verifier: z.string(), next: z.string(), reauth: z.object({ sessionId: z.string(), adminId: z.string() }).strict().optional() })
  .strict();
/** A re-authentication counts when the provider authenticated the person this recently before issuing the ID token. */
const REAUTH_AUTH_AGE_S = 120;
const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export type SsoRefusal = 'expired' | 'refused' | 'no_account' | 'not_allowed';
/** `token`: a new session; `reauthenticated`: the current session was confirmed (sensitive actions open for a few minutes). */
export type SsoFinish = { ok: true; token: string } | { ok: true; reauthenticated: true } | { ok: false; reason: SsoRefusal };

export type SsoAccess = { ok: true; email: string; mapped: { role: Role; merchantId: string | null } | null } | { ok: false; reason: 'not_allowed' };

/** What the verified ID token's claims allow (pure: tested in sso.service.test.ts). */
export function ssoAccess(cfg: AdminSsoConfig, accountId: string, claims: Readonly<Record<string, unknown>>, merchantExists: (id: string) => boolean): SsoAccess {
  const email = accountId.trim().toLowerCase();
  const refuse = { ok: false, reason: 'not_allowed' } as const;
  // An address the provider itself says it has not verified proves nothing about who this is.
  if (cfg.accountClaim === 'email' && claims.email_verified === false) return refuse;
  if (cfg.allowedDomains.length > 0 && !cfg.allowedDomains.includes(email.slice(email.lastIndexOf('@') + 1))) return refuse;
  if (!cfg.roleClaim && !cfg.defaultRole) return { ok: true, email, mapped: null };
  const raw = cfg.roleClaim ? claims[cfg.roleClaim] : undefined;
  const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is string => typeof v === 'string');
  // Own keys only: a group named "constructor" must not find Object.prototype's.
  const mappedRoles = values.flatMap((v) => (Object.hasOwn(cfg.roles, v) ? [cfg.roles[v] as Role] : []));
  const role = mappedRoles.sort((a, b) => rank[b] - rank[a])[0] ?? cfg.defaultRole;
  if (!role) return refuse;
  const m = cfg.merchantClaim ? claims[cfg.merchantClaim] : undefined;
  if (m !== undefined && (typeof m !== 'string' || !merchantExists(m))) return refuse;
  return { ok: true, email, mapped: { role, merchantId: m ?? null } };
}

export interface SsoService {
  readonly label: string;
  begin(next: string): Promise<{ flowId: string; url: string }>;
  /**
   * Re-authentication of an SSO session before a sensitive action (ASVS 7.5.1): the provider
   * is asked to authenticate again (`prompt=login`, `max_age=0`), and the answer must name the
   * same admin and carry a fresh `auth_time`.
   */
  beginReauth(p: { sessionId: string; adminId: string; next: string }): Promise<{ flowId: string; url: string }>;
  finish(p: { flowId: string; callbackUrl: URL; from: { ip: string | null; userAgent: string | null } }): Promise<SsoFinish & { next?: string }>;
}

export function createSsoService(deps: {
  sso: AdminSsoConfig;
  redirectUri: string;
  connector: OidcConnector;
  kv: Kv;
  db: Db;
  now: () => number;
  sessions: SessionsService;
  audit: AdminAudit;
  merchantExists: (id: string) => boolean;
}): SsoService {
  const cfg = deps.sso;
  const method = { issuer: cfg.issuer, clientId: cfg.clientId, clientSecret: cfg.clientSecret, scope: cfg.scope, accountClaim: cfg.accountClaim };
  const system = { actor: `sso:${new URL(cfg.issuer).host}`, source: 'admin sso' };

  /** The account to sign in: made or brought in line with the mapping; null when refused. */
  async function accountFor(access: Extract<SsoAccess, { ok: true }>, ip: string | null): Promise<A.AccountRow | null> {
    const at = new Date(deps.now());
    const found = await A.findAccountByEmail(deps.db, access.email);
    if (found?.disabled_at) return null;
    if (!access.mapped) return found;
    const { role, merchantId } = access.mapped;
    if (!found) {
      const made = await insertSsoAccount(deps.db, { email: access.email, role, merchantId, createdBy: system.actor, at });
      if (made) await deps.audit.record(system, { action: 'admin.created', merchantId, detail: { admin: made.id, email: made.email, via: 'sso' }, after: { role, merchant: merchantId } });
      return made;
    }
    if (found.role !== role || found.merchant_id !== merchantId) {
      await A.updateAccess(deps.db, found.id, { role, merchantId, disabled: false }, at);
      await deps.audit.record(adminActor(found.id, ip), {
        action: 'admin.access_changed',
        merchantId,
        detail: { admin: found.id, via: 'sso' },
        before: { role: found.role, merchant: found.merchant_id },
        after: { role, merchant: merchantId },
      });
      return { ...found, role, merchant_id: merchantId };
    }
    return found;
  }

  async function start(flow: Pick<z.infer<typeof flowSchema>, 'next' | 'reauth'>, extra?: Record<string, string>) {
    const begun = await deps.connector.begin(method, deps.redirectUri, extra);
    const flowId = randomId(24);
    await deps.kv.set(adminKeys.ssoFlow(flowId), JSON.stringify({ state: begun.state, nonce: begun.nonce, verifier: begun.verifier, ...flow }), FLOW_TTL_MS);
    return { flowId, url: begun.url };
  }

  async function reauthenticate(r: { sessionId: string; adminId: string }, res: { accountId: string; claims: Readonly<Record<string, unknown>> }, ip: string | null): Promise<SsoFinish> {
    const account = await A.findAccountById(deps.db, r.adminId);
    const { auth_time: authTime, iat } = res.claims;
    // Both times are the provider's own clock: no skew with ours.
    const fresh = typeof authTime === 'number' && typeof iat === 'number' && iat - authTime <= REAUTH_AUTH_AGE_S;
    if (!account || account.disabled_at || account.email !== res.accountId.trim().toLowerCase() || !fresh) {
      await deps.audit.record(adminActor(r.adminId, ip), { action: 'admin.sign_in_failed', detail: { via: 'sso', step: 'reauth', reason: fresh ? 'other_account' : 'not_fresh' } });
      return { ok: false, reason: 'refused' };
    }
    await deps.sessions.markReauth(r.sessionId);
    await deps.audit.record(adminActor(account.id, ip), { action: 'admin.reauthenticated', merchantId: account.merchant_id, detail: { session: r.sessionId.slice(0, 8), method: 'sso' } });
    return { ok: true, reauthenticated: true };
  }

  return {
    label: cfg.label ?? 'company sign-in',
    begin: (next) => start({ next }),
    beginReauth: ({ sessionId, adminId, next }) => start({ next, reauth: { sessionId, adminId } }, { prompt: 'login', max_age: '0' }),
    async finish({ flowId, callbackUrl, from }) {
      const raw = /^[A-Za-z0-9_-]{32}$/.test(flowId) ? await deps.kv.getDel(adminKeys.ssoFlow(flowId)) : null;
      const flow = raw ? flowSchema.safeParse(JSON.parse(raw)) : null;
      if (!flow?.success) return { ok: false, reason: 'expired' };
      const res = await deps.connector.finish(method, callbackUrl, flow.data);
      if (!res.ok) return { ok: false, reason: res.reason === 'no_account' ? 'no_account' : 'refused' };
      if (flow.data.reauth) return { ...(await reauthenticate(flow.data.reauth, res, from.ip)), next: flow.data.next };
      const access = ssoAccess(cfg, res.accountId, res.claims, deps.merchantExists);
      if (!access.ok) {
        await deps.audit.record(system, { action: 'admin.sign_in_failed', detail: { via: 'sso', reason: access.reason } });
        return { ok: false, reason: access.reason };
      }
      const account = await accountFor(access, from.ip);
      if (!account) return { ok: false, reason: 'no_account' };
      const s = await deps.sessions.create(account.id, { ...from, method: 'sso' });
      await A.markSignedIn(deps.db, account.id, new Date(deps.now()));
      await deps.audit.record(adminActor(account.id, from.ip), { action: 'admin.signed_in', merchantId: account.merchant_id, detail: { session: s.id.slice(0, 8), method: 'sso' } });
      return { ok: true, token: s.token, next: flow.data.next };
    },
  };
}
