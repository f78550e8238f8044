/**
 * The per-delivery state machine (issue 7 "Channel policy", "Rate and quota awareness",
 * "Status"; wechat-protocol.md §8; SECURITY.md D2, D4) with a scripted WeChat: no I/O.
 */
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../http/errors.ts';
import { WeChatApiError, WeChatTransportError } from '../wechat/errors.ts';
import type { Governor } from './governor.ts';
import type { ClaimedDelivery, NoticeSender } from './notices.types.ts';
import { channelsFor, templateMessage, type MerchantNotices } from './policy.ts';
import { nextMinute, nextQuotaDay } from './schedule.ts';
import { createSend, type SendPlan } from './send.ts';

const NOW = Date.parse('2025-03-01T04:00:00Z');
const merchant: MerchantNotices = {
  merchantId: 'card',
  appId: 'wx0123456789abcdef',
  policy: 'auto',
  templates: { bill: { templateId: 'TPL', fields: { thing1: 'merchant', amount2: 'amount' } } },
  quietHours: undefined,
  perUserDailyCap: undefined,
  timeZone: 'Asia/Shanghai',
};

const delivery = (over: Partial<ClaimedDelivery> = {}): ClaimedDelivery => ({
  id: '5b1f0c1e-0000-4000-8000-000000000001',
  noticeId: 'n1',
  merchantId: 'card',
  identityId: 'i1',
  appId: merchant.appId,
  openid: 'o1',
  attempts: 0,
  ambiguousSince: null,
  leaseId: 'l1',
  leaseUntil: NOW + 60_000,
  notice: { template: 'bill', channel: 'auto', data: { merchant: '银行', amount: 12 }, url: null, text: '您好' },
  ...over,
});

const api = (code: number, path = '/cgi-bin/message/template/send') => new WeChatApiError(code, 'x', path);
const cs = (code: number) => api(code, '/cgi-bin/message/custom/send');
const timeout = (path: string) => new WeChatTransportError('timeout', path, true);

/** A scripted WeChat: each call takes the next answer of its API (an error or a success). */
function world(script: { custom?: unknown[]; template?: unknown[] }) {
  const calls: string[] = [];
  const pauses: [string, number, number][] = [];
  const local = new Map<string, number>();
  const sender: NoticeSender = {
    async customSend() {
      calls.push('custom');
      const next = script.custom?.shift();
      if (next) throw next;
    },
    async templateSend(_appId, m) {
      calls.push(`template:${m.client_msg_id}`);
      const next = script.template?.shift();
      if (next) throw next;
      return { msgid: '3487542469355618313' };
    },
  };
  const governor = {
    pausedLocally: (_app: string, api: string) => local.get(api) ?? 0,
    pause: async (_app: string, api: string, until: number, errcode: number) => {
      pauses.push([api, until, errcode]);
      local.set(api, until);
    },
  } as unknown as Governor;
  const send = createSend({
    sender,
    governor,
    now: () => NOW,
    random: () => 0.5,
    options: { backoff: { baseMs: 1_000, capMs: 60_000 }, maxAttempts: 5, dedupeWindowMs: 540_000, dependencyRetryMs: 1_000 },
  });
  const plan = (useCs: boolean, channels = { cs: true, template: true }): SendPlan => ({ merchant, channels, useCs });
  return { send, calls, pauses, plan, local };
}

describe('customer-service first, template fallback', () => {
  it('When the window was taken, then one customer-service message is delivered and no template is sent', async () => {
    const w = world({});
    expect(await w.send(delivery(), w.plan(true))).toEqual({ status: 'delivered', channel: 'customer-service' });
    expect(w.calls).toEqual(['custom']);
  });

  it.each([45015, 45047])('When WeChat answers %i to the customer-service send, then the template goes out with client_msg_id = delivery id', async (code) => {
    const w = world({ custom: [cs(code)] });
    expect(await w.send(delivery(), w.plan(true))).toMatchObject({ status: 'sent', channel: 'template', msgid: '3487542469355618313' });
    expect(w.calls).toEqual(['custom', `template:${delivery().id}`]);
  });

  it('When the window closes and no template is allowed, then the delivery fails with that errcode', async () => {
    const w = world({ custom: [cs(45015)] });
    expect(await w.send(delivery(), w.plan(true, { cs: true, template: false }))).toMatchObject({ status: 'failed', errcode: 45015, error: 'window_closed' });
  });

  it('When the customer-service answer is lost, then it is unknown and nothing else is sent', async () => {
    const w = world({ custom: [timeout('/cgi-bin/message/custom/send')] });
    expect(await w.send(delivery(), w.plan(true))).toMatchObject({ status: 'unknown', channel: 'customer-service' });
    expect(w.calls).toEqual(['custom']);
  });

  it('When customer-service sends hit the minute quota, then that API pauses and the template goes out', async () => {
    const w = world({ custom: [cs(45011)] });
    expect(await w.send(delivery(), w.plan(true))).toMatchObject({ status: 'sent' });
    expect(w.pauses).toEqual([['custom', nextMinute(NOW), 45011]]);
  });
});

