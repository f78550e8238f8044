import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { WeChatApiError, WeChatTransportError } from './errors.ts';
import type { FetchLike } from './http.ts';
import { createWebAuthClient, parseScopes } from './web-auth.ts';

interface Seen {
  url: URL;
  init: RequestInit;
}

function fakeWeChat(answer: (url: URL, n: number) => unknown | Promise<unknown>) {
  const seen: Seen[] = [];
  const lines: string[] = [];
  const fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    seen.push({ url, init });
    const body = await answer(url, seen.length);
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status: 200 });
  };
  const client = createWebAuthClient({
    oauthBaseUrl: 'https://open.weixin.qq.com/',
    apiBaseUrl: 'https://api.weixin.qq.com',
    fetch,
    timeoutMs: 50,
    logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }),
    sleep: async () => {},
  });
  return { client, seen, lines };
}

const tokenBody = {
  access_token: 'USERTOKEN1',
  expires_in: 7200,
  refresh_token: 'REFRESH1',
  openid: 'oUser1',
  scope: 'snsapi_userinfo',
};

describe('authorizeUrl (§1.2)', () => {
  const { client } = fakeWeChat(() => ({}));

  it('When building the authorize URL, then parameters come in WeChat\'s exact order with #wechat_redirect', () => {
    const url = client.authorizeUrl({
      appId: 'wx1234567890abcdef',
      redirectUri: 'https://bridge.example.com/wechat/oauth/callback?x=1&y=a b',
      scope: 'snsapi_base',
      state: 'abcXYZ019',
    });
    expect(url).toBe(
      'https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef' +
        '&redirect_uri=https%3A%2F%2Fbridge.example.com%2Fwechat%2Foauth%2Fcallback%3Fx%3D1%26y%3Da%20b' +
        '&response_type=code&scope=snsapi_base&state=abcXYZ019#wechat_redirect',
    );
  });

  it('When forcePopup is asked for, then it follows state, before the fragment', () => {
    const url = client.authorizeUrl({
      appId: 'wx1',
      redirectUri: 'https://b.example/cb',
      scope: 'snsapi_userinfo',
      state: 's',
      forcePopup: true,
    });
    expect(url).toBe(
      'https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1&redirect_uri=https%3A%2F%2Fb.example%2Fcb' +
        '&response_type=code&scope=snsapi_userinfo&state=s&forcePopup=true#wechat_redirect',
    );
  });

  it.each([
    ['', 'empty'],
    ['a'.repeat(129), 'longer than 128'],
    ['abc-def', 'with a dash'],
    ['abc def', 'with a space'],
    ['状态', 'non-ASCII'],
  ])('When state is %j (%s), then it is rejected', (state) => {
    expect(() => client.authorizeUrl({ appId: 'wx1', redirectUri: 'https://b.example/cb', scope: 'snsapi_base', state })).toThrow(
      /state/,
    );
  });

  it('When state is 128 alphanumerics, then it is accepted', () => {
    const state = 'aZ9'.repeat(42) + 'ab';
    expect(client.authorizeUrl({ appId: 'wx1', redirectUri: 'https://b.example/cb', scope: 'snsapi_base', state })).toContain(
      `state=${state}#`,
    );
  });

  it('When redirect_uri has a fragment, a port, or is relative, then it is rejected', () => {
    const base = { appId: 'wx1', scope: 'snsapi_base' as const, state: 's' };
    expect(() => client.authorizeUrl({ ...base, redirectUri: 'https://b.example/cb#x' })).toThrow(/#/);
    expect(() => client.authorizeUrl({ ...base, redirectUri: 'https://b.example:8443/cb' })).toThrow(/port/);
    expect(() => client.authorizeUrl({ ...base, redirectUri: '/cb' })).toThrow(/absolute/);
    expect(() => client.authorizeUrl({ ...base, redirectUri: 'javascript:alert(1)' })).toThrow(/http/);
    expect(() => client.authorizeUrl({ ...base, scope: 'snsapi_login' as never, redirectUri: 'https://b.example/cb' })).toThrow(/scope/);
  });
});

describe('qrConnectUrl (§1.10, website QR login)', () => {
  const { client } = fakeWeChat(() => ({}));

  it('When building the QR login URL, then it is connect/qrconnect with snsapi_login in the §1.2 order, lang before the fragment', () => {
    const url = client.qrConnectUrl({ appId: 'wx0000000000000web', redirectUri: 'https://bridge.example.com/wechat/oauth/callback?oa=demo&app=web', state: 'abc123', lang: 'en' });
    expect(url).toBe(
      'https://open.weixin.qq.com/connect/qrconnect?appid=wx0000000000000web' +
        '&redirect_uri=https%3A%2F%2Fbridge.example.com%2Fwechat%2Foauth%2Fcallback%3Foa%3Ddemo%26app%3Dweb' +
        '&response_type=code&scope=snsapi_login&state=abc123&lang=en#wechat_redirect',
    );
  });

  it('When no language is given, then WeChat\'s default applies (no lang parameter)', () => {
    expect(client.qrConnectUrl({ appId: 'wx1', redirectUri: 'https://b.example/cb', state: 's' })).toBe(
      'https://open.weixin.qq.com/connect/qrconnect?appid=wx1&redirect_uri=https%3A%2F%2Fb.example%2Fcb&response_type=code&scope=snsapi_login&state=s#wechat_redirect',
    );
  });

  it('When state, redirect_uri or lang break WeChat\'s rules, then it is rejected like the authorize URL', () => {
    const base = { appId: 'wx1', redirectUri: 'https://b.example/cb', state: 's' };
    expect(() => client.qrConnectUrl({ ...base, state: 'a-b' })).toThrow(/qrConnectUrl: state/);
    expect(() => client.qrConnectUrl({ ...base, redirectUri: 'https://b.example/cb#x' })).toThrow(/#/);
    expect(() => client.qrConnectUrl({ ...base, redirectUri: 'https://b.example:8443/cb' })).toThrow(/port/);
    expect(() => client.qrConnectUrl({ ...base, appId: 'wx1&scope=snsapi_base' })).toThrow(/appId/);
    expect(() => client.qrConnectUrl({ ...base, lang: 'fr' as never })).toThrow(/lang/);
  });
});

describe('exchangeCode (§1.5)', () => {
  it('When WeChat answers a token set, then scopes are split (trailing comma tolerated) and the request carries the right query', async () => {
    const { client, seen, lines } = fakeWeChat(() => ({ ...tokenBody, scope: 'snsapi_base,snsapi_userinfo,', unionid: 'uUnion1' }));
    const r = await client.exchangeCode({ appId: 'wx1', appSecret: 'APPSECRETVALUE', code: 'CODEVALUE' });
    expect(r).toEqual({
      openid: 'oUser1',
      unionid: 'uUnion1',
      scopes: ['snsapi_base', 'snsapi_userinfo'],
      accessToken: 'USERTOKEN1',
      refreshToken: 'REFRESH1',
      expiresIn: 7200,
      isSnapshotUser: false,
    });
    const u = seen[0]!.url;
    expect(u.pathname).toBe('/sns/oauth2/access_token');
    expect([...u.searchParams.keys()]).toEqual(['appid', 'secret', 'code', 'grant_type']);
    expect(u.searchParams.get('grant_type')).toBe('authorization_code');
    expect(lines.join('')).not.toMatch(/APPSECRETVALUE|CODEVALUE|USERTOKEN1|REFRESH1/);
  });

  it('When is_snapshotuser is 1, then the result says so (§1.8: never link it)', async () => {
    const { client } = fakeWeChat(() => ({ ...tokenBody, is_snapshotuser: 1 }));
    expect((await client.exchangeCode({ appId: 'wx1', appSecret: 's', code: 'c' })).isSnapshotUser).toBe(true);
  });

  it('When WeChat answers -1, then the exchange is not retried (the code may be spent) and the busy error surfaces', async () => {
    const { client, seen } = fakeWeChat(() => ({ errcode: -1, errmsg: 'system error rid: 1' }));
    const e = await client.exchangeCode({ appId: 'wx1', appSecret: 's', code: 'c' }).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatApiError);
    expect(e).toMatchObject({ kind: 'busy' });
    expect(seen).toHaveLength(1);
  });

  it('When the code was used already, then 40163 comes out as code_spent', async () => {
    const { client } = fakeWeChat(() => ({ errcode: 40163, errmsg: 'code been used, rid: 2' }));
    await expect(client.exchangeCode({ appId: 'wx1', appSecret: 's', code: 'c' })).rejects.toMatchObject({
      kind: 'code_spent',
      policy: 'RA',
    });
  });

  it('When WeChat does not answer in time, then the timeout is ambiguous (the code may be consumed)', async () => {
    const { client } = fakeWeChat(() => new Promise(() => {}));
    const e = await client.exchangeCode({ appId: 'wx1', appSecret: 's', code: 'c' }).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatTransportError);
    expect(e).toMatchObject({ reason: 'timeout', ambiguous: true });
  });

  it('When the body lacks openid, then a typed invalid_payload error comes out, never a crash', async () => {
    const { client } = fakeWeChat(() => ({ access_token: 'a', expires_in: 7200, refresh_token: 'r', scope: 'snsapi_base' }));
    await expect(client.exchangeCode({ appId: 'wx1', appSecret: 's', code: 'c' })).rejects.toMatchObject({
      name: 'WeChatTransportError',
      reason: 'invalid_payload',
    });
  });
});

