/**
 * The authorization endpoint and the code/refresh grants against the real app, with the
 * fake linking feature standing in for WeChat login and linking (its own tests cover
 * those). RFC 6749 §4.1, RFC 7636, RFC 9700 §4.1/§4.5/§4.14, OIDC Core §3.1.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUiClient } from '../../src/admin/clients.queries.ts';
import { defaultPolicy } from '../../src/oauth/policy.ts';
import { createRefreshService } from '../../src/oauth/refresh.service.ts';
import { hashSecret } from '../../src/security/secrets.ts';
import { FAKE_SESSION_COOKIE } from './fake-linking.ts';
import { createFlow } from './flow.ts';
import { APP_ID, basic, CARD_REDIRECT, POWER_REDIRECT, postForm, SECRETS, startOAuthApp, type OAuthTestApp } from './helpers.ts';
import { hiddenInput, pkce, UserAgent } from './user-agent.ts';

let app: OAuthTestApp;
let flow: ReturnType<typeof createFlow>;
let clockOffset = 0;
beforeAll(async () => {
  app = await startOAuthApp({ now: () => Date.now() + clockOffset });
  flow = createFlow(app);
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  await app?.stop();
});

const json = async (r: Response) => (await r.json()) as Record<string, unknown>;

/** OIDC Core §3.1.3.6 for ES256: the left half of SHA-256 of the access token, base64url. */
const atHashOf = (token: string) => createHash('sha256').update(token, 'ascii').digest().subarray(0, 16).toString('base64url');

/**
 * An unredirectable error (RFC 6749 §4.1.2.1): never a Location. A browser (Accept: text/html)
 * gets the zh-CN page naming the error; a client asking for JSON gets the RFC body.
 */
