/**
 * The web-auth client against the sandbox over real HTTP (wechat-protocol.md §1).
 * Codes come from the sandbox's control endpoint, as a browser would get them.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.ts';
import { WeChatApiError, WeChatTransportError } from './errors.ts';
import { createWebAuthClient, type WebAuthScope } from './web-auth.ts';

const REDIRECT = 'https://bridge.example.com/wechat/oauth/callback';
let sandbox: Sandbox;
let server: Server;
let base: string;

beforeAll(async () => {
  sandbox = createSandbox();
  server = createServer(sandbox.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sandbox.close();
  await new Promise((resolve) => server.close(resolve));
});

function newApp(extra: { openPlatformId?: string } = {}) {
  const appId = `wx${randomBytes(8).toString('hex')}`;
  const appSecret = randomBytes(16).toString('hex');
  sandbox.registerApp({
    appId,
    appSecret,
    token: 'bridgeToken2024',
    mode: 'plain',
    originalId: `gh_${randomBytes(6).toString('hex')}`,
    redirectDomains: ['bridge.example.com'],
    ...extra,
  });
  return { appId, appSecret };
}

const client = (timeoutMs = 2_000) =>
  createWebAuthClient({ oauthBaseUrl: base, apiBaseUrl: base, timeoutMs, logger: pino({ level: 'silent' }) });

/** What the user's browser does: open our authorize URL, consent, come back with a code. */
async function authorize(appId: string, userId: string, scope: WebAuthScope): Promise<string> {
  const state = randomBytes(12).toString('hex');
  const url = new URL(client().authorizeUrl({ appId, redirectUri: REDIRECT, scope, state }));
  const page = await fetch(url);
  expect(page.status).toBe(200);
  const res = await fetch(`${base}/control/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      appid: url.searchParams.get('appid'),
      redirect_uri: url.searchParams.get('redirect_uri'),
      scope: url.searchParams.get('scope'),
      state: url.searchParams.get('state'),
      userId,
      decision: 'allow',
    }),
  });
  expect(res.status).toBe(200);
  const back = new URL(((await res.json()) as { location: string }).location);
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(back.searchParams.get('state')).toBe(state);
  return back.searchParams.get('code') ?? '';
}

describe('web authorization against the sandbox (§1)', () => {
  it('When our authorize URL is opened, then WeChat\'s page accepts it (order, encoding, fragment)', async () => {
    const { appId } = newApp();
    const url = client().authorizeUrl({ appId, redirectUri: REDIRECT, scope: 'snsapi_userinfo', state: 'abc123', forcePopup: true });
    const html = await (await fetch(url)).text();
    expect(html).not.toMatch(/该链接无法访问|10003|10005/);
  });

  it('When a base-scope code is exchanged, then the openid is the user\'s, userinfo is 48001, and a reuse is 40163 code_spent', async () => {
    const { appId, appSecret } = newApp();
    const user = sandbox.createUser({ followsApps: [appId] });
    const code = await authorize(appId, user.userId, 'snsapi_base');
    const wa = client();
    const r = await wa.exchangeCode({ appId, appSecret, code });
    expect(r.openid).toBe(sandbox.openid(appId, user.userId));
    expect(r.scopes).toEqual(['snsapi_base']);
    expect(r.isSnapshotUser).toBe(false);
    expect(r.expiresIn).toBe(7200);
    await expect(wa.userInfo({ accessToken: r.accessToken, openid: r.openid })).rejects.toMatchObject({
      errcode: 48001,
      kind: 'unauthorized',
    });
    expect(await wa.checkToken({ accessToken: r.accessToken, openid: r.openid })).toBe(true);
    expect(await wa.checkToken({ accessToken: r.accessToken, openid: 'oSomeoneElse' })).toBe(false);
    const again = await wa.exchangeCode({ appId, appSecret, code }).catch((e) => e);
    expect(again).toBeInstanceOf(WeChatApiError);
    expect(again).toMatchObject({ errcode: 40163, kind: 'code_spent', policy: 'RA' });
    expect(again.errmsg).toMatch(/rid: /);
  });

  it('When a userinfo-scope code is exchanged, then the profile, unionid and refresh all work', async () => {
    const { appId, appSecret } = newApp({ openPlatformId: 'op1' });
    const user = sandbox.createUser({ nickname: '测试用户', hasUnionId: true });
    const wa = client();
    const r = await wa.exchangeCode({ appId, appSecret, code: await authorize(appId, user.userId, 'snsapi_userinfo') });
    expect(r.scopes).toEqual(['snsapi_userinfo']);
    expect(r.unionid).toBeTruthy();
    const info = await wa.userInfo({ accessToken: r.accessToken, openid: r.openid });
    expect(info).toMatchObject({ openid: r.openid, nickname: '测试用户', sex: 0, province: '', unionid: r.unionid });
    const refreshed = await wa.refresh({ appId, refreshToken: r.refreshToken, expectedOpenid: r.openid });
    expect(refreshed.openid).toBe(r.openid);
    await expect(wa.refresh({ appId, refreshToken: 'not-a-refresh-token' })).rejects.toMatchObject({ kind: 'refresh_invalid' });
  });

  it('When the user is a snapshot-page identity, then isSnapshotUser is true and userinfo is refused', async () => {
    const { appId, appSecret } = newApp();
    const user = sandbox.createUser({ snapshot: true });
    const wa = client();
    const r = await wa.exchangeCode({ appId, appSecret, code: await authorize(appId, user.userId, 'snsapi_userinfo') });
    expect(r.isSnapshotUser).toBe(true);
    expect(r.openid).not.toBe(sandbox.openid(appId, user.userId));
    await expect(wa.userInfo({ accessToken: r.accessToken, openid: r.openid })).rejects.toMatchObject({ errcode: 48001 });
  });

  it('When the code is garbage or the secret wrong, then code_spent and config errors come out', async () => {
    const { appId, appSecret } = newApp();
    const wa = client();
    await expect(wa.exchangeCode({ appId, appSecret, code: 'nonsense' })).rejects.toMatchObject({ errcode: 40029, kind: 'code_spent' });
    await expect(wa.exchangeCode({ appId, appSecret: 'wrong', code: 'x' })).rejects.toMatchObject({ errcode: 40125, kind: 'config' });
  });

  it('When WeChat is busy on the exchange, then it is surfaced after one call, not retried', async () => {
    const { appId, appSecret } = newApp();
    const user = sandbox.createUser();
    const code = await authorize(appId, user.userId, 'snsapi_base');
    sandbox.inject({ path: '/sns/oauth2/access_token', appId, errcode: -1, count: 1 });
    await expect(client().exchangeCode({ appId, appSecret, code })).rejects.toMatchObject({ kind: 'busy' });
    expect(sandbox.calls('/sns/oauth2/access_token').filter((c) => c.appId === appId)).toHaveLength(1);
    // -1 was injected before the endpoint ran, so this code is still good.
    expect((await client().exchangeCode({ appId, appSecret, code })).openid).toBe(sandbox.openid(appId, user.userId));
  });

  it('When the connection drops after WeChat consumed the code, then the failure is ambiguous and a retry meets 40163', async () => {
    const { appId, appSecret } = newApp();
    const user = sandbox.createUser();
    const code = await authorize(appId, user.userId, 'snsapi_base');
    sandbox.inject({ path: '/sns/oauth2/access_token', appId, dropAfterCommit: true, count: 1 });
    const e = await client().exchangeCode({ appId, appSecret, code }).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatTransportError);
    expect(e).toMatchObject({ reason: 'network', ambiguous: true });
    await expect(client().exchangeCode({ appId, appSecret, code })).rejects.toMatchObject({ errcode: 40163 });
  });

  it('When WeChat answers too slowly, then the exchange times out as ambiguous', async () => {
    const { appId, appSecret } = newApp();
    const user = sandbox.createUser();
    const code = await authorize(appId, user.userId, 'snsapi_base');
    sandbox.inject({ path: '/sns/oauth2/access_token', appId, latencyMs: 400, count: 1 });
    await expect(client(100).exchangeCode({ appId, appSecret, code })).rejects.toMatchObject({
      name: 'WeChatTransportError',
      reason: 'timeout',
      ambiguous: true,
    });
  });
});
