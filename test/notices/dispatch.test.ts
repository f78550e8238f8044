/**
 * The dispatcher against the sandbox over real HTTP (issue 7 "Channel policy", "Rate and
 * quota awareness", "Status"; wechat-protocol.md §3, §4, §8; SECURITY.md D2, D4, D5).
 * Every test checks what reached the sandbox, not only our own rows.
 */
import { describe, expect, it } from 'vitest';
import { revokeBindingRow } from '../../src/linking/bindings.queries.ts';
import { sharedWorld, TEMPLATE_ID, until } from './world.ts';

const world = sharedWorld();

const calls = (appId: string, path: string) => world().sandbox.calls(path).filter((c) => c.appId === appId);
const TEMPLATE = '/cgi-bin/message/template/send';
const CUSTOM = '/cgi-bin/message/custom/send';

describe('channel policy', () => {
  it('When the user has no open window, then one template message goes out with client_msg_id = delivery id, and TEMPLATESENDJOBFINISH makes it delivered', async () => {
    const s = await world().scenario();
    const u = await s.link();
    const n = await s.notice({ to: { account: u.account }, text: '您的账单已出' });
    await s.settle();
    await world().sandbox.idle();
    const [d] = await s.deliveries(n.id);
    expect(d).toMatchObject({ status: 'delivered', channel: 'template', errcode: null });
    const sent = world().sandbox.messages({ appId: s.appId });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ kind: 'template', openid: u.openid, msgid: d!.wx_msgid });
    expect(sent[0]!.payload).toMatchObject({ template_id: TEMPLATE_ID, data: { thing1: { value: '信用卡中心' }, amount2: { value: '¥99.00' } } });
    expect(calls(s.appId, CUSTOM)).toHaveLength(0);
  });

  it('When the user has just written, then customer-service messages go out while the window quota lasts, then templates', async () => {
    const s = await world().scenario();
    const u = await s.link({ talk: true });
    for (let i = 0; i < 6; i++) await s.notice({ to: { binding: u.bindingId }, text: `第${i}条` });
    await s.settle();
    const rows = await s.deliveries();
    expect(rows.filter((r) => r.channel === 'customer-service' && r.status === 'delivered')).toHaveLength(5);
    expect(rows.filter((r) => r.channel === 'template')).toHaveLength(1);
    expect(world().sandbox.messages({ appId: s.appId, kind: 'custom' })).toHaveLength(5);
    // The window was obeyed exactly as the sandbox counts it: no 45015/45047 answers.
    expect(calls(s.appId, CUSTOM).every((c) => c.errcode === 0)).toBe(true);
  });

  it('When WeChat closes the window anyway (45015), then the template fallback delivers the notice once', async () => {
    const s = await world().scenario();
    const u = await s.link({ talk: true });
    world().sandbox.inject({ path: CUSTOM, appId: s.appId, errcode: 45015, count: 1 });
    const n = await s.notice({ to: { account: u.account }, text: 'x' });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'delivered', channel: 'template' });
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(1);
  });

  it('When the merchant permits templates only, then no customer-service message is tried even with an open window', async () => {
    const s = await world().scenario({ notices: { channel: 'template' } });
    const u = await s.link({ talk: true });
    await s.notice({ to: { account: u.account }, text: 'x' });
    await s.settle();
    expect(calls(s.appId, CUSTOM)).toHaveLength(0);
    expect(world().sandbox.messages({ appId: s.appId, kind: 'template' })).toHaveLength(1);
  });

  it('When a customer-service-only notice meets a closed window, then it fails with window_closed and WeChat is not called', async () => {
    const s = await world().scenario();
    const u = await s.link();
    const n = await s.notice({ to: { account: u.account }, text: 'x', channel: 'customer-service', template: undefined });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'failed', error: 'window_closed' });
    expect(calls(s.appId, CUSTOM)).toHaveLength(0);
  });
});