async function expectShown(url: string, error: string): Promise<void> {
  const page = await new UserAgent().get(url);
  expect(page.status).toBe(400);
  expect(page.headers.get('location')).toBeNull();
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  expect(page.headers.get('cache-control')).toBe('no-store');
  const html = await page.text();
  expect(html).toContain('无法继续登录');
  expect(html).toContain(`<code>${error}</code>`);
  const api = await new UserAgent().get(url, { accept: 'application/json' });
  expect(api.status).toBe(400);
  expect(api.headers.get('location')).toBeNull();
  expect(api.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await json(api);
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
}

describe('authorization request validation (RFC 6749 §4.1.2.1, RFC 9700 §4.1.3)', () => {
  const { challenge } = pkce();

  it.each([
    ['case changed', 'https://H5.card.example/auth/callback'],
    ['trailing slash', 'https://h5.card.example/auth/callback/'],
    ['percent-encoded', 'https://h5.card.example/auth%2Fcallback'],
    ['userinfo@', 'https://attacker@h5.card.example/auth/callback'],
    ['host@ trick', 'https://h5.card.example@attacker.example/auth/callback'],
    ['extra query', 'https://h5.card.example/auth/callback?x=1'],
    ['http downgrade', 'http://h5.card.example/auth/callback'],
    ['explicit port', 'https://h5.card.example:443/auth/callback'],
    ['another client’s URI', POWER_REDIRECT],
  ])('When redirect_uri is a variant (%s), then the error is shown and never redirected (RFC 9700 §2.1)', async (_label, uri) => {
    await expectShown(flow.authorizeUrl(flow.cardRequest(challenge, { redirect_uri: uri })), 'invalid_request');
  });

  it('When client_id is unknown, missing or repeated, then nothing is redirected', async () => {
    for (const client_id of ['nobody', undefined, ['card-h5', 'card-h5']]) {
      await expectShown(flow.authorizeUrl(flow.cardRequest(challenge, { client_id })), 'invalid_request');
    }
  });

  it('When redirect_uri is repeated before it is verified, then nothing is redirected (RFC 6749 §3.1)', async () => {
    await expectShown(flow.authorizeUrl(flow.cardRequest(challenge, { redirect_uri: [CARD_REDIRECT, CARD_REDIRECT] })), 'invalid_request');
  });

  it('When the unverifiable request carries markup, then the page escapes it and runs no script', async () => {
    const evil = '<script>alert(1)</script>';
    const r = await new UserAgent().get(flow.authorizeUrl(flow.cardRequest(challenge, { client_id: evil, redirect_uri: `https://x.example/${evil}` })));
    expect(r.status).toBe(400);
    const html = await r.text();
    expect(html).not.toContain('<script>alert');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
  });

  it('When the browser prefers English, then the error page is in English', async () => {
    const r = await new UserAgent().get(flow.authorizeUrl(flow.cardRequest(challenge, { client_id: 'nobody' })), { 'accept-language': 'en-US,en;q=0.9' });
    expect(r.status).toBe(400);
    const html = await r.text();
    expect(html).toContain('<html lang="en"');
    expect(html).toContain('This sign-in cannot continue');
  });

  it.each([
    ['PKCE missing', { code_challenge: undefined }, 'invalid_request'],
    ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['PKCE method missing', { code_challenge_method: undefined }, 'invalid_request'],
    ['a repeated parameter', { scope: ['openid', 'openid'] }, 'invalid_request'],
    ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
    ['a merchant API scope', { scope: 'openid bindings:read' }, 'invalid_scope'],
    // OIDC Core §6.1, §6.2: request objects are not supported, so their use is refused, not ignored.
    ['a request object', { request: 'eyJhbGciOiJub25lIn0.e30.' }, 'request_not_supported'],
    ['a request_uri', { request_uri: 'https://h5.card.example/req/1' }, 'request_uri_not_supported'],
  ])('When the request has %s, then the error goes back to the verified redirect_uri with state and iss (RFC 9207)', async (_l, extra, error) => {
    const r = await new UserAgent().get(flow.authorizeUrl(flow.cardRequest(challenge, extra as Record<string, string>)));
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(`${loc.origin}${loc.pathname}`).toBe(CARD_REDIRECT);
    expect(loc.searchParams.get('error')).toBe(error);
    expect(loc.searchParams.get('state')).toBe('st-123');
    expect(loc.searchParams.get('iss')).toBe(app.issuer);
    expect(loc.searchParams.get('code')).toBeNull();
  });
});

describe('the authorization request by POST (OIDC Core §3.1.2.1: GET and POST MUST be supported)', () => {
  /** Posts the request as a form and follows the redirects that stay on wxbridge's authorize endpoint, as a browser does. */
  async function postAuthorize(ua: UserAgent, form: [string, string][]): Promise<Response> {
    let r = await ua.post(`${app.baseUrl}/oauth2/authorize`, form);
    for (let hops = 0; hops < 3 && r.status >= 300 && r.status < 400; hops++) {
      const next = new URL(r.headers.get('location')!, app.baseUrl);
      if (next.origin !== app.baseUrl || next.pathname !== '/oauth2/authorize') break;
      r = await ua.get(next.href);
    }
    return r;
  }
  const entries = (q: Record<string, unknown>): [string, string][] =>
    Object.entries(q).flatMap(([k, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, String(x)])));

  it('When a logged-in user’s request is posted as a form, then the code comes back as for GET and exchanges', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const r = await postAuthorize(ua, entries(flow.cardRequest(challenge)));
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(`${loc.origin}${loc.pathname}`).toBe(CARD_REDIRECT);
    expect(loc.searchParams.get('state')).toBe('st-123');
    expect(loc.searchParams.get('iss')).toBe(app.issuer);
    expect((await flow.exchange(loc.searchParams.get('code')!, verifier)).status).toBe(200);
  });

  it('When a posted request has an unregistered redirect_uri, then the error is shown and never redirected there (RFC 6749 §4.1.2.1)', async () => {
    const r = await postAuthorize(new UserAgent(), entries(flow.cardRequest(pkce().challenge, { redirect_uri: 'https://attacker.example/cb' })));
    expect(r.status).toBe(400);
    expect(r.headers.get('location')).toBeNull();
    expect(await r.text()).toContain('<code>invalid_request</code>');
  });

  it('When a posted request repeats a parameter, then invalid_request goes back to the verified redirect_uri (RFC 6749 §3.1)', async () => {
    const r = await postAuthorize(new UserAgent(), entries(flow.cardRequest(pkce().challenge, { scope: ['openid', 'openid'] })));
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(`${loc.origin}${loc.pathname}`).toBe(CARD_REDIRECT);
    expect(loc.searchParams.get('error')).toBe('invalid_request');
  });
});

