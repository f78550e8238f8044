/**
 * An in-memory stand-in for the linking feature, implementing exactly the interfaces the
 * authorization server uses (LinkingService, sessions.read). Core AS tests run against it
 * so they do not depend on the linking journey; the full-flow test uses the real one.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import type { Binding, EndUserSession, Identity, LinkingService, ProofMethod } from '../../src/linking/types.ts';
import type { LinkingPort } from '../../src/oauth/index.ts';

export const FAKE_SESSION_COOKIE = 'fake_wx_session';

export interface FakeLinking extends LinkingPort {
  addIdentity(p: { appId: string; openid?: string; unionid?: string; nickname?: string; avatarUrl?: string }): Identity;
  addBinding(p: { identityId: string; merchantId: string; accountId: string; accountDisplay?: string; proof?: ProofMethod; isDefault?: boolean }): Binding;
  /** A logged-in browser session for the identity; returns the cookie value. */
  login(identityId: string, appId: string, authTime?: number): string;
}

export function createFakeLinking(): FakeLinking {
  const identities = new Map<string, Identity>();
  const bindings = new Map<string, Binding>();
  const subjects = new Map<string, string>();
  const sessions = new Map<string, EndUserSession>();

  const service: LinkingService = {
    getIdentity: async (id) => identities.get(id) ?? null,
    findIdentity: async (appId, openid) => [...identities.values()].find((i) => i.appId === appId && i.openid === openid) ?? null,
    async subjectFor(identityId, merchantId) {
      const key = `${merchantId}:${identityId}`;
      let sub = subjects.get(key);
      if (!sub) subjects.set(key, (sub = `ps_${randomUUID().replace(/-/g, '')}`));
      return sub;
    },
    async findBySubject(merchantId, sub) {
      for (const [key, s] of subjects) if (s === sub && key.startsWith(`${merchantId}:`)) return { identityId: key.slice(merchantId.length + 1) };
      return null;
    },
    getBinding: async (id) => bindings.get(id) ?? null,
    listBindings: async (p) =>
      [...bindings.values()].filter(
        (b) =>
          b.merchantId === p.merchantId &&
          (p.identityId === undefined || b.identityId === p.identityId) &&
          (p.accountId === undefined || b.accountId === p.accountId) &&
          (p.status === undefined || b.status === p.status),
      ),
    async revokeBinding(p) {
      const b = bindings.get(p.bindingId);
      if (!b || b.merchantId !== p.merchantId) throw new Error('not found');
      const revoked: Binding = { ...b, status: 'revoked', revokedAt: new Date(), revokeReason: p.reason };
      bindings.set(b.id, revoked);
      return revoked;
    },
  };

  return {
    service,
    sessions: {
      read(ctx: Context) {
        const id = ctx.cookies.get(FAKE_SESSION_COOKIE);
        return (id && sessions.get(id)) || null;
      },
    },
    addIdentity(p) {
      const identity: Identity = {
        id: randomUUID(),
        appId: p.appId,
        openid: p.openid ?? `o${randomUUID().replace(/-/g, '').slice(0, 27)}`,
        unionid: p.unionid ?? null,
        nickname: p.nickname ?? null,
        avatarUrl: p.avatarUrl ?? null,
        subscribed: true,
        lastInteractionAt: null,
        lastLocation: null,
        tags: [],
        createdAt: new Date(),
      };
      identities.set(identity.id, identity);
      return identity;
    },
    addBinding(p) {
      const now = new Date();
      const b: Binding = {
        id: randomUUID(),
        merchantId: p.merchantId,
        identityId: p.identityId,
        accountId: p.accountId,
        accountDisplay: p.accountDisplay ?? null,
        status: 'active',
        isDefault: p.isDefault ?? false,
        proof: p.proof ?? 'verify-api',
        provenAt: now,
        createdBy: 'test',
        revokedAt: null,
        revokeReason: null,
        createdAt: now,
      };
      bindings.set(b.id, b);
      return b;
    },
    login(identityId, appId, authTime = Math.floor(Date.now() / 1000)) {
      const id = randomUUID();
      sessions.set(id, { id, identityId, appId, authTime, scopes: ['snsapi_base'] });
      return id;
    },
  };
}
