/**
 * WeChat QR login for desktop browsers through the Open Platform website app
 * (wechat-protocol.md §1.10), offered on the "open in WeChat" page when the official account
 * has a `websiteApp`. The website app has its own openid; only the unionid joins it to the
 * person's identity on the official account, so a user never seen in WeChat cannot log in
 * this way (no identity of ours exists for them to act as).
 * The QR login URL comes from the WeChat client (`qrConnectUrl`); the sandbox plays the
 * QR page and the phone's scan-and-confirm.
 */
import type { OfficialAccountConfig } from '../config/index.ts';
import type { CodeExchangeResult } from '../wechat/index.ts';
import type { BindingsService } from './bindings.service.ts';
import type { SessionsService } from './sessions.service.ts';

/** The session for the official-account identity this website login belongs to, or null when there is none. */
export async function websiteSession(
  deps: { bindings: BindingsService; sessions: SessionsService; now: () => number },
  oa: OfficialAccountConfig & { websiteApp: { appId: string } },
  tokens: CodeExchangeResult,
): Promise<string | null> {
  // Recorded for reconciliation, even when it leads nowhere yet.
  await deps.bindings.upsertFromLogin({ appId: oa.websiteApp.appId, openid: tokens.openid, unionid: tokens.unionid, profile: null });
  if (!tokens.unionid) return null;
  const identity = await deps.bindings.findIdentityByUnionid(oa.appId, tokens.unionid);
  if (!identity) return null;
  return deps.sessions.create({ identityId: identity.id, appId: oa.appId, authTime: Math.floor(deps.now() / 1000), scopes: ['snsapi_login'] });
}