describe('the login, link and choose journey', () => {
  it('When nobody is logged in, then the browser goes to WeChat login with an internal next path', async () => {
    const r = await new UserAgent().get(flow.authorizeUrl(flow.cardRequest(pkce().challenge)));
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!, app.baseUrl);
    expect(loc.pathname).toBe('/wechat/login');
    expect(loc.searchParams.get('merchant')).toBe('card');
    expect(loc.searchParams.get('next')).toMatch(/^\/oauth2\/authorize\/continue\?req=[A-Za-z0-9_-]+$/);
  });

  it('When prompt=none and nobody is logged in, then login_required goes back to the client (OIDC Core §3.1.2.6)', async () => {
    const r = await new UserAgent().get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { prompt: 'none' })));
    expect(new URL(r.headers.get('location')!).searchParams.get('error')).toBe('login_required');
  });

  it('When prompt=login, then a logged-in user is sent to log in again, and the new login completes the request (OIDC Core §3.1.2.1)', async () => {
    const { identity } = flow.user(['6222000011112222']);
    const ua = new UserAgent();
    ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(identity.id, APP_ID, Math.floor(Date.now() / 1000) - 30));
    const r = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { prompt: 'login' })));
    const loc = new URL(r.headers.get('location')!, app.baseUrl);
    expect(loc.pathname).toBe('/wechat/login');
    expect(loc.searchParams.get('fresh')).toBe('1');
    // A login made during the request satisfies it: the continuation now answers with a code.
    ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(identity.id, APP_ID, Math.floor(Date.now() / 1000) + 1));
    const done = await ua.get(`${app.baseUrl}${loc.searchParams.get('next')}`);
    expect(new URL(done.headers.get('location')!).searchParams.get('code')).toBeTruthy();
  });

  it('When max_age is exceeded, then login again, or login_required with prompt=none; within it, a code (OIDC Core §3.1.2.1)', async () => {
    const { identity } = flow.user(['6222000011112222']);
    const ua = new UserAgent();
    ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(identity.id, APP_ID, Math.floor(Date.now() / 1000) - 600));
    const stale = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { max_age: '300' })));
    expect(new URL(stale.headers.get('location')!, app.baseUrl).pathname).toBe('/wechat/login');
    const none = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { max_age: '300', prompt: 'none' })));
    expect(new URL(none.headers.get('location')!).searchParams.get('error')).toBe('login_required');
    const fresh = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { max_age: '3600' })));
    expect(new URL(fresh.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    const bad = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { max_age: '-1' })));
    expect(new URL(bad.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });

  it('When id_token_hint names the logged-in user, a code; another user, login_required with prompt=none or one new login; not our ID token for this client, invalid_request (OIDC Core §3.1.2.1)', async () => {
    /** An ID token for `ua`'s user, from a whole code flow. */
    const idTokenOf = async (ua: UserAgent): Promise<string> => {
      const { verifier, challenge } = pkce();
      const code = new URL((await ua.get(flow.authorizeUrl(flow.cardRequest(challenge)))).headers.get('location')!).searchParams.get('code')!;
      return (await json(await flow.exchange(code, verifier))).id_token as string;
    };
    const alice = flow.user(['6222000011110001']);
    const bob = flow.user(['6222000011110002']);
    const hint = await idTokenOf(alice.ua);

    const same = await alice.ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { prompt: 'none', id_token_hint: hint })));
    expect(new URL(same.headers.get('location')!).searchParams.get('code')).toBeTruthy();

    const other = await bob.ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { prompt: 'none', id_token_hint: hint })));
    expect(new URL(other.headers.get('location')!).searchParams.get('error')).toBe('login_required');

    // Interactive: one new login; whoever WeChat then says it is goes on (no loop).
    bob.ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(bob.identity.id, APP_ID, Math.floor(Date.now() / 1000) - 30));
    const relogin = await bob.ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { id_token_hint: hint })));
    const loc = new URL(relogin.headers.get('location')!, app.baseUrl);
    expect(loc.pathname).toBe('/wechat/login');
    bob.ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(bob.identity.id, APP_ID, Math.floor(Date.now() / 1000) + 1));
    const done = await bob.ua.get(`${app.baseUrl}${loc.searchParams.get('next')}`);
    expect(new URL(done.headers.get('location')!).searchParams.get('code')).toBeTruthy();

    // An access token, a tampered ID token, or an ID token of another client is no hint.
    const { verifier, challenge } = pkce();
    const code = new URL((await alice.ua.get(flow.authorizeUrl(flow.cardRequest(challenge)))).headers.get('location')!).searchParams.get('code')!;
    const accessToken = (await json(await flow.exchange(code, verifier))).access_token as string;
    const [h, p] = hint.split('.');
    for (const bad of [accessToken, `${h}.${p}.AAAA`, 'not-a-jwt']) {
      const r = await alice.ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge, { id_token_hint: bad })));
      expect(new URL(r.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    }
  });

  it('When the user has no account at the merchant, then they are sent to link one and come back', async () => {
    const { ua } = flow.user([]);
    const r = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge)));
    const loc = new URL(r.headers.get('location')!, app.baseUrl);
    expect(loc.pathname).toBe('/link/card');
    const next = loc.searchParams.get('next')!;
    // Still no binding: coming back sends them to link again, never to the client.
    const again = await ua.get(`${app.baseUrl}${next}`);
    expect(new URL(again.headers.get('location')!, app.baseUrl).pathname).toBe('/link/card');
  });

  it('When the continuation is opened in another browser, then it is refused (ASVS 10.1.2)', async () => {
    const { ua } = flow.user(['6222000011112222', '6222000033334444']);
    const r = await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge)));
    expect(r.status).toBe(200);
    const req = hiddenInput(await r.text(), 'req');
    const other = await new UserAgent().get(`${app.baseUrl}/oauth2/authorize/continue?req=${req}`, { accept: 'application/json' });
    expect(other.status).toBe(400);
    expect((await json(other)).error).toBe('flow.expired');
    const page = await new UserAgent().get(`${app.baseUrl}/oauth2/authorize/continue?req=${req}`);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('这次登录已过期或已在其他浏览器中打开');
  });

  it('When the user has several accounts, then a chooser is shown, and the chosen binding is in the token', async () => {
    const { ua, bindingIds } = flow.user(['6222000011112222', '6222000033334444']);
    const { verifier, challenge } = pkce();
    const page = await ua.get(flow.authorizeUrl(flow.cardRequest(challenge)));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('**** 2222');
    expect(html).toContain('**** 4444');
    const form = { _csrf: hiddenInput(html, '_csrf'), req: hiddenInput(html, 'req'), action: 'continue', binding: bindingIds[1]! };
    // Someone else's binding id is refused.
    const stranger = flow.user(['6222000055556666']);
    const refused = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { ...form, binding: stranger.bindingIds[0]! });
    expect(refused.status).toBe(400);
    const page2 = await ua.get(flow.authorizeUrl(flow.cardRequest(challenge)));
    const html2 = await page2.text();
    const chosen = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { ...form, _csrf: hiddenInput(html2, '_csrf'), req: hiddenInput(html2, 'req') });
    expect(chosen.status).toBe(302);
    const code = new URL(chosen.headers.get('location')!).searchParams.get('code')!;
    const t = await json(await flow.exchange(code, verifier));
    expect(decodeJwt(t.access_token as string)).toMatchObject({ binding_id: bindingIds[1], account: '6222000033334444', account_display: '**** 4444' });
  });

  it('When the chooser is cancelled, then access_denied goes back to the client', async () => {
    const { ua } = flow.user(['6222000011112222', '6222000033334444']);
    const html = await (await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge)))).text();
    const r = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { _csrf: hiddenInput(html, '_csrf'), req: hiddenInput(html, 'req'), action: 'cancel' });
    expect(new URL(r.headers.get('location')!).searchParams.get('error')).toBe('access_denied');
  });

  it('When the client’s redirect_uri is unregistered (or the client disabled) while the user is in the journey, then nothing is sent to it (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2)', async () => {
    const clientId = `ui-journey-${process.pid}-${Date.now()}`;
    const redirect = 'https://h5.card.example/ui/journey';
    const fields = { grantTypes: ['authorization_code'], scopes: ['openid'], accessTokenTtl: 600 };
    await insertUiClient(app.deps.db, { clientId, merchantId: 'card', secretHash: await hashSecret('ui-journey-secret-1'), redirectUris: [redirect], createdBy: 'test', at: new Date(), ...fields });
    const { ua, bindingIds } = flow.user(['6222000011112222', '6222000033334444']);
    const request = { response_type: 'code', client_id: clientId, redirect_uri: redirect, scope: 'openid', state: 's1', code_challenge: pkce().challenge, code_challenge_method: 'S256' };
    const choose = async () => {
      const html = await (await ua.get(flow.authorizeUrl(request))).text();
      return { _csrf: hiddenInput(html, '_csrf'), req: hiddenInput(html, 'req') };
    };
    const unregistered = await choose();
    const cancelled = await choose();
    const disabled = await choose();
    await app.deps.db.query(`UPDATE admin_clients SET redirect_uris = '{https://h5.card.example/ui/other}', updated_at = now() WHERE client_id = $1`, [clientId]);
    clockOffset = 2_100; // past the registry's 2 s cache of admin clients
    try {
      for (const [form, action] of [[unregistered, 'continue'], [cancelled, 'cancel']] as const) {
        const r = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { ...form, action, binding: bindingIds[0]! });
        expect(r.status).toBe(400);
        expect(r.headers.get('location')).toBeNull();
      }
      await app.deps.db.query(`UPDATE admin_clients SET redirect_uris = $2, disabled_at = now(), updated_at = now() WHERE client_id = $1`, [clientId, [redirect]]);
      clockOffset = 4_200;
      const r = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { ...disabled, action: 'continue', binding: bindingIds[0]! });
      expect(r.status).toBe(400);
      expect(r.headers.get('location')).toBeNull();
    } finally {
      clockOffset = 0;
    }
  });

  it('When the chooser is posted without the CSRF token, then it is refused', async () => {
    const { ua } = flow.user(['6222000011112222', '6222000033334444']);
    const html = await (await ua.get(flow.authorizeUrl(flow.cardRequest(pkce().challenge)))).text();
    const r = await ua.post(`${app.baseUrl}/oauth2/authorize/continue`, { _csrf: 'forged', req: hiddenInput(html, 'req'), action: 'continue' });
    expect(r.status).toBe(403);
  });
});