describe('template errors', () => {
  it('When a template answer is lost, then it is retried later (same client_msg_id) and marked possibly sent', async () => {
    const w = world({ template: [timeout('/cgi-bin/message/template/send')] });
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'queued', attempted: true, ambiguousSince: NOW });
  });

  it('When a possibly-sent template waited past the de-duplication window, then it is unknown and not sent again', async () => {
    const w = world({});
    expect(await w.send(delivery({ ambiguousSince: NOW - 600_000 }), w.plan(false))).toMatchObject({ status: 'unknown', error: 'dedupe_window_passed' });
    expect(w.calls).toEqual([]);
  });

  it('When WeChat is busy (-1), then the retry waits a jittered backoff; at the last attempt it fails with -1', async () => {
    const w = world({ template: [api(-1), api(-1)] });
    expect(await w.send(delivery({ attempts: 2 }), w.plan(false))).toEqual({
      status: 'queued',
      nextAt: NOW + 2_000,
      attempted: true,
      errcode: -1,
      error: 'busy',
      ambiguousSince: null,
    });
    expect(await w.send(delivery({ attempts: 4 }), w.plan(false))).toMatchObject({ status: 'failed', errcode: -1, attempted: true });
  });

  it('When the last attempt of a possibly-sent template fails, then it is unknown, not failed', async () => {
    const w = world({ template: [api(-1)] });
    expect(await w.send(delivery({ attempts: 4, ambiguousSince: NOW - 1_000 }), w.plan(false))).toMatchObject({ status: 'unknown', channel: 'template' });
  });

  it('When the daily quota is spent (45009), then the template API pauses until the quota day ends and the delivery waits for it', async () => {
    const w = world({ template: [api(45009)] });
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'queued', nextAt: nextQuotaDay(NOW), attempted: false, errcode: 45009 });
    expect(w.pauses).toEqual([['template', nextQuotaDay(NOW), 45009]]);
    // The next delivery of this process does not call at all.
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'queued', nextAt: nextQuotaDay(NOW) });
    expect(w.calls).toHaveLength(1);
  });

  it.each([43004, 40003, 47003, 43019, 48002, 40037])('When WeChat refuses with %i, then the delivery fails at once with it', async (code) => {
    const w = world({ template: [api(code)] });
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'failed', errcode: code, attempted: true });
  });

  it('When the Kv or the token owner is down, then the delivery waits without counting an attempt', async () => {
    const w = world({ template: [new DependencyUnavailableError('kv')] });
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'queued', attempted: false, error: 'dependency:kv' });
  });
});

// Errors of the token endpoint surface from templateSend / customSend (api.ts `call` →
// tokens.get / tokens.refresh) with the token endpoint in `err.endpoint`.
describe('access-token endpoint errors', () => {
  const STABLE = '/cgi-bin/stable_token';

  it.each([STABLE, '/cgi-bin/token'])('When fetching the access token at %s answers 45009 (token quota), then the template API is not paused and the delivery waits as for a dependency', async (path) => {
    const w = world({ template: [api(45009, path)] });
    // §8: 45009 is "Q" for the API that answered it; at the token endpoint it is "alert". The
    // template API's own quota is untouched, so it must not be paused for every worker until midnight.
    expect(await w.send(delivery(), w.plan(false))).toEqual({ status: 'queued', nextAt: NOW + 1_000, attempted: false, errcode: 45009, error: 'token:quota_daily', ambiguousSince: null });
    expect(w.pauses).toEqual([]);
  });

  it('When fetching the access token is refused for configuration (40164 IP not whitelisted), then the delivery waits instead of failing permanently', async () => {
    const w = world({ template: [new WeChatApiError(40164, 'invalid ip 1.2.3.4, not in whitelist', STABLE)] });
    // The token owner (a dependency) is unusable; D1: outbound notices queue. Nothing was sent.
    expect(await w.send(delivery({ attempts: 4 }), w.plan(false))).toMatchObject({ status: 'queued', attempted: false, errcode: 40164, error: 'token:config' });
  });

  it('When the token fetch times out, then the delivery waits without counting an attempt and is not marked possibly sent', async () => {
    const w = world({ template: [new WeChatTransportError('timeout', STABLE, false)] });
    expect(await w.send(delivery(), w.plan(false))).toMatchObject({ status: 'queued', attempted: false, error: 'token:transport:timeout', ambiguousSince: null });
  });

  it('When a possibly-sent template meets a token error, then it keeps waiting under its ambiguity (same client_msg_id later)', async () => {
    const w = world({ template: [api(45009, STABLE)] });
    expect(await w.send(delivery({ ambiguousSince: NOW - 1_000 }), w.plan(false))).toMatchObject({ status: 'queued', attempted: false, ambiguousSince: NOW - 1_000 });
  });

  it('When the customer-service send meets a token 45009, then neither API is paused, no template is tried, and the delivery waits', async () => {
    const w = world({ custom: [api(45009, STABLE)] });
    expect(await w.send(delivery(), w.plan(true))).toMatchObject({ status: 'queued', attempted: false, errcode: 45009 });
    expect(w.pauses).toEqual([]);
    expect(w.calls).toEqual(['custom']);
  });
});

describe('policy', () => {
  it('When merchant and request narrow the channels, then only those with content remain', () => {
    const tpl = { ...merchant, policy: 'template' as const };
    expect(channelsFor(merchant, { channel: 'auto', text: 'x', template: 'bill' })).toEqual({ cs: true, template: true });
    expect(channelsFor(merchant, { channel: 'auto', template: 'bill' })).toEqual({ cs: false, template: true });
    expect(channelsFor(merchant, { channel: 'customer-service', text: 'x', template: 'bill' })).toEqual({ cs: true, template: false });
    expect(channelsFor(tpl, { channel: 'customer-service', text: 'x', template: 'bill' })).toEqual({ cs: false, template: false });
    expect(channelsFor(merchant, { channel: 'auto', text: 'x', template: 'gone' })).toEqual({ cs: true, template: false });
  });

  it('When a template message is built, then fields map from the data and client_msg_id is the delivery id', () => {
    expect(templateMessage(merchant, { ...delivery(), notice: { ...delivery().notice, url: 'https://b.example/x' } })).toEqual({
      touser: 'o1',
      template_id: 'TPL',
      client_msg_id: delivery().id,
      url: 'https://b.example/x',
      data: { thing1: { value: '银行' }, amount2: { value: '12' } },
    });
  });
});
