import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createWeChatApi, type TokenSource } from './api.ts';
import { WeChatApiError, WeChatTransportError } from './errors.ts';
import type { FetchLike } from './http.ts';

interface Seen {
  url: URL;
  method: string;
  body: string | undefined;
}

/** Tokens t1, t2, … : `refresh` records the bad token it was given. */
function fakeTokens(): TokenSource & { refreshes: (string | undefined)[] } {
  let current = 't1';
  const refreshes: (string | undefined)[] = [];
  return {
    refreshes,
    get: async () => current,
    refresh: async (_appId, bad) => {
      refreshes.push(bad);
      current = `t${Number(current.slice(1)) + 1}`;
      return current;
    },
  };
}

function fakeWeChat(answer: (s: Seen, n: number) => unknown | Promise<unknown>) {
  const seen: Seen[] = [];
  const fetch: FetchLike = async (input, init) => {
    const s = { url: new URL(input), method: init.method ?? 'GET', body: init.body as string | undefined };
    seen.push(s);
    const body = await answer(s, seen.length);
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status: 200 });
  };
  const tokens = fakeTokens();
  const delays: number[] = [];
  const api = createWeChatApi({
    tokens,
    fetch,
    apiBaseUrl: 'https://api.weixin.qq.com',
    timeoutMs: 50,
    logger: pino({ level: 'silent' }),
    sleep: async (ms) => void delays.push(ms),
    random: () => 0.5,
  });
  return { api, seen, tokens, delays };
}

const ok = { errcode: 0, errmsg: 'ok' };
const text = { touser: 'oUser1', msgtype: 'text' as const, text: { content: '您好，绑定成功' } };