describe('the code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3)', () => {
  it('When one account is linked, then the code comes back with state and iss, and exchanges for an at+jwt, an ID token and a refresh token', async () => {
    const { ua, identity, bindingIds } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const loc = await flow.codeFor(ua, challenge);
    expect(`${loc.origin}${loc.pathname}`).toBe(CARD_REDIRECT);
    expect(loc.searchParams.get('state')).toBe('st-123');
    expect(loc.searchParams.get('iss')).toBe(app.issuer);
    const r = await flow.exchange(loc.searchParams.get('code')!, verifier);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const t = await json(r);
    expect(decodeProtectedHeader(t.access_token as string).typ).toBe('at+jwt');
    const at = decodeJwt(t.access_token as string);
    const sub = await app.linking.service.subjectFor(identity.id, 'card');
    expect(at).toMatchObject({ iss: app.issuer, aud: 'card', sub, client_id: 'card-h5', scope: 'openid profile offline_access', binding_id: bindingIds[0], account: '6222000011112222', amr: ['verify-api'] });
    expect(typeof at.auth_time).toBe('number');
    expect(at.openid).toBeUndefined(); // card does not expose WeChat ids
    const idt = decodeJwt(t.id_token as string);
    expect(decodeProtectedHeader(t.id_token as string).typ).toBe('JWT');
    expect(idt).toMatchObject({ iss: app.issuer, aud: 'card-h5', sub, nonce: 'n-456', name: '小明', picture: 'https://img.example/a.png' });
    expect(idt.at_hash).toBe(atHashOf(t.access_token as string)); // OIDC Core §3.1.3.6
    expect(typeof t.refresh_token).toBe('string');
  });

  it('When the verifier is missing or wrong, then invalid_grant, and the code is not spent by it (check order)', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(ua, challenge)).searchParams.get('code')!;
    expect((await json(await flow.exchange(code, undefined))).error).toBe('invalid_grant');
    expect((await json(await flow.exchange(code, pkce().verifier))).error).toBe('invalid_grant');
    expect((await flow.exchange(code, verifier)).status).toBe(200);
  });

  it('When the verifier is outside 43–128 unreserved characters, then invalid_grant even though its S256 matches the challenge (RFC 7636 §4.1, §4.6)', async () => {
    const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');
    for (const verifier of ['a'.repeat(42), 'a'.repeat(129), `${'a'.repeat(42)}+`, `${'a'.repeat(42)} `]) {
      const { ua } = flow.user(['6222000011112222']);
      const code = (await flow.codeFor(ua, s256(verifier))).searchParams.get('code')!;
      const r = await flow.exchange(code, verifier);
      expect(r.status).toBe(400);
      expect((await json(r)).error).toBe('invalid_grant');
    }
  });

  it('When redirect_uri differs from the request, or another client presents the code, then invalid_grant', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(ua, challenge)).searchParams.get('code')!;
    expect((await json(await flow.exchange(code, verifier, flow.h5, 'https://h5.card.example/other?x=1'))).error).toBe('invalid_grant');
    expect((await json(await flow.exchange(code, verifier, { authorization: basic('power-h5', SECRETS.powerH5) }, POWER_REDIRECT))).error).toBe('invalid_grant');
  });

  it('When a code is replayed, then invalid_grant and everything the first exchange issued is revoked (RFC 6749 §4.1.2, RFC 9700 §4.2.4)', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(ua, challenge)).searchParams.get('code')!;
    const first = await json(await flow.exchange(code, verifier));
    expect((await json(await flow.introspect(first.access_token as string))).active).toBe(true);
    const replay = await flow.exchange(code, verifier);
    expect(replay.status).toBe(400);
    expect((await json(replay)).error).toBe('invalid_grant');
    expect(await json(await flow.introspect(first.access_token as string))).toEqual({ active: false });
    const refresh = await postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token as string }, flow.h5);
    expect((await json(refresh)).error).toBe('invalid_grant');
  });

  it('When two exchanges of one code race, then exactly one succeeds and its tokens end up revoked', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(ua, challenge)).searchParams.get('code')!;
    const results = await Promise.all([flow.exchange(code, verifier), flow.exchange(code, verifier), flow.exchange(code, verifier)]);
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBeLessThanOrEqual(1);
    for (const r of ok) {
      const t = await json(r);
      expect(await json(await flow.introspect(t.access_token as string))).toEqual({ active: false });
      const rt = await postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: t.refresh_token as string }, flow.h5);
      expect(rt.status).toBe(400);
    }
  });

  it('When the code is older than 60 s, then invalid_grant', async () => {
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(ua, challenge)).searchParams.get('code')!;
    clockOffset = 61_000;
    try {
      expect((await json(await flow.exchange(code, verifier))).error).toBe('invalid_grant');
    } finally {
      clockOffset = 0;
    }
  });

  it('When a merchant allows WeChat ids, then its tokens carry openid; a client without refresh_token gets none', async () => {
    const identity = app.linking.addIdentity({ appId: APP_ID, openid: 'oPowerUser0001' });
    app.linking.addBinding({ identityId: identity.id, merchantId: 'power', accountId: 'METER-1' });
    const ua = new UserAgent();
    ua.setCookie(FAKE_SESSION_COOKIE, app.linking.login(identity.id, APP_ID));
    const { verifier, challenge } = pkce();
    const r = await ua.get(flow.authorizeUrl({ response_type: 'code', client_id: 'power-h5', redirect_uri: POWER_REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }));
    const code = new URL(r.headers.get('location')!).searchParams.get('code')!;
    const t = await json(await flow.exchange(code, verifier, { authorization: basic('power-h5', SECRETS.powerH5) }, POWER_REDIRECT));
    expect(decodeJwt(t.access_token as string)).toMatchObject({ aud: 'power', openid: 'oPowerUser0001' });
    expect(t.refresh_token).toBeUndefined();
    // Pairwise: the same person has different subs at different merchants.
    expect(decodeJwt(t.access_token as string).sub).not.toBe(await app.linking.service.subjectFor(identity.id, 'card'));
  });
});

