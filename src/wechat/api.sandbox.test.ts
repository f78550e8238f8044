/**
 * The server API client against the sandbox over real HTTP (wechat-protocol.md §3, §4, §7,
 * §8), with tokens from the access-token owner on every Kv adapter (Redis when REDIS_URL is
 * set). Each test registers its own appId.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import { createRedisKv } from '../store/kv-redis.ts';
import type { Kv } from '../store/kv.ts';
import { createAccessTokenManager } from './access-token.ts';
import { createWeChatApi } from './api.ts';
import { WeChatApiError, WeChatTransportError } from './errors.ts';

const kvFactories: [string, () => Promise<Kv>][] = [
  ['memory Kv', async () => createMemoryKv()],
  ...(process.env.REDIS_URL ? [['Redis Kv', () => createRedisKv({ url: process.env.REDIS_URL as string })] as [string, () => Promise<Kv>]] : []),
];

const TEMPLATE = 'tplBillReady0000000000000000000000000000001';
let sandbox: Sandbox;
let server: Server;
let base: string;

beforeAll(async () => {
  sandbox = createSandbox({ limits: { templateFinishDelayMs: 0 } });
  server = createServer(sandbox.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sandbox.close();
  await new Promise((resolve) => server.close(resolve));
});

const callsTo = (path: string, appId: string) => sandbox.calls(path).filter((c) => c.appId === appId);

describe.each(kvFactories)('WeChat API over %s', (_name, makeKv) => {
  let kv: Kv;
  beforeAll(async () => {
    kv = await makeKv();
  });
  afterAll(async () => {
    await kv.close();
  });

  /** A fresh account with one follower; `talk` opens their customer-service window. */
  async function setup(opts: { talk?: boolean; timeoutMs?: number } = {}) {
    const appId = `wx${randomBytes(8).toString('hex')}`;
    const appSecret = randomBytes(16).toString('hex');
    sandbox.registerApp({
      appId,
      appSecret,
      token: 'bridgeToken2024',
      mode: 'plain',
      originalId: 'gh_test',
      redirectDomains: ['b.example'],
      templates: { [TEMPLATE]: ['thing1', 'amount2'] },
    });
    const user = sandbox.createUser({ followsApps: [appId] });
    const openid = sandbox.openid(appId, user.userId);
    if (opts.talk) await sandbox.act(appId, user.userId, { type: 'text', content: '你好' });
    const logger = pino({ level: 'silent' });
    const tokens = createAccessTokenManager({ kv, apiBaseUrl: base, logger, accounts: (id) => (id === appId ? { appSecret } : undefined) });
    const api = createWeChatApi({
      tokens,
      apiBaseUrl: base,
      qrImageBaseUrl: base,
      logger,
      timeoutMs: opts.timeoutMs ?? 2_000,
      random: () => 0,
    });
    return { appId, appSecret, openid, userId: user.userId, api, tokens };
  }

  it('When the user has just written, then a custom message is delivered with its Chinese text intact', async () => {
    const { appId, openid, api } = await setup({ talk: true });
    await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: '绑定成功 ✅' } });
    const sent = sandbox.messages({ appId, kind: 'custom' });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.payload).toMatchObject({ content: '绑定成功 ✅' });
  });

  it('When the user never interacted, then custom send is 45015 window_closed (fall back to a template)', async () => {
    const { appId, openid, api } = await setup();
    const e = await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'x' } }).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatApiError);
    expect(e).toMatchObject({ errcode: 45015, kind: 'window_closed', policy: 'W' });
  });

  it('When the window quota is used up, then the next custom send is 45047 window_closed, sent once', async () => {
    const { appId, openid, api } = await setup({ talk: true });
    for (let i = 0; i < 5; i++) await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: `m${i}` } });
    await expect(api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'm5' } })).rejects.toMatchObject({
      errcode: 45047,
      kind: 'window_closed',
    });
    expect(callsTo('/cgi-bin/message/custom/send', appId)).toHaveLength(6);
  });

  it('When a template message is sent, then the int64 msgid comes back exact and client_msg_id de-duplicates', async () => {
    const { appId, openid, api } = await setup();
    const message = {
      touser: openid,
      template_id: TEMPLATE,
      client_msg_id: 'delivery-42',
      data: { thing1: { value: '信用卡账单' }, amount2: { value: '¥99.00' } },
    };
    const { msgid } = await api.templateSend(appId, message);
    const delivered = sandbox.messages({ appId, kind: 'template' });
    expect(delivered).toHaveLength(1);
    expect(msgid).toBe(delivered[0]!.msgid);
    expect(BigInt(msgid) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect((await api.templateSend(appId, message)).msgid).toBe(msgid);
    expect(sandbox.messages({ appId, kind: 'template' })).toHaveLength(1);
  });

  it('When the template is unknown or the user does not follow, then config and not_subscribed errors come out', async () => {
    const { appId, openid, userId, api } = await setup();
    await expect(api.templateSend(appId, { touser: openid, template_id: 'nope', data: {} })).rejects.toMatchObject({ errcode: 40037, kind: 'config' });
    await sandbox.act(appId, userId, { type: 'unfollow' });
    await expect(
      api.templateSend(appId, { touser: openid, template_id: TEMPLATE, data: { thing1: { value: 'a' }, amount2: { value: 'b' } } }),
    ).rejects.toMatchObject({ errcode: 43004, kind: 'not_subscribed' });
  });

  it('When WeChat rejects the token once with 40001, then one refresh and one retry deliver the message once', async () => {
    const { appId, openid, api, tokens } = await setup({ talk: true });
    await tokens.get(appId);
    sandbox.inject({ path: '/cgi-bin/message/custom/send', appId, errcode: 40001, count: 1 });
    await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'after refresh' } });
    expect(callsTo('/cgi-bin/stable_token', appId)).toHaveLength(2);
    expect(callsTo('/cgi-bin/message/custom/send', appId).map((c) => c.errcode)).toEqual([40001, 0]);
    expect(sandbox.messages({ appId, kind: 'custom' })).toHaveLength(1);
  });

  it('When an admin force-refreshes the token, then 20 concurrent reads meeting 40001 cost one fetch and all succeed', async () => {
    const { appId, appSecret, openid, api, tokens } = await setup();
    await tokens.get(appId);
    // A human rotates a leaked token (§2.2 force mode): the cached one is dead at once.
    const forced = await fetch(`${base}/cgi-bin/stable_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credential', appid: appId, secret: appSecret, force_refresh: true }),
    });
    expect(forced.status).toBe(200);
    const infos = await Promise.all(Array.from({ length: 20 }, () => api.userInfo(appId, openid)));
    expect(infos.every((i) => i.subscribed)).toBe(true);
    const userInfoCalls = callsTo('/cgi-bin/user/info', appId);
    expect(userInfoCalls.filter((c) => c.errcode === 40001)).toHaveLength(20);
    expect(userInfoCalls.filter((c) => c.errcode === 0)).toHaveLength(20);
    // initial fetch + the admin's forced one + exactly one passive refresh
    expect(callsTo('/cgi-bin/stable_token', appId)).toHaveLength(3);
  });

  it('When a read meets -1, then it is retried; when a send does, then it is not', async () => {
    const { appId, openid, api } = await setup({ talk: true });
    sandbox.inject({ path: '/cgi-bin/user/info', appId, errcode: -1, count: 2 });
    expect(await api.userInfo(appId, openid)).toMatchObject({ openid, subscribed: true });
    expect(callsTo('/cgi-bin/user/info', appId)).toHaveLength(3);
    sandbox.inject({ path: '/cgi-bin/message/custom/send', appId, errcode: -1, count: 1 });
    await expect(api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'x' } })).rejects.toMatchObject({ kind: 'busy' });
    expect(callsTo('/cgi-bin/message/custom/send', appId)).toHaveLength(1);
  });

  it('When WeChat is slower than our timeout on a send, then the error is an ambiguous timeout and nothing is resent', async () => {
    const { appId, openid, api } = await setup({ talk: true, timeoutMs: 100 });
    sandbox.inject({ path: '/cgi-bin/message/custom/send', appId, latencyMs: 250, count: 1 });
    const e = await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'late' } }).catch((x) => x);
    expect(e).toMatchObject({ name: 'WeChatTransportError', reason: 'timeout', ambiguous: true });
    await new Promise((r) => setTimeout(r, 300)); // let the sandbox finish the slow call
    // One attempt only: whether WeChat acted is unknown to us, so the outbox reconciles.
    expect(callsTo('/cgi-bin/message/custom/send', appId)).toHaveLength(1);
  });

  it('When the connection drops after WeChat delivered a send, then the error is ambiguous and nothing is resent', async () => {
    const { appId, openid, api } = await setup({ talk: true, timeoutMs: 150 });
    sandbox.inject({ path: '/cgi-bin/message/custom/send', appId, dropAfterCommit: true, count: 1 });
    const e = await api.customSend(appId, { touser: openid, msgtype: 'text', text: { content: 'maybe' } }).catch((x) => x);
    expect(e).toBeInstanceOf(WeChatTransportError);
    expect(e.ambiguous).toBe(true);
    expect(sandbox.messages({ appId, kind: 'custom' })).toHaveLength(1);
    expect(callsTo('/cgi-bin/message/custom/send', appId)).toHaveLength(1);
  });

  it('When followers are listed and batch-read, then pages and profiles match the sandbox', async () => {
    const { appId, openid, api } = await setup();
    const others = Array.from({ length: 3 }, () => sandbox.openid(appId, sandbox.createUser({ followsApps: [appId] }).userId));
    const page = await api.getFollowers(appId);
    expect(page.openids.sort()).toEqual([openid, ...others].sort());
    expect(page.total).toBe(4);
    const last = await api.getFollowers(appId, page.nextOpenid);
    expect(last).toMatchObject({ count: 0, openids: [] });
    expect(last.nextOpenid).toBeUndefined();
    const infos = await api.batchGetUserInfo(appId, [openid, ...others]);
    expect(infos.map((i) => i.openid)).toEqual([openid, ...others]);
  });

  it('When a QR code is created, then its image URL serves a PNG and a scan carries the scene', async () => {
    const { appId, api } = await setup();
    const qr = await api.createQrCode(appId, { scene: 'bind42', expireSeconds: 600 });
    expect(qr.expireSeconds).toBe(600);
    const img = await fetch(qr.imageUrl);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/png');
    const stranger = sandbox.createUser();
    await sandbox.act(appId, stranger.userId, { type: 'scan', ticket: qr.ticket });
    expect(await api.userInfo(appId, sandbox.openid(appId, stranger.userId))).toMatchObject({
      subscribed: true,
      subscribeScene: 'ADD_SCENE_QR_CODE',
      qrSceneStr: 'bind42',
    });
  });
});