describe('errcode policy', () => {
  it('When WeChat answers -1 twice, then the delivery is retried with backoff and sent once', async () => {
    const s = await world().scenario();
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: -1, count: 2 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'delivered', attempts: 3 });
    expect(calls(s.appId, TEMPLATE).map((c) => c.errcode)).toEqual([-1, -1, 0]);
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(1);
  });

  it('When -1 never stops, then the delivery fails after maxAttempts with errcode -1', async () => {
    const s = await world().scenario({ options: { maxAttempts: 3 } });
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: -1 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    world().sandbox.clearFaults();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'failed', errcode: -1, attempts: 3 });
    expect(calls(s.appId, TEMPLATE)).toHaveLength(3);
  });

  it('When a template answer is dropped after WeChat committed, then the retry reuses client_msg_id and nothing is sent twice', async () => {
    const s = await world().scenario();
    const u = await s.link();
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, dropAfterCommit: true, count: 1 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    const [d] = await s.deliveries(n.id);
    expect(d).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(d!.ambiguous_since).not.toBeNull();
    expect(calls(s.appId, TEMPLATE)).toHaveLength(2);
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(1);
  });

  it('When a customer-service answer is dropped after WeChat committed, then the delivery is unknown and never retried', async () => {
    const s = await world().scenario();
    const u = await s.link({ talk: true });
    world().sandbox.inject({ path: CUSTOM, appId: s.appId, dropAfterCommit: true, count: 1 });
    const n = await s.notice({ to: { account: u.account }, text: 'x' });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'unknown', channel: 'customer-service' });
    expect(calls(s.appId, CUSTOM)).toHaveLength(1);
    expect(calls(s.appId, TEMPLATE)).toHaveLength(0);
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(1);
  });

  it.each([
    ['43004 (not following)', { follow: false }, undefined, 43004],
    ['43019 (blacklisted)', { blacklisted: true }, undefined, 43019],
    ['40003 (invalid openid)', {}, 40003, 40003],
    ['47003 (argument invalid)', {}, 47003, 47003],
  ])('When WeChat refuses with %s, then the delivery fails at once with the errcode recorded', async (_name, user, injected, errcode) => {
    const s = await world().scenario();
    const u = await s.link(user);
    if (injected) world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: injected, count: 1 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'failed', errcode, attempts: 1 });
    expect(calls(s.appId, TEMPLATE)).toHaveLength(1);
  });

  it('When the user turned messages off (48002), then the customer-service send fails at once; a template is reported failed:user block', async () => {
    const s = await world().scenario();
    const cs = await s.link({ talk: true, messagesOff: true });
    const n1 = await s.notice({ to: { account: cs.account }, text: 'x', channel: 'customer-service', template: undefined });
    const n2 = await s.notice({ to: { account: cs.account } });
    await s.settle();
    await world().sandbox.idle();
    expect((await s.deliveries(n1.id))[0]).toMatchObject({ status: 'failed', errcode: 48002, channel: 'customer-service' });
    expect((await s.deliveries(n2.id))[0]).toMatchObject({ status: 'failed', error: 'failed:user block', channel: 'template' });
  });

  it('When the token is refused once (40001), then the WeChat client refreshes it through the owner and the notice goes out once', async () => {
    const s = await world().scenario();
    const u = await s.link();
    await s.tokens.get(s.appId);
    world().sandbox.inject({ path: TEMPLATE, appId: s.appId, errcode: 40001, count: 1 });
    const n = await s.notice({ to: { account: u.account } });
    await s.settle();
    expect((await s.deliveries(n.id))[0]).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(calls(s.appId, TEMPLATE).map((c) => c.errcode)).toEqual([40001, 0]);
    expect(world().sandbox.messages({ appId: s.appId })).toHaveLength(1);
  });
});

describe('access-token endpoint errors', () => {
  it('When stable_token answers 45009 once, then the delivery waits for the token owner (cooldown 60 s), not until Beijing midnight as if the template quota were spent', async () => {
    const s = await world().scenario();
    const u = await s.link();
    world().sandbox.inject({ path: '/cgi-bin/stable_token', appId: s.appId, errcode: 45009, count: 1 });
    const n = await s.notice({ to: { account: u.account } });
    const dispatcher = s.feature.createDispatcher();
    dispatcher.start();
    try {
      await until(async () => {
        const [d] = await s.deliveries(n.id);
        return d!.status === 'delivered' || d!.errcode !== null;
      }, 8_000);
    } finally {
      await dispatcher.stop();
    }
    const [d] = await s.deliveries(n.id);
    // Not parked as if the template API's own daily quota were spent, and not an attempt.
    expect(d).toMatchObject({ status: 'queued', errcode: 45009, error: 'token:quota_daily', attempts: 0 });
    // One refused token fetch (cooldown 5 s × 12) must not hold template notices for hours.
    expect(d!.next_attempt_at.getTime() - Date.now()).toBeLessThan(5 * 60_000);
    expect(calls(s.appId, TEMPLATE)).toHaveLength(0);
  });
});