describe('refresh tokens and unbinding (RFC 6749 §6, RFC 9700 §4.14.2, DESIGN "Tokens")', () => {
  async function loggedIn() {
    const u = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const code = (await flow.codeFor(u.ua, challenge)).searchParams.get('code')!;
    return { ...u, tokens: await json(await flow.exchange(code, verifier)) };
  }
  const refresh = (rt: string, extra: Record<string, string> = {}) => postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: rt, ...extra }, flow.h5);

  it('When a refresh token is used, then it rotates; the old one used again revokes the whole family', async () => {
    const { tokens } = await loggedIn();
    const r1 = await json(await refresh(tokens.refresh_token as string));
    expect(r1.refresh_token).not.toBe(tokens.refresh_token);
    const reuse = await refresh(tokens.refresh_token as string);
    expect((await json(reuse)).error).toBe('invalid_grant');
    expect((await json(await refresh(r1.refresh_token as string))).error).toBe('invalid_grant');
    expect(await json(await flow.introspect(r1.access_token as string))).toEqual({ active: false });
  });

  it('When another client of the same merchant, one allowed the refresh grant, presents the refresh token, then invalid_grant, and it still works for its own client (RFC 6749 §6, §10.4)', async () => {
    const { tokens } = await loggedIn();
    const clientId = `ui-sibling-${process.pid}-${Date.now()}`;
    const secret = 'ui-sibling-secret-0001';
    await insertUiClient(app.deps.db, {
      clientId,
      merchantId: 'card',
      secretHash: await hashSecret(secret),
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://h5.card.example/sibling'],
      scopes: ['openid', 'profile', 'offline_access'],
      accessTokenTtl: 600,
      createdBy: 'test',
      at: new Date(),
    });
    const sibling = await postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }, { authorization: basic(clientId, secret) });
    expect(sibling.status).toBe(400);
    expect((await json(sibling)).error).toBe('invalid_grant');
    const own = await refresh(tokens.refresh_token as string);
    expect(own.status).toBe(200);
    expect(own.headers.get('cache-control')).toBe('no-store');
    expect(own.headers.get('pragma')).toBe('no-cache'); // RFC 6749 §5.1
  });

  it('When openid was granted, then a refresh returns a new ID token as OIDC Core §12.2 says: same iss, sub, aud and auth_time, no nonce, at_hash of the new access token', async () => {
    const { tokens } = await loggedIn();
    const first = decodeJwt(tokens.id_token as string);
    const r1 = await json(await refresh(tokens.refresh_token as string));
    const again = decodeJwt(r1.id_token as string);
    expect(again).toMatchObject({ iss: first.iss, sub: first.sub, aud: first.aud, auth_time: first.auth_time });
    expect(again.nonce).toBeUndefined();
    expect(again.at_hash).toBe(atHashOf(r1.access_token as string));
    expect(again.iat).toBeGreaterThanOrEqual(first.iat!);
    // Without openid in the (narrowed) scope, no ID token.
    const narrow = await json(await refresh(r1.refresh_token as string, { scope: 'offline_access' }));
    expect(narrow.access_token).toBeTruthy();
    expect(narrow.id_token).toBeUndefined();
  });

  it('When a refresh asks for a narrower scope, then it gets it; a wider one is invalid_scope', async () => {
    const { tokens } = await loggedIn();
    const narrow = await json(await refresh(tokens.refresh_token as string, { scope: 'openid' }));
    expect(narrow.scope).toBe('openid');
    expect((await json(await refresh(narrow.refresh_token as string, { scope: 'openid bindings:read' }))).error).toBe('invalid_scope');
  });

  it('When a refresh token is introspected, then it is active for its merchant only', async () => {
    const { tokens } = await loggedIn();
    expect(await json(await flow.introspect(tokens.refresh_token as string))).toMatchObject({ active: true, token_type: 'refresh_token', client_id: 'card-h5' });
    const other = await postForm(`${app.baseUrl}/oauth2/introspect`, { token: tokens.refresh_token as string }, { authorization: basic('power-backend', SECRETS.powerBackend) });
    expect(await json(other)).toEqual({ active: false });
  });

  it('When the binding is revoked, then refresh fails at once and introspection and userinfo report the access token dead', async () => {
    const { tokens, bindingIds } = await loggedIn();
    const ui = await fetch(`${app.baseUrl}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token as string}` } });
    expect(await json(ui)).toMatchObject({ account: '6222000011112222', name: '小明' });
    await app.linking.service.revokeBinding({ bindingId: bindingIds[0]!, merchantId: 'card', actor: 'test', reason: 'card cancelled' });
    expect((await json(await refresh(tokens.refresh_token as string))).error).toBe('invalid_grant');
    expect(await json(await flow.introspect(tokens.access_token as string))).toEqual({ active: false });
    const dead = await fetch(`${app.baseUrl}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token as string}` } });
    expect(dead.status).toBe(401);
  });

  it('When the client a refresh token was issued to is disabled, then introspection reports the refresh token inactive, as it does the access token (RFC 7662 §2.2)', async () => {
    const clientId = `ui-refresh-${process.pid}-${Date.now()}`;
    const secret = 'ui-refresh-secret-0001';
    const redirect = 'https://h5.card.example/ui/callback';
    await insertUiClient(app.deps.db, {
      clientId,
      merchantId: 'card',
      secretHash: await hashSecret(secret),
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [redirect],
      scopes: ['openid'],
      accessTokenTtl: 600,
      createdBy: 'test',
      at: new Date(),
    });
    const { ua } = flow.user(['6222000011112222']);
    const { verifier, challenge } = pkce();
    const r = await ua.get(flow.authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: redirect, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }));
    const code = new URL(r.headers.get('location')!).searchParams.get('code')!;
    const t = await json(await flow.exchange(code, verifier, { authorization: basic(clientId, secret) }, redirect));
    // The merchant's backend asks about the tokens its web app holds.
    const backend = { authorization: basic('card-backend', SECRETS.cardBackend) };
    const active = async (token: string) => (await json(await postForm(`${app.baseUrl}/oauth2/introspect`, { token }, backend))).active;
    expect(await active(t.access_token as string)).toBe(true);
    expect(await active(t.refresh_token as string)).toBe(true);
    await app.deps.db.query('UPDATE admin_clients SET disabled_at = now(), updated_at = now() WHERE client_id = $1', [clientId]);
    clockOffset = 2_100; // past the registry's 2 s cache of admin clients
    try {
      expect(await active(t.access_token as string)).toBe(false);
      expect(await active(t.refresh_token as string)).toBe(false);
    } finally {
      clockOffset = 0;
    }
  });

  it('When the family is revoked between reading a refresh token and rotating it (a reuse racing a refresh), then the rotation is refused and no token escapes the revocation (RFC 9700 §4.14.2)', async () => {
    const { tokens } = await loggedIn();
    const refreshSvc = createRefreshService({ db: app.deps.db, tokens: app.oauth.tokens, now: () => Date.now() + clockOffset, policy: defaultPolicy, log: app.deps.log });
    const found = (await refreshSvc.find(tokens.refresh_token as string))!;
    expect(refreshSvc.problem(found)).toBeNull();
    // The other request of the race: reuse detected, the family revoked.
    await refreshSvc.revoke(found.family_id, 'reuse_detected');
    const next = await refreshSvc.rotate(found, { jti: 'raced-jti', exp: Math.floor(Date.now() / 1000) + 600 });
    expect(next).toBeNull();
  });

  it('When a refresh token is revoked by its client, then it and its access tokens stop working (RFC 7009 §2.1)', async () => {
    const { tokens } = await loggedIn();
    expect((await postForm(`${app.baseUrl}/oauth2/revoke`, { token: tokens.refresh_token as string, token_type_hint: 'refresh_token' }, flow.h5)).status).toBe(200);
    expect((await json(await refresh(tokens.refresh_token as string))).error).toBe('invalid_grant');
    expect(await json(await flow.introspect(tokens.access_token as string))).toEqual({ active: false });
  });
});
