/** Customer-service, template and subscription messages: wechat-protocol.md §3, §4, §10 items 5–6. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWeChatXml } from '../wechat/xml.ts';
import { accountToken, startReceiver, startSandbox, testApp, type Receiver, type Running } from './test-kit.ts';

let r: Running;
let rx: Receiver;
beforeAll(async () => {
  r = await startSandbox({ limits: { templateFinishDelayMs: 0 } });
  rx = await startReceiver();
});
afterAll(async () => {
  await r.stop();
  await rx.stop();
});

async function setup(opts: { follow?: boolean; templates?: Record<string, string[]> } = {}) {
  const app = testApp({ pushUrl: rx.url, templates: opts.templates ?? { TPL_PAY: ['thing1', 'amount2'] } });
  r.sandbox.registerApp(app);
  const user = r.sandbox.createUser({ followsApps: opts.follow === false ? [] : [app.appId] });
  const token = await accountToken(r, app.appId);
  const openid = r.sandbox.openid(app.appId, user.userId);
  const call = (path: string, body: unknown) => r.post(path, body, { access_token: token });
  return { app, user, token, openid, call };
}

const text = (touser: string, content = '您好') => ({ touser, msgtype: 'text', text: { content } });

describe('custom/send window (§3.2)', () => {
  it('When the user has not interacted, then 45015', async () => {
    const { openid, call } = await setup();
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45015);
  });

  it('When the user sent a message, then 5 messages go through within 48 h, the 6th is 45047, and after 48 h 45015', async () => {
    const { app, user, openid, call } = await setup();
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: '你好' });
    for (let i = 0; i < 5; i += 1) expect(await call('/cgi-bin/message/custom/send', text(openid, `第${i}条`))).toEqual({ errcode: 0, errmsg: 'ok' });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45047);
    expect(r.sandbox.messages({ appId: app.appId, kind: 'custom' }).map((m) => m.payload.content)).toEqual(['第0条', '第1条', '第2条', '第3条', '第4条']);
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: '再来' });
    r.clock.advance(48 * 3600_000);
    const fresh = await accountToken(r, app.appId); // the old account token expired meanwhile
    expect((await r.post('/cgi-bin/message/custom/send', text(openid), { access_token: fresh })).errcode).toBe(45015);
  });

  it('When the user clicked a menu, then 3 messages within 1 minute; a VIEW opens nothing', async () => {
    const { app, user, openid, call } = await setup();
    await r.sandbox.act(app.appId, user.userId, { type: 'view', url: 'https://bridge.example/link/card' });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45015);
    await r.sandbox.act(app.appId, user.userId, { type: 'click', key: 'MY_BILL' });
    for (let i = 0; i < 3; i += 1) expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(0);
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45047);
    await r.sandbox.act(app.appId, user.userId, { type: 'click', key: 'MY_BILL' });
    r.clock.advance(60_000);
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45015);
  });

  it('When the user follows, then 3 messages; after unfollow 45015', async () => {
    const { app, user, openid, call } = await setup({ follow: false });
    await r.sandbox.act(app.appId, user.userId, { type: 'follow' });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(0);
    await r.sandbox.act(app.appId, user.userId, { type: 'unfollow' });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45015);
  });

  it('When the body is wrong, then 44004 empty text, 45008 two articles, 40008 unknown type, 40003 unknown openid', async () => {
    const { app, user, openid, call } = await setup();
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'hi' });
    expect((await call('/cgi-bin/message/custom/send', text(openid, ''))).errcode).toBe(44004);
    const article = { title: 't', description: 'd', url: 'https://x.example', picurl: '' };
    expect((await call('/cgi-bin/message/custom/send', { touser: openid, msgtype: 'news', news: { articles: [article, article] } })).errcode).toBe(45008);
    expect((await call('/cgi-bin/message/custom/send', { touser: openid, msgtype: 'fax', fax: {} })).errcode).toBe(40008);
    expect((await call('/cgi-bin/message/custom/send', text('oUnknown'))).errcode).toBe(40003);
    expect((await call('/cgi-bin/message/custom/send', { touser: openid, msgtype: 'news', news: { articles: [article] } })).errcode).toBe(0);
  });

  it('When the user is blacklisted or refuses messages, then 43019 or 48002', async () => {
    const { app, user, openid, call } = await setup();
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'hi' });
    r.sandbox.setRelation(app.appId, user.userId, { blacklisted: true });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(43019);
    r.sandbox.setRelation(app.appId, user.userId, { blacklisted: false, messagesOff: true });
    expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(48002);
  });

  it('When the window numbers are configured, then they apply', async () => {
    const { app, user, openid, call } = await setup();
    r.sandbox.setLimits({ csMessageQuota: 1 });
    try {
      await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'hi' });
      expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(0);
      expect((await call('/cgi-bin/message/custom/send', text(openid))).errcode).toBe(45047);
    } finally {
      r.sandbox.setLimits({ csMessageQuota: 5 });
    }
  });
});

describe('custom/typing (§3.4)', () => {
  it('When typing is sent, then 45072 bad command, 45081 twice, 45080 after 30 s without exchange', async () => {
    const { app, user, openid, call } = await setup();
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'hi' });
    expect((await call('/cgi-bin/message/custom/typing', { touser: openid, command: 'Dance' })).errcode).toBe(45072);
    expect((await call('/cgi-bin/message/custom/typing', { touser: openid, command: 'Typing' })).errcode).toBe(0);
    expect((await call('/cgi-bin/message/custom/typing', { touser: openid, command: 'Typing' })).errcode).toBe(45081);
    expect((await call('/cgi-bin/message/custom/typing', { touser: openid, command: 'CancelTyping' })).errcode).toBe(0);
    r.clock.advance(31_000);
    expect((await call('/cgi-bin/message/custom/typing', { touser: openid, command: 'Typing' })).errcode).toBe(45080);
  });
});

describe('template/send (§4.1–§4.3)', () => {
  const tpl = (touser: string, extra: Record<string, unknown> = {}) => ({
    touser,
    template_id: 'TPL_PAY',
    url: 'https://bank.example/bill/1',
    data: { thing1: { value: '星巴克' }, amount2: { value: '¥35.00', color: '#173177' } },
    ...extra,
  });

  it('When a template is sent, then msgid is a bare int64 beyond 2^53 and a TEMPLATESENDJOBFINISH follows with the same MsgID', async () => {
    const { app, openid, token } = await setup();
    rx.received.length = 0;
    const raw = await r.postRaw('/cgi-bin/message/template/send', tpl(openid), { access_token: token });
    const digits = /^\{"errcode":0,"errmsg":"ok","msgid":(\d+)\}$/.exec(raw)?.[1] ?? '';
    expect(BigInt(digits) > 2n ** 53n).toBe(true);
    await r.sandbox.idle();
    const finish = rx.received.map((p) => parseWeChatXml(p.body)).find((f) => f.Event === 'TEMPLATESENDJOBFINISH');
    expect(finish).toMatchObject({ MsgType: 'event', MsgID: digits, Status: 'success', FromUserName: openid, ToUserName: app.originalId });
    const [delivered] = r.sandbox.messages({ appId: app.appId, kind: 'template' });
    expect(delivered).toMatchObject({ msgid: digits, payload: { template_id: 'TPL_PAY', url: 'https://bank.example/bill/1' } });
  });

  it('When the same client_msg_id is reused within 10 minutes, then the same msgid returns and nothing is sent twice', async () => {
    const { app, openid, token } = await setup();
    const send = () => r.postRaw('/cgi-bin/message/template/send', tpl(openid, { client_msg_id: 'N-1' }), { access_token: token });
    const first = await send();
    r.clock.advance(9 * 60_000);
    expect(await send()).toBe(first);
    expect(r.sandbox.messages({ appId: app.appId, kind: 'template' })).toHaveLength(1);
    r.clock.advance(60_000);
    expect(await send()).not.toBe(first);
  });

  it('When the receiver does not follow, the template is unknown or a value is empty, then 43004, 40037, 47003', async () => {
    const { openid, call } = await setup({ follow: false });
    expect((await call('/cgi-bin/message/template/send', tpl(openid))).errcode).toBe(43004);
    const f = await setup();
    expect((await f.call('/cgi-bin/message/template/send', tpl(f.openid, { template_id: 'NOPE' }))).errcode).toBe(40037);
    const empty = await f.call('/cgi-bin/message/template/send', tpl(f.openid, { data: { thing1: { value: '' }, amount2: { value: '1' } } }));
    expect(empty.errcode).toBe(47003);
    expect(empty.errmsg).toMatch(/^argument invalid! data\.thing1\.value /);
    const stray = await f.call('/cgi-bin/message/template/send', tpl(f.openid, { data: { thing1: { value: 'a' }, amount2: { value: '1' }, foo: { value: 'x' } } }));
    expect(stray.errcode).toBe(47003);
  });

  it('When the user refuses messages, then the send is accepted and the event reports failed:user block', async () => {
    const { app, user, openid, token } = await setup();
    r.sandbox.setRelation(app.appId, user.userId, { messagesOff: true });
    rx.received.length = 0;
    const raw = await r.postRaw('/cgi-bin/message/template/send', tpl(openid), { access_token: token });
    expect(raw).toMatch(/"errcode":0/);
    await r.sandbox.idle();
    const finish = rx.received.map((p) => parseWeChatXml(p.body)).find((f) => f.Event === 'TEMPLATESENDJOBFINISH');
    expect(finish?.Status).toBe('failed:user block');
    expect(r.sandbox.messages({ appId: app.appId, kind: 'template' })).toHaveLength(0);
  });

  it('When the daily quota is used, then 45009', async () => {
    const { openid, call } = await setup();
    r.sandbox.setLimits({ templateDailyLimit: 0 });
    try {
      expect((await call('/cgi-bin/message/template/send', tpl(openid))).errcode).toBe(45009);
    } finally {
      r.sandbox.setLimits({ templateDailyLimit: 100_000 });
    }
  });
});

describe('subscribe/bizsend (§4.4, §13.6)', () => {
  it('When the user has not opted in, then 43101; after a one-time opt-in one send passes, both body shapes', async () => {
    const { app, user, openid, call } = await setup();
    const data = { thing1: { value: '账单' }, amount2: { value: '¥1' } };
    const sdkShape = { touser: openid, template_id: 'TPL_PAY', page: 'https://bank.example', miniprogram: { appid: 'wxmini', pagepath: 'p' }, data };
    const docShape = { touser: openid, template_id: 'TPL_PAY', page: 'https://bank.example', miniprogram_state: 'formal', lang: 'zh_CN', data };
    expect((await call('/cgi-bin/message/subscribe/bizsend', sdkShape)).errcode).toBe(43101);
    r.sandbox.optIn(app.appId, user.userId, 'TPL_PAY');
    expect(await call('/cgi-bin/message/subscribe/bizsend', sdkShape)).toEqual({ errcode: 0, errmsg: 'ok' });
    expect((await call('/cgi-bin/message/subscribe/bizsend', docShape)).errcode).toBe(43101);
    r.sandbox.optIn(app.appId, user.userId, 'TPL_PAY', true);
    expect((await call('/cgi-bin/message/subscribe/bizsend', docShape)).errcode).toBe(0);
    expect((await call('/cgi-bin/message/subscribe/bizsend', docShape)).errcode).toBe(0);
    expect(r.sandbox.messages({ appId: app.appId, kind: 'subscribe' })).toHaveLength(3);
  });
});

describe('method and body errors (§0)', () => {
  it('When a POST API is called with GET, an empty body or broken JSON, then 43002, 44002, 47001', async () => {
    const { token } = await setup();
    expect((await r.get('/cgi-bin/message/custom/send', { access_token: token })).errcode).toBe(43002);
    expect(JSON.parse(await r.postRaw('/cgi-bin/message/custom/send', '', { access_token: token })).errcode).toBe(44002);
    expect(JSON.parse(await r.postRaw('/cgi-bin/message/custom/send', '{x', { access_token: token })).errcode).toBe(47001);
  });
});