describe('WeChat server API (§3, §4, §7, §8)', () => {
  it('When sending a custom message, then access_token is in the query and the body is raw UTF-8 JSON', async () => {
    const { api, seen } = fakeWeChat(() => ok);
    await api.customSend('wxA', text);
    expect(seen[0]!.url.pathname).toBe('/cgi-bin/message/custom/send');
    expect(seen[0]!.url.searchParams.get('access_token')).toBe('t1');
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.body).toBe(JSON.stringify(text));
    expect(seen[0]!.body).toContain('您好');
  });

  it('When WeChat rejects the token with 40001, then the used token is refreshed once and the call retried once', async () => {
    const { api, seen, tokens } = fakeWeChat((s) =>
      s.url.searchParams.get('access_token') === 't1' ? { errcode: 40001, errmsg: 'invalid credential rid: 1' } : ok,
    );
    await api.customSend('wxA', text);
    expect(tokens.refreshes).toEqual(['t1']);
    expect(seen.map((s) => s.url.searchParams.get('access_token'))).toEqual(['t1', 't2']);
  });

  it('When the refreshed token is rejected too, then the error surfaces after exactly one refresh', async () => {
    const { api, seen, tokens } = fakeWeChat(() => ({ errcode: 42001, errmsg: 'access_token expired' }));
    const e = await api.userInfo('wxA', 'oUser1').catch((x) => x);
    expect(e).toMatchObject({ kind: 'token_invalid', errcode: 42001 });
    expect(tokens.refreshes).toHaveLength(1);
    expect(seen).toHaveLength(2);
  });

  it('When a read meets -1, then it is retried with capped full-jitter backoff', async () => {
    const { api, seen, delays } = fakeWeChat((_s, n) => (n < 3 ? { errcode: -1, errmsg: 'system error' } : { subscribe: 0, openid: 'oUser1' }));
    expect(await api.userInfo('wxA', 'oUser1')).toEqual({ subscribed: false, openid: 'oUser1' });
    expect(seen).toHaveLength(3);
    expect(delays).toEqual([100, 200]);
  });

  it('When a send meets -1, then it is not retried and the busy error surfaces', async () => {
    const { api, seen } = fakeWeChat(() => ({ errcode: -1, errmsg: 'system error' }));
    await expect(api.customSend('wxA', text)).rejects.toMatchObject({ kind: 'busy', retryable: true });
    await expect(api.templateSend('wxA', { touser: 'o', template_id: 't', data: {} })).rejects.toMatchObject({ kind: 'busy' });
    expect(seen).toHaveLength(2);
  });

  it('When a send times out, then it is not retried and surfaces as ambiguous', async () => {
    const { api, seen } = fakeWeChat(() => new Promise(() => {}));
    const e = await api.customSend('wxA', text).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatTransportError);
    expect(e).toMatchObject({ reason: 'timeout', ambiguous: true });
    expect(seen).toHaveLength(1);
  });

  it.each([
    [45015, 'window_closed', 'W'],
    [45047, 'window_closed', 'W'],
    [43004, 'not_subscribed', 'NR'],
    [48002, 'user_refused', 'NR'],
    [45009, 'quota_daily', 'Q'],
  ])('When custom send answers %i, then it is %s (%s) and not retried', async (errcode, kind, policy) => {
    const { api, seen } = fakeWeChat(() => ({ errcode, errmsg: 'x rid: 1' }));
    const e = await api.customSend('wxA', text).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatApiError);
    expect(e).toMatchObject({ kind, policy, endpoint: '/cgi-bin/message/custom/send' });
    expect(seen).toHaveLength(1);
  });

  it('When a template send succeeds with an int64 msgid, then the msgid comes back exact as a string', async () => {
    const { api, seen } = fakeWeChat(() => '{"errcode":0,"errmsg":"ok","msgid":3487542469355618313}');
    const r = await api.templateSend('wxA', {
      touser: 'oUser1',
      template_id: 'tpl',
      client_msg_id: 'delivery-1',
      data: { thing1: { value: '账单' } },
    });
    expect(r).toEqual({ msgid: '3487542469355618313' });
    expect(JSON.parse(seen[0]!.body!)).toMatchObject({ client_msg_id: 'delivery-1' });
  });

  it('When a template send succeeds without msgid, then it is a typed invalid_payload error (ambiguous: it may have been sent)', async () => {
    const { api } = fakeWeChat(() => ok);
    await expect(api.templateSend('wxA', { touser: 'o', template_id: 't', data: {} })).rejects.toMatchObject({
      reason: 'invalid_payload',
      ambiguous: true,
    });
  });

  it('When typing is toggled, then touser and command are posted', async () => {
    const { api, seen } = fakeWeChat(() => ok);
    await api.typing('wxA', 'oUser1', 'Typing');
    expect(seen[0]!.url.pathname).toBe('/cgi-bin/message/custom/typing');
    expect(JSON.parse(seen[0]!.body!)).toEqual({ touser: 'oUser1', command: 'Typing' });
  });

  it('When a subscription notice is sent, then it goes to bizsend', async () => {
    const { api, seen } = fakeWeChat(() => ok);
    expect(await api.subscribeSend('wxA', { touser: 'o', template_id: 't', page: 'https://x', data: { thing1: { value: 'v' } } })).toEqual({});
    expect(seen[0]!.url.pathname).toBe('/cgi-bin/message/subscribe/bizsend');
  });

  it('When user info is read for a follower, then the fields are mapped and lang defaults to zh_CN', async () => {
    const { api, seen } = fakeWeChat(() => ({
      subscribe: 1,
      openid: 'oUser1',
      subscribe_time: 1700000000,
      unionid: 'uX',
      remark: '',
      groupid: 0,
      tagid_list: [128, 2],
      subscribe_scene: 'ADD_SCENE_QR_CODE',
      qr_scene: 98765,
      qr_scene_str: '',
    }));
    expect(await api.userInfo('wxA', 'oUser1')).toEqual({
      subscribed: true,
      openid: 'oUser1',
      unionid: 'uX',
      subscribeTime: 1700000000,
      subscribeScene: 'ADD_SCENE_QR_CODE',
      qrScene: 98765,
      remark: '',
      tagIds: [128, 2],
    });
    expect(seen[0]!.url.searchParams.get('openid')).toBe('oUser1');
    expect(seen[0]!.url.searchParams.get('lang')).toBe('zh_CN');
  });

  it('When 250 openids are batch-read, then WeChat gets chunks of at most 100', async () => {
    const { api, seen } = fakeWeChat((s) => ({
      user_info_list: (JSON.parse(s.body!) as { user_list: { openid: string }[] }).user_list.map((u) => ({ subscribe: 0, openid: u.openid })),
    }));
    const ids = Array.from({ length: 250 }, (_, i) => `o${i}`);
    const r = await api.batchGetUserInfo('wxA', ids);
    expect(r.map((u) => u.openid)).toEqual(ids);
    expect(seen.map((s) => (JSON.parse(s.body!) as { user_list: unknown[] }).user_list.length)).toEqual([100, 100, 50]);
    expect(await api.batchGetUserInfo('wxA', [])).toEqual([]);
    expect(seen).toHaveLength(3);
  });

  it('When the follower list ends, then a final page without data reads as empty with no next openid', async () => {
    const { api, seen } = fakeWeChat((_s, n) =>
      n === 1 ? { total: 2, count: 2, data: { openid: ['o1', 'o2'] }, next_openid: 'o2' } : { total: 2, count: 0, next_openid: '' },
    );
    expect(await api.getFollowers('wxA')).toEqual({ total: 2, count: 2, openids: ['o1', 'o2'], nextOpenid: 'o2' });
    expect(await api.getFollowers('wxA', 'o2')).toEqual({ total: 2, count: 0, openids: [] });
    expect(seen[0]!.url.searchParams.has('next_openid')).toBe(false);
    expect(seen[1]!.url.searchParams.get('next_openid')).toBe('o2');
  });

  it('When a QR code is created, then the body names the right action and the image URL encodes the ticket', async () => {
    const { api, seen } = fakeWeChat(() => ({ ticket: 'gQH47joAAAAA+/=', expire_seconds: 600, url: 'http://weixin.qq.com/q/abc' }));
    const qr = await api.createQrCode('wxA', { scene: 'bind:42', expireSeconds: 600 });
    expect(JSON.parse(seen[0]!.body!)).toEqual({ expire_seconds: 600, action_name: 'QR_STR_SCENE', action_info: { scene: { scene_str: 'bind:42' } } });
    expect(qr).toEqual({
      ticket: 'gQH47joAAAAA+/=',
      expireSeconds: 600,
      url: 'http://weixin.qq.com/q/abc',
      imageUrl: 'https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAA%2B%2F%3D',
    });
    await api.createQrCode('wxA', { scene: 7, permanent: true });
    expect(JSON.parse(seen[1]!.body!)).toEqual({ action_name: 'QR_LIMIT_SCENE', action_info: { scene: { scene_id: 7 } } });
  });

  it('When QR parameters break WeChat\'s limits, then the call is refused before any request', async () => {
    const { api, seen } = fakeWeChat(() => ({}));
    await expect(api.createQrCode('wxA', { scene: 100_001, permanent: true })).rejects.toThrow(RangeError);
    await expect(api.createQrCode('wxA', { scene: 0 })).rejects.toThrow(RangeError);
    await expect(api.createQrCode('wxA', { scene: 'x'.repeat(65) })).rejects.toThrow(RangeError);
    await expect(api.createQrCode('wxA', { scene: 1, expireSeconds: 2_592_001 })).rejects.toThrow(RangeError);
    await expect(api.createQrCode('wxA', { scene: 1, permanent: true, expireSeconds: 60 })).rejects.toThrow(RangeError);
    expect(seen).toHaveLength(0);
  });

  it('When a body is malformed, then a typed error comes out, never a crash', async () => {
    const { api } = fakeWeChat(() => ({ total: 'many' }));
    await expect(api.getFollowers('wxA')).rejects.toMatchObject({ name: 'WeChatTransportError', reason: 'invalid_payload', ambiguous: false });
  });
});
