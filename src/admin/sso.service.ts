/**
 * Optional single sign-on through the company's OpenID Provider, with linking's OIDC
 * connector (openid-client: code + PKCE S256 + nonce + state, each per attempt). The
 * configured claim (the email, by default) must name an existing, enabled admin account:
 * SSO never creates accounts or grants roles, an admin does. The flow state lives in Kv,
 * single-use, bound to the browser by a random id in a cookie (ASVS 10.1.2, 10.2.1).
 */
import { z } from 'zod';
import type { OidcConnector } from '../linking/oidc.connector.ts';
import type { Kv } from '../store/kv.ts';
import type { Db } from '../store/db.ts';
import { randomId } from '../security/secrets.ts';
import * as A from './accounts.queries.ts';
import { adminActor, type AdminAudit } from './audit.service.ts';
import type { SessionsService } from './sessions.service.ts';
import { adminKeys } from './settings.ts';

export interface AdminSsoConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The ID-token claim that names the admin account (matched to its email). */
  accountClaim?: string;
  /** Shown on the sign-in button. */
  label?: string;
}

const FLOW_TTL_MS = 10 * 60_000;
const flowSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string(), next: z.string() }).strict();

export type SsoFinish = { ok: true; token: string } | { ok: false; reason: 'expired' | 'refused' | 'no_account' };

export interface SsoService {
  readonly label: string;
  begin(next: string): Promise<{ flowId: string; url: string }>;
  finish(p: { flowId: string; callbackUrl: URL; from: { ip: string | null; userAgent: string | null } }): Promise<SsoFinish & { next?: string }>;
}

export function createSsoService(deps: { sso: AdminSsoConfig; redirectUri: string; connector: OidcConnector; kv: Kv; db: Db; now: () => number; sessions: SessionsService; audit: AdminAudit }): SsoService {
  const method = { issuer: deps.sso.issuer, clientId: deps.sso.clientId, clientSecret: deps.sso.clientSecret, scope: 'openid email', accountClaim: deps.sso.accountClaim ?? 'email' };
  return {
    label: deps.sso.label ?? 'company sign-in',
    async begin(next) {
      const start = await deps.connector.begin(method, deps.redirectUri);
      const flowId = randomId(24);
      await deps.kv.set(adminKeys.ssoFlow(flowId), JSON.stringify({ state: start.state, nonce: start.nonce, verifier: start.verifier, next }), FLOW_TTL_MS);
      return { flowId, url: start.url };
    },
    async finish({ flowId, callbackUrl, from }) {
      const raw = /^[A-Za-z0-9_-]{32}$/.test(flowId) ? await deps.kv.getDel(adminKeys.ssoFlow(flowId)) : null;
      const flow = raw ? flowSchema.safeParse(JSON.parse(raw)) : null;
      if (!flow?.success) return { ok: false, reason: 'expired' };
      const res = await deps.connector.finish(method, callbackUrl, flow.data);
      if (!res.ok) return { ok: false, reason: res.reason === 'no_account' ? 'no_account' : 'refused' };
      const account = await A.findAccountByEmail(deps.db, res.accountId);
      if (!account || account.disabled_at) return { ok: false, reason: 'no_account' };
      const s = await deps.sessions.create(account.id, { ...from, method: 'sso' });
      await A.markSignedIn(deps.db, account.id, new Date(deps.now()));
      await deps.audit.record(adminActor(account.id, from.ip), { action: 'admin.signed_in', merchantId: account.merchant_id, detail: { session: s.id.slice(0, 8), method: 'sso' } });
      return { ok: true, token: s.token, next: flow.data.next };
    },
  };
}
