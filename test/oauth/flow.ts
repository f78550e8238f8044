/**
 * Steps of the authorization journey for the core AS tests: authorization URLs for the
 * test clients, a logged-in WeChat user of the fake linking feature, the code exchange.
 */
import { expect } from 'vitest';
import type { Identity } from '../../src/linking/types.ts';
import { FAKE_SESSION_COOKIE } from './fake-linking.ts';
import { APP_ID, basic, CARD_REDIRECT, postForm, SECRETS, type OAuthTestApp } from './helpers.ts';
import { UserAgent } from './user-agent.ts';

type Query = Record<string, string | string[] | undefined>;

export function createFlow(app: OAuthTestApp) {
  const h5 = { authorization: basic('card-h5', SECRETS.cardH5) };

  const authorizeUrl = (p: Query): string => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(p)) for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) q.append(k, x);
    return `${app.baseUrl}/oauth2/authorize?${q}`;
  };

  const cardRequest = (challenge: string, extra: Query = {}): Query => ({
    response_type: 'code',
    client_id: 'card-h5',
    redirect_uri: CARD_REDIRECT,
    scope: 'openid profile offline_access',
    state: 'st-123',
    nonce: 'n-456',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });

  /** A WeChat user logged in (fake session) with `accounts` linked at card; the first is the default. */
  const user = (accounts: string[]): { ua: UserAgent; identity: Identity; bindingIds: string[] } => {
    const identity = app.linking.addIdentity({ appId: APP_ID, nickname: '小明', avatarUrl: 'https://img.example/a.png' });
    const bindingIds = accounts.map(
      (a, i) => app.linking.addBinding({ identityId: identity.id, merchantId: 'card', accountId: a, accountDisplay: `**** ${a.slice(-4)}`, isDefault: i === 0 }).id,
    );
    const ua = new UserAgent();
    ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(identity.id, APP_ID));
    return { ua, identity, bindingIds };
  };

  const codeFor = async (ua: UserAgent, challenge: string, extra: Query = {}): Promise<URL> => {
    const r = await ua.get(authorizeUrl(cardRequest(challenge, extra)));
    expect(r.status).toBe(302);
    return new URL(r.headers.get('location')!);
  };

  const exchange = (code: string, verifier: string | undefined, headers = h5, redirectUri = CARD_REDIRECT) =>
    postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, ...(verifier ? { code_verifier: verifier } : {}) }, headers);

  const introspect = (token: string) => postForm(`${app.baseUrl}/oauth2/introspect`, { token }, h5);

  return { h5, authorizeUrl, cardRequest, user, codeFor, exchange, introspect };
}
