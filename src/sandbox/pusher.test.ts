/** The pusher in all three modes against a tiny local receiver: wechat-protocol.md §5.3–§5.7, §6, §10 item 7. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessageCipher, encryptedEnvelope } from '../wechat/crypto.ts';
import { buildWeChatXml, parseWeChatXml } from '../wechat/xml.ts';
import { SERVICE_UNAVAILABLE } from './pusher.ts';
import { AES_KEY, startReceiver, startSandbox, testApp, type ReceivedPush, type Receiver, type Running } from './test-kit.ts';

let r: Running;
let rx: Receiver;
beforeAll(async () => {
  // A realistic deadline here: under CPU load a cold first push can take a few hundred ms.
  // Tests that expect a hang use their own sandbox with a short deadline.
  r = await startSandbox({ pushTimeoutMs: 5000 });
  rx = await startReceiver();
});
afterAll(async () => {
  await r.stop();
  await rx.stop();
});

const sha1 = (...parts: string[]): string => createHash('sha1').update([...parts].sort().join('')).digest('hex');

function setup(mode: 'plain' | 'compat' | 'safe', over: Parameters<typeof testApp>[0] = {}) {
  const app = testApp({ mode, encodingAesKey: mode === 'plain' ? undefined : AES_KEY, pushUrl: rx.url, ...over });
  r.sandbox.registerApp(app);
  const user = r.sandbox.createUser({ followsApps: [app.appId] });
  const openid = r.sandbox.openid(app.appId, user.userId);
  rx.received.length = 0;
  rx.respond = (_p, res) => void res.end('success');
  return { app, user, openid };
}

function textReply(app: { originalId: string }, openid: string, content: string): string {
  return buildWeChatXml({ ToUserName: openid, FromUserName: app.originalId, CreateTime: Math.floor(r.clock.now / 1000), MsgType: 'text', Content: content });
}

function checkSignature(p: ReceivedPush, token: string): void {
  const ts = p.query.get('timestamp') ?? '';
  expect(ts).toBe(String(Math.floor(r.clock.now / 1000)));
  expect(p.query.get('signature')).toBe(sha1(token, ts, p.query.get('nonce') ?? ''));
}

describe('push requests per mode (§5.3, §6.1, §6.2)', () => {
  it('When the account is in plaintext mode, then the signed XML carries the message and an int64 MsgId', async () => {
    const { app, user, openid } = setup('plain');
    const result = await r.sandbox.act(app.appId, user.userId, { type: 'text', content: '绑定 账号' });
    expect(result).toMatchObject({ ok: true, outcome: 'success', attempts: 1 });
    const [p] = rx.received;
    if (!p) throw new Error('no push');
    checkSignature(p, app.token);
    expect(p.query.get('openid')).toBe(openid);
    expect(p.query.has('encrypt_type')).toBe(false);
    const fields = parseWeChatXml(p.body);
    expect(fields).toEqual({
      ToUserName: app.originalId,
      FromUserName: openid,
      CreateTime: String(Math.floor(r.clock.now / 1000)),
      MsgType: 'text',
      Content: '绑定 账号',
      MsgId: expect.stringMatching(/^\d{17,19}$/),
    });
    expect(BigInt(String(fields.MsgId)) > 2n ** 53n).toBe(true);
  });

  it('When the account is in compatible mode, then the body has the plaintext fields and Encrypt, with msg_signature', async () => {
    const { app, user } = setup('compat');
    await r.sandbox.act(app.appId, user.userId, { type: 'voice', recognition: '查余额' });
    const [p] = rx.received;
    if (!p) throw new Error('no push');
    checkSignature(p, app.token);
    const outer = parseWeChatXml(p.body);
    expect(outer).toMatchObject({ MsgType: 'voice', Recognition: '查余额', Format: 'amr' });
    const encrypt = String(outer.Encrypt);
    expect(p.query.get('encrypt_type')).toBe('aes');
    expect(p.query.get('msg_signature')).toBe(sha1(app.token, p.query.get('timestamp') ?? '', p.query.get('nonce') ?? '', encrypt));
    const inner = parseWeChatXml(createMessageCipher({ appId: app.appId, encodingAesKeys: [AES_KEY] }).decrypt(encrypt).xml);
    const { Encrypt: _e, ...plain } = outer;
    expect(inner).toEqual(plain);
  });

  it('When the account is in safe mode, then the body is only ToUserName and Encrypt, and an encrypted reply reaches the user', async () => {
    const { app, user, openid } = setup('safe');
    const cipher = createMessageCipher({ appId: app.appId, encodingAesKeys: [AES_KEY] });
    rx.respond = (_p, res) => {
      const encrypt = cipher.encrypt(textReply(app, openid, '已收到 ok'));
      res.end(encryptedEnvelope({ encrypt, token: app.token, timestamp: '1700000001', nonce: '987654321' }));
    };
    const result = await r.sandbox.act(app.appId, user.userId, { type: 'click', key: 'MY_BILL' });
    const [p] = rx.received;
    if (!p) throw new Error('no push');
    expect(Object.keys(parseWeChatXml(p.body))).toEqual(['ToUserName', 'Encrypt']);
    const inner = parseWeChatXml(cipher.decrypt(String(parseWeChatXml(p.body).Encrypt)).xml);
    expect(inner).toMatchObject({ MsgType: 'event', Event: 'CLICK', EventKey: 'MY_BILL', FromUserName: openid });
    expect(result).toMatchObject({ ok: true, outcome: 'reply', reply: { MsgType: 'text', Content: '已收到 ok' } });
    expect(r.sandbox.messages({ appId: app.appId, kind: 'passive' })).toEqual([
      expect.objectContaining({ userId: user.userId, msgType: 'text', payload: expect.objectContaining({ Content: '已收到 ok' }) }),
    ]);
  });
});

describe('judging the reply (§5.6, §5.7, §6.3)', () => {
  it('When the reply is success or empty, then nothing is shown and nothing is flagged', async () => {
    const { app, user } = setup('plain');
    rx.respond = (_p, res) => void res.end('');
    expect(await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' })).toMatchObject({ ok: true, outcome: 'empty', userNotice: undefined });
  });

  it('When a plaintext account replies with valid XML, then the user sees it', async () => {
    const { app, user, openid } = setup('plain');
    rx.respond = (_p, res) => void res.end(textReply(app, openid, '你好'));
    expect(await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' })).toMatchObject({ ok: true, outcome: 'reply' });
  });

  it('When the reply is JSON, an empty text, wrongly addressed, or plaintext in safe mode, then "该公众号暂时无法提供服务"', async () => {
    const cases: Array<[mode: 'plain' | 'safe', body: (app: { originalId: string }, openid: string) => string]> = [
      ['plain', () => '{"ok":true}'],
      ['plain', (app, openid) => textReply(app, openid, '')],
      ['plain', (app) => textReply(app, 'oSomeoneElse', 'hi')],
      ['safe', (app, openid) => textReply(app, openid, 'hi')],
    ];
    for (const [mode, body] of cases) {
      const { app, user, openid } = setup(mode);
      rx.respond = (_p, res) => void res.end(body(app, openid));
      const result = await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' });
      expect(result, `${mode}: ${result.detail}`).toMatchObject({ ok: false, outcome: 'invalid_reply', userNotice: SERVICE_UNAVAILABLE });
    }
  });

  it('When an encrypted reply has a wrong MsgSignature, then it is rejected', async () => {
    const { app, user, openid } = setup('safe');
    const cipher = createMessageCipher({ appId: app.appId, encodingAesKeys: [AES_KEY] });
    rx.respond = (_p, res) => {
      const envelope = encryptedEnvelope({ encrypt: cipher.encrypt(textReply(app, openid, 'x')), token: 'wrongToken', timestamp: '1', nonce: '2' });
      res.end(envelope);
    };
    expect(await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' })).toMatchObject({ outcome: 'invalid_reply', detail: 'MsgSignature does not match' });
  });
});

describe('deadline and retries (§5.7, §13.2)', () => {
  it('When the receiver never answers, then 3 attempts time out and the user sees the notice', async () => {
    const own = await startSandbox({ pushTimeoutMs: 150 });
    try {
      const app = testApp({ pushUrl: rx.url });
      own.sandbox.registerApp(app);
      const user = own.sandbox.createUser({ followsApps: [app.appId] });
      rx.received.length = 0;
      rx.respond = () => {}; // hang
      const result = await own.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' });
      expect(result).toMatchObject({ ok: false, outcome: 'timeout', attempts: 3, userNotice: SERVICE_UNAVAILABLE });
      expect(rx.received).toHaveLength(3);
      const ids = new Set(rx.received.map((p) => parseWeChatXml(p.body).MsgId));
      expect(ids.size).toBe(1); // a retry is the same message: receivers de-duplicate on MsgId
    } finally {
      await own.stop();
    }
  });

  it('When the first attempt gets a 5xx, then the retry succeeds', async () => {
    const { app, user } = setup('plain');
    let n = 0;
    rx.respond = (_p, res) => {
      n += 1;
      res.statusCode = n === 1 ? 503 : 200;
      res.end(n === 1 ? 'busy' : 'success');
    };
    expect(await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' })).toMatchObject({ ok: true, attempts: 2 });
  });

  it('When the attempts are configured, then that many are made', async () => {
    const own = await startSandbox({ pushTimeoutMs: 50, pushAttempts: 1 });
    try {
      const app = testApp({ pushUrl: rx.url });
      own.sandbox.registerApp(app);
      const user = own.sandbox.createUser({ followsApps: [app.appId] });
      rx.received.length = 0;
      rx.respond = () => {};
      expect(await own.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' })).toMatchObject({ attempts: 1, outcome: 'timeout' });
    } finally {
      await own.stop();
    }
  });

  it('When a background event fails, then nothing is shown to the user; with no push URL nothing is flagged', async () => {
    const { app, user } = setup('plain');
    rx.respond = (_p, res) => void res.end('<html>error</html>');
    const result = await r.sandbox.push({ appId: app.appId, userId: user.userId, message: { MsgType: 'event', Event: 'TEMPLATESENDJOBFINISH', MsgID: 1n, Status: 'success' } });
    expect(result).toMatchObject({ ok: false, outcome: 'invalid_reply', userNotice: undefined });
    r.sandbox.updateApp(app.appId, { pushUrl: null });
    const none = await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'a' });
    expect(none).toMatchObject({ ok: false, outcome: 'no_push_url', userNotice: undefined });
  });
});

describe('URL verification (§5.2, §10 item 8)', () => {
  it('When the console checks the server URL, then a signed GET with a plain echostr must be echoed verbatim, in every mode', async () => {
    const { app } = setup('safe');
    rx.respond = (p, res) => void res.end(p.query.get('echostr') ?? '');
    const ok = await r.sandbox.verifyPushUrl(app.appId);
    expect(ok).toMatchObject({ ok: true, status: 200 });
    const [p] = rx.received;
    if (!p) throw new Error('no request');
    expect(p.query.get('signature')).toBe(sha1(app.token, p.query.get('timestamp') ?? '', p.query.get('nonce') ?? ''));
    expect(p.query.get('echostr')).toMatch(/^\d{15,20}$/);
    expect(p.query.has('encrypt_type')).toBe(false);
    rx.respond = (q, res) => void res.end(`"${q.query.get('echostr')}"`);
    expect(await r.sandbox.verifyPushUrl(app.appId)).toMatchObject({ ok: false });
  });
});

describe('follow state (§5.5)', () => {
  it('When the person unfollows and follows again, then the state changes and both events are pushed', async () => {
    const { app, user } = setup('plain');
    await r.sandbox.act(app.appId, user.userId, { type: 'unfollow' });
    expect(r.sandbox.describeUser(user.userId).accounts.find((a) => a.appId === app.appId)?.following).toBe(false);
    await r.sandbox.act(app.appId, user.userId, { type: 'follow' });
    expect(r.sandbox.describeUser(user.userId).accounts.find((a) => a.appId === app.appId)?.following).toBe(true);
    expect(rx.received.map((p) => parseWeChatXml(p.body).Event)).toEqual(['unsubscribe', 'subscribe']);
    await expect(r.sandbox.act(app.appId, user.userId, { type: 'follow' })).rejects.toThrow(/already following/);
  });
});