describe('refresh, userInfo, checkToken (§1.6, §1.7, §1.9)', () => {
  it('When refresh meets -1 once, then it retries once and succeeds', async () => {
    const { client, seen } = fakeWeChat((_u, n) => (n === 1 ? { errcode: -1, errmsg: 'system error' } : tokenBody));
    const r = await client.refresh({ appId: 'wx1', refreshToken: 'REFRESH1', expectedOpenid: 'oUser1' });
    expect(r.accessToken).toBe('USERTOKEN1');
    expect(seen).toHaveLength(2);
    expect(seen[0]!.url.searchParams.get('secret')).toBeNull();
  });

  it('When refresh returns another openid than expected, then the answer is refused', async () => {
    const { client } = fakeWeChat(() => tokenBody);
    await expect(client.refresh({ appId: 'wx1', refreshToken: 'r', expectedOpenid: 'oOther' })).rejects.toMatchObject({
      reason: 'invalid_payload',
    });
  });

  it('When the refresh token is dead, then it is refresh_invalid (re-authorize)', async () => {
    const { client } = fakeWeChat(() => ({ errcode: 42002, errmsg: 'refresh_token expired' }));
    await expect(client.refresh({ appId: 'wx1', refreshToken: 'r' })).rejects.toMatchObject({ kind: 'refresh_invalid', policy: 'RA' });
  });

  it('When userinfo has sex as a string and no language, then it parses leniently', async () => {
    const { client, seen } = fakeWeChat(() => ({
      openid: 'oUser1',
      nickname: '张三',
      sex: '1',
      province: '',
      city: '',
      country: '',
      headimgurl: 'https://thirdwx.qlogo.cn/x/0',
      privilege: [],
    }));
    const u = await client.userInfo({ accessToken: 'USERTOKEN1', openid: 'oUser1' });
    expect(u).toEqual({
      openid: 'oUser1',
      nickname: '张三',
      sex: 1,
      province: '',
      city: '',
      country: '',
      headImgUrl: 'https://thirdwx.qlogo.cn/x/0',
      privilege: [],
    });
    expect(seen[0]!.url.searchParams.get('lang')).toBe('zh_CN');
  });

  it('When userinfo is asked with a base-scope token, then 48001 comes out as unauthorized', async () => {
    const { client } = fakeWeChat(() => ({ errcode: 48001, errmsg: 'api unauthorized rid: 3' }));
    await expect(client.userInfo({ accessToken: 't', openid: 'o' })).rejects.toMatchObject({ kind: 'unauthorized' });
  });

  it('When userinfo describes another openid, then the answer is refused', async () => {
    const { client } = fakeWeChat(() => ({ openid: 'oOther', nickname: 'x', sex: 0 }));
    await expect(client.userInfo({ accessToken: 't', openid: 'oUser1' })).rejects.toMatchObject({ reason: 'invalid_payload' });
  });

  it('When checking a token, then ok is true, a bad token or openid is false, and busy still throws', async () => {
    expect(await fakeWeChat(() => ({ errcode: 0, errmsg: 'ok' })).client.checkToken({ accessToken: 't', openid: 'o' })).toBe(true);
    expect(await fakeWeChat(() => ({ errcode: 40003, errmsg: 'invalid openid' })).client.checkToken({ accessToken: 't', openid: 'o' })).toBe(false);
    expect(await fakeWeChat(() => ({ errcode: 42001, errmsg: 'expired' })).client.checkToken({ accessToken: 't', openid: 'o' })).toBe(false);
    await expect(
      fakeWeChat(() => ({ errcode: -1, errmsg: 'busy' })).client.checkToken({ accessToken: 't', openid: 'o' }),
    ).rejects.toMatchObject({ kind: 'busy' });
  });

  it('parseScopes: When the list has blanks and a trailing comma, then only names remain', () => {
    expect(parseScopes(' snsapi_base , ,snsapi_userinfo,')).toEqual(['snsapi_base', 'snsapi_userinfo']);
  });
});
