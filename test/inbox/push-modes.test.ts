/**
 * Issue 6 through the real app: every message and event type pushed by the sandbox (which
 * signs, encrypts and judges replies as WeChat does) in plaintext, compatible and safe mode
 * (wechat-protocol.md §5, §6). Each test checks what the user saw, what was stored, and what
 * went out (intents calls, webhooks, receipts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha1Sorted } from '../../src/wechat/crypto.ts';
import { follower, linkUser, MODES, startHarness, type Harness, type Mode } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

async function identity(appId: string, openid: string) {
  const r = await h.deps.db.query<{ subscribed: boolean | null; last_location: { latitude: number } | null; tags: string[]; last_interaction_at: Date | null }>(
    `SELECT subscribed, last_location, tags, last_interaction_at FROM identities WHERE app_id = $1 AND openid = $2`,
    [appId, openid],
  );
  return r.rows[0];
}

async function webhooks(merchantId: string, type: string) {
  const r = await h.deps.db.query<{ data: Record<string, unknown> }>(`SELECT data FROM webhook_events WHERE merchant_id = $1 AND type = $2 ORDER BY created_at`, [merchantId, type]);
  return r.rows.map((x) => (typeof x.data === 'string' ? (JSON.parse(x.data) as Record<string, unknown>) : x.data));
}

const linkOf = (mode: Mode) => `${h.config.publicUrl}/link/${h.merchantOf[mode]}`;

describe.each(MODES)('pushes in %s mode', (mode) => {
  const act = (userId: string, action: Parameters<Harness['sandbox']['act']>[2]) => h.sandbox.act(h.accounts[mode].appId, userId, action);

  it('When WeChat verifies the push URL, then the echostr comes back verbatim', async () => {
    const a = h.accounts[mode];
    const timestamp = String(Math.floor(Date.now() / 1000));
    const q = new URLSearchParams({ signature: sha1Sorted(a.token, timestamp, '777'), timestamp, nonce: '777', echostr: '4375120948345356249' });
    const r = await fetch(`${h.baseUrl}/wechat/push/${a.id}?${q}`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('4375120948345356249');
  });

  it('When a linked user texts a keyword, then the merchant answers through a signed intent call and the user sees it', async () => {
    const u = follower(h, mode);
    const { bindingId } = await linkUser(h, mode, u.openid, { id: `acct-${mode}-1`, display: '**** 1234' });
    const r = await act(u.userId, { type: 'text', content: '我的余额' });
    expect(r.outcome).toBe('reply');
    expect(r.attempts).toBe(1);
    expect(r.reply?.Content).toBe(`余额 acct-${mode}-1: ¥100.00`);
    const call = h.merchant.calls.at(-1)!;
    expect(call.signed).toBe(true);
    expect(call.payload).toMatchObject({ intent: 'balance', text: '我的余额', account: `acct-${mode}-1`, binding_id: bindingId });
    expect(call.payload.sub).toMatch(/\S{16,}/);
    expect(await h.inbox.csWindow.status(u.appId, u.openid)).toMatchObject({ open: true, remaining: 5 });
  });

  it('When a linked user sends voice, then its Recognition text is routed; an empty Recognition gets "please type"', async () => {
    const u = follower(h, mode);
    await linkUser(h, mode, u.openid, { id: `acct-${mode}-2`, display: '**** 2222' });
    const said = await act(u.userId, { type: 'voice', recognition: '账单' });
    expect(said.reply).toMatchObject({ MsgType: 'news', Articles: { item: { Title: '本月账单', Url: 'https://bank.example/bill' } } });
    const silent = await act(u.userId, { type: 'voice', recognition: '' });
    expect(silent.reply?.Content).toContain('请直接输入文字');
  });

  it('When an unlinked user asks for an account intent, then the link prompt comes back and the merchant is not called', async () => {
    const u = follower(h, mode);
    const before = h.merchant.calls.length;
    const r = await act(u.userId, { type: 'text', content: '余额' });
    expect(r.reply?.Content).toContain(`<a href="${linkOf(mode)}">`);
    expect(h.merchant.calls.length).toBe(before);
  });

  it('When the user asks for the built-ins (help, bind, my accounts), then they are answered without the merchant', async () => {
    const u = follower(h, mode);
    expect((await act(u.userId, { type: 'text', content: '帮助' })).reply?.Content).toContain('「绑定」');
    expect((await act(u.userId, { type: 'text', content: '绑定' })).reply?.Content).toContain(linkOf(mode));
    await linkUser(h, mode, u.openid, { id: `acct-${mode}-3`, display: '**** 3333' });
    expect((await act(u.userId, { type: 'text', content: '我的账户' })).reply?.Content).toContain('**** 3333');
  });

  it('When a user follows, unfollows and follows again, then subscribe state, webhooks and the welcome follow WeChat rules', async () => {
    const appId = h.accounts[mode].appId;
    const { userId } = h.sandbox.createUser();
    const openid = h.sandbox.openid(appId, userId);
    const welcome = await act(userId, { type: 'follow' });
    expect(welcome.reply?.Content).toContain('感谢关注');
    expect((await identity(appId, openid))?.subscribed).toBe(true);
    const { bindingId } = await linkUser(h, mode, openid, { id: `acct-${mode}-4`, display: '**** 4444' });
    await act(userId, { type: 'location_report', latitude: 31.2, longitude: 121.5 });
    await h.inbox.idle();
    expect((await identity(appId, openid))?.last_location?.latitude).toBe(31.2);

    const bye = await act(userId, { type: 'unfollow' });
    expect(bye.outcome).toBe('success');
    const gone = await identity(appId, openid);
    expect(gone).toMatchObject({ subscribed: false, last_location: null, tags: [] });
    expect((await h.inbox.csWindow.status(appId, openid)).open).toBe(false);
    const left = await webhooks(h.merchantOf[mode], 'identity.unsubscribed');
    expect(left.at(-1)).toMatchObject({ subscribed: false, bindings: [{ id: bindingId, account: `acct-${mode}-4` }] });

    // Events de-duplicate on FromUserName+CreateTime+Event (§5.7): a re-follow is a later second.
    h.sandbox.advanceClock(1000);
    await act(userId, { type: 'follow' });
    expect((await webhooks(h.merchantOf[mode], 'identity.subscribed')).at(-1)).toMatchObject({ subscribed: true, bindings: [{ id: bindingId }] });
    expect((await h.inbox.csWindow.status(appId, openid)).remaining).toBe(3);
  });

  it('When a follower scans a binding-code QR, or a non-follower follows through one, then they are linked and told so', async () => {
    const appId = h.accounts[mode].appId;
    const qrFor = async (account: string) => {
      await h.linking.createBindingCode({ merchantId: h.merchantOf[mode], account, display: `QR ${account}`, qr: true, actor: 'merchant:test' });
      return [...h.sandbox.state.qrTickets.values()].filter((t) => t.appId === appId).at(-1)!.ticket;
    };
    const fan = follower(h, mode);
    const scanned = await act(fan.userId, { type: 'scan', ticket: await qrFor(`qr-${mode}-1`) });
    expect(scanned.fields.Event).toBe('SCAN');
    expect(scanned.reply?.Content).toContain(`QR qr-${mode}-1`);
    h.sandbox.advanceClock(1000);
    const again = await act(fan.userId, { type: 'scan', ticket: [...h.sandbox.state.qrTickets.values()].filter((t) => t.appId === appId).at(-1)!.ticket });
    expect(again.reply?.Content).toContain('已失效');

    const { userId } = h.sandbox.createUser();
    const followed = await act(userId, { type: 'scan', ticket: await qrFor(`qr-${mode}-2`) });
    expect(followed.fields.Event).toBe('subscribe');
    expect(followed.reply?.Content).toContain(`QR qr-${mode}-2`);
    const bindings = await h.linking.listBindings({ merchantId: h.merchantOf[mode], accountId: `qr-${mode}-2` });
    expect(bindings).toHaveLength(1);
  });

  it('When a linked user reports a location and then clicks a menu, then the intent gets the location and the click opens the 1-minute window', async () => {
    const u = follower(h, mode);
    await linkUser(h, mode, u.openid, { id: `acct-${mode}-5`, display: '**** 5555' });
    const loc = await act(u.userId, { type: 'location_report', latitude: 39.9, longitude: 116.4, precision: 30 });
    expect(loc.outcome).toBe('success');
    await h.inbox.idle();
    const click = await act(u.userId, { type: 'click', key: 'MY_BILL' });
    expect(click.reply?.MsgType).toBe('news');
    expect(h.merchant.calls.at(-1)?.payload).toMatchObject({ intent: 'bill', text: '', location: { latitude: 39.9, longitude: 116.4, precision: 30 } });
    expect(await h.inbox.csWindow.status(u.appId, u.openid)).toMatchObject({ open: true, remaining: 3 });
  });

  it('When a user opens a VIEW menu or sends an image, then VIEW is acknowledged without a window and the image gets "text only"', async () => {
    const u = follower(h, mode);
    const view = await act(u.userId, { type: 'view', url: 'https://bank.example/page' });
    expect(view.outcome).toBe('success');
    expect((await h.inbox.csWindow.status(u.appId, u.openid)).open).toBe(false);
    const image = await act(u.userId, { type: 'image' });
    expect(image.reply?.Content).toContain('文字');
  });

  it('When WeChat reports a template delivery, then the receipt reaches notices with the 64-bit MsgID intact', async () => {
    const u = follower(h, mode);
    const r = await h.sandbox.push({ appId: u.appId, userId: u.userId, message: { MsgType: 'event', Event: 'TEMPLATESENDJOBFINISH', MsgID: 3487542469355618399n, Status: 'failed:user block' } });
    expect(r.outcome).toBe('success');
    expect(h.receipts.at(-1)).toEqual({ appId: u.appId, msgId: '3487542469355618399', status: 'failed:user block', openid: u.openid });
  });
});