describe('killed workers', () => {
  it('When a worker dies mid-send, then after its lease the template is retried under the same client_msg_id and the customer-service message becomes unknown', async () => {
    const s = await world().scenario();
    const tpl = await s.link();
    const cs = await s.link({ talk: true });
    // Slow answers (still inside the client's 1 s timeout) keep both calls in flight when the worker dies.
    world().sandbox.inject({ path: '/cgi-bin/message/*', appId: s.appId, latencyMs: 900, count: 2 });
    const n1 = await s.notice({ to: { account: tpl.account } });
    const n2 = await s.notice({ to: { account: cs.account }, text: 'x' });
    const doomed = s.feature.createDispatcher();
    doomed.start();
    await until(async () => calls(s.appId, TEMPLATE).length + calls(s.appId, CUSTOM).length === 2, 5_000, 5);
    doomed.abandon(); // SIGKILL: the calls are in flight, their outcomes are never written
    await s.settle(15_000);
    expect((await s.deliveries(n1.id))[0]).toMatchObject({ status: 'delivered', channel: 'template' });
    expect((await s.deliveries(n2.id))[0]).toMatchObject({ status: 'unknown', channel: 'customer-service', error: 'lease_expired' });
    await new Promise((r) => setTimeout(r, 1_000)); // let the abandoned calls land
    expect(world().sandbox.messages({ appId: s.appId, openid: tpl.openid })).toHaveLength(1);
    expect(world().sandbox.messages({ appId: s.appId, openid: cs.openid })).toHaveLength(1);
  });
});

// Recipients are resolved through active bindings when a notice is accepted; a delivery may
// then wait (quiet hours, backoff after -1, a backlog). The claim checks the binding again.
describe('revoked bindings', () => {
  it('When the binding is revoked while its delivery is still queued, then no message reaches that WeChat user, the delivery fails with binding_revoked and the merchant gets notice.failed', async () => {
    const s = await world().scenario({ webhook: { url: 'https://merchant.example/hooks', secret: 'hook-secret-1' } });
    const u = await s.link();
    const kept = await s.link({ account: u.account });
    const n = await s.notice({ to: { account: u.account } });
    // The merchant revokes one binding (e.g. the card was cancelled) before any worker ran.
    const revoked = await revokeBindingRow(world().db, { id: u.bindingId, merchantId: s.merchantId, actor: 'merchant', reason: 'card cancelled', at: new Date() });
    expect(revoked).not.toBeNull();
    await s.settle();
    // Nothing may be sent to a user who is no longer linked to this merchant; the other still gets it.
    expect(world().sandbox.messages({ appId: s.appId, openid: u.openid })).toHaveLength(0);
    expect(world().sandbox.messages({ appId: s.appId, openid: kept.openid })).toHaveLength(1);
    const rows = await s.deliveries(n.id);
    expect(rows.find((d) => d.openid === u.openid)).toMatchObject({ status: 'failed', error: 'binding_revoked', errcode: null, attempts: 0, channel: null });
    expect(rows.find((d) => d.openid === kept.openid)).toMatchObject({ status: 'delivered' });
    const hooks = await world().db.query<{ type: string; data: Record<string, unknown> }>(
      `SELECT type, data FROM webhook_events WHERE merchant_id = $1 AND data->>'bindingId' = $2`,
      [s.merchantId, u.bindingId],
    );
    expect(hooks.rows).toEqual([{ type: 'notice.failed', data: expect.objectContaining({ noticeId: n.id, status: 'failed', error: 'binding_revoked' }) }]);
  });
});
