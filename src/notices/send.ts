/**
 * Sends one leased delivery and says what came of it (issue 7 "Channel policy", "Rate and
 * quota awareness"; wechat-protocol.md §3, §4, §8; SECURITY.md D2, D4). Transport-free:
 * the WeChat client does the HTTP, and its token refresh + one retry on 40001/42001.
 *
 * - Customer-service first when the dispatcher planned it (window open, quota taken, merchant
 *   permits); 45015/45047 fall back to the template. No idempotency key exists for it, so an
 *   ambiguous outcome (timeout, dropped answer) is `unknown` and never retried.
 * - Template with `client_msg_id` = delivery id: WeChat sends one message per openid and id
 *   for 10 minutes, so an ambiguous template send is retried, but only inside that window.
 * - -1 and a refused token: retried later with full-jitter backoff, up to `maxAttempts`.
 * - 45009 / 45011: the API is paused for everyone (governor) and the delivery waits.
 * - Anything else WeChat refuses (43004, 40003, 47003, 43019, 48002 …) fails at once.
 * - An error of the access-token endpoint (§2, §8: 45009 there is "alert", 40164 a missing IP
 *   whitelist) comes out of the send before any message was sent: the token owner, a
 *   dependency, is unusable. The delivery waits (not counted as an attempt); the send API is
 *   never paused for it, and it never fails the delivery.
 */
import { DependencyUnavailableError } from '../http/errors.ts';
import { isTokenEndpoint, WeChatApiError, WeChatTransportError } from '../wechat/errors.ts';
import type { Governor, SendApi } from './governor.ts';
import type { ClaimedDelivery, NoticeSender, Outcome } from './notices.types.ts';
import { customText, templateMessage, type Channels, type MerchantNotices } from './policy.ts';
import { fullJitter, nextMinute, nextQuotaDay, type BackoffPolicy } from './schedule.ts';

export interface SendOptions {
  backoff: BackoffPolicy;
  /** Attempts before a retryable failure becomes final. */
  maxAttempts: number;
  /** How long an ambiguous template send may still be retried (10 min less a margin). */
  dedupeWindowMs: number;
  /** Wait after a dependency (Kv, token owner) failed before trying again. */
  dependencyRetryMs: number;
}

export interface SendDeps {
  sender: NoticeSender;
  governor: Governor;
  now: () => number;
  random?: () => number;
  options: SendOptions;
  onPauseError?: (err: unknown) => void;
  /** Each call made to WeChat's send APIs, before it is made (quota counters). */
  onCall?: (appId: string, api: SendApi) => void;
}

type Failure =
  | { kind: 'fallback'; errcode: number }
  | { kind: 'pause'; until: number; errcode: number }
  | { kind: 'retry'; errcode: number | null; error: string; attempted: boolean }
  | { kind: 'ambiguous'; error: string }
  | { kind: 'permanent'; errcode: number | null; error: string };

/** SECURITY.md D4 and wechat-protocol.md §8, as one table from error to action. */
export function classifySendError(err: unknown, api: SendApi, now: number): Failure {
  // Token errors reach us through templateSend / customSend with the token endpoint in `err.endpoint`.
  if ((err instanceof WeChatApiError || err instanceof WeChatTransportError) && isTokenEndpoint(err.endpoint)) {
    // No token, no send: a dependency failure (D1: notices queue). The token owner's cooldown
    // keeps a fleet from hammering the token endpoint meanwhile; its errcode is kept for ops.
    const errcode = err instanceof WeChatApiError ? err.errcode : null;
    const error = err instanceof WeChatApiError ? `token:${err.kind}` : `token:transport:${err.reason}`;
    return { kind: 'retry', errcode, error, attempted: false };
  }
  if (err instanceof WeChatApiError) {
    const errcode = err.errcode;
    switch (err.kind) {
      case 'window_closed':
        return api === 'custom' ? { kind: 'fallback', errcode } : { kind: 'permanent', errcode, error: err.kind };
      case 'quota_daily':
        return { kind: 'pause', until: nextQuotaDay(now), errcode };
      case 'quota_minute':
        return { kind: 'pause', until: nextMinute(now), errcode };
      case 'busy':
      case 'token_invalid':
        return { kind: 'retry', errcode, error: err.kind, attempted: true };
      default:
        return { kind: 'permanent', errcode, error: err.kind };
    }
  }
  if (err instanceof WeChatTransportError) {
    return err.ambiguous ? { kind: 'ambiguous', error: `transport:${err.reason}` } : { kind: 'retry', errcode: null, error: `transport:${err.reason}`, attempted: true };
  }
  if (err instanceof DependencyUnavailableError) return { kind: 'retry', errcode: null, error: `dependency:${err.dependency}`, attempted: false };
  // Our own failure before or around the call; bounded by maxAttempts.
  return { kind: 'retry', errcode: null, error: 'internal', attempted: true };
}

export interface SendPlan {
  merchant: MerchantNotices;
  channels: Channels;
  /** The dispatcher took the window quota and recorded the intent: send customer-service first. */
  useCs: boolean;
}

export function createSend(deps: SendDeps) {
  const { sender, governor, now, options } = deps;
  const random = deps.random ?? Math.random;

  function retry(d: ClaimedDelivery, f: { errcode: number | null; error: string; attempted: boolean }, ambiguousSince: number | null): Outcome {
    if (!f.attempted) return { status: 'queued', nextAt: now() + options.dependencyRetryMs, attempted: false, errcode: f.errcode, error: f.error, ambiguousSince };
    if (d.attempts + 1 >= options.maxAttempts) {
      // A template send that may have gone out is not "failed": it may have been delivered.
      if (ambiguousSince !== null) return { status: 'unknown', channel: 'template', error: f.error, attempted: true };
      return { status: 'failed', channel: null, errcode: f.errcode, error: f.error, attempted: true };
    }
    return { status: 'queued', nextAt: now() + fullJitter(d.attempts, options.backoff, random), attempted: true, errcode: f.errcode, error: f.error, ambiguousSince };
  }

  async function pause(appId: string, api: SendApi, until: number, errcode: number): Promise<void> {
    await governor.pause(appId, api, until, errcode).catch((err: unknown) => deps.onPauseError?.(err));
  }

  async function sendTemplate(d: ClaimedDelivery, plan: SendPlan, windowErrcode: number | null): Promise<Outcome> {
    if (!plan.channels.template) {
      if (windowErrcode !== null) return { status: 'failed', channel: 'customer-service', errcode: windowErrcode, error: 'window_closed', attempted: true };
      return { status: 'failed', channel: null, errcode: null, error: 'no_channel', attempted: false };
    }
    if (d.ambiguousSince !== null && now() - d.ambiguousSince > options.dedupeWindowMs) {
      return { status: 'unknown', channel: 'template', error: 'dedupe_window_passed', attempted: false };
    }
    const paused = governor.pausedLocally(d.appId, 'template');
    if (paused) return { status: 'queued', nextAt: paused, attempted: false, ambiguousSince: d.ambiguousSince };
    const message = templateMessage(plan.merchant, d);
    if (!message) return { status: 'failed', channel: 'template', errcode: null, error: 'template_not_configured', attempted: false };
    const started = now();
    try {
      deps.onCall?.(d.appId, 'template');
      const { msgid } = await sender.templateSend(d.appId, message);
      return { status: 'sent', channel: 'template', msgid };
    } catch (err) {
      const f = classifySendError(err, 'template', now());
      switch (f.kind) {
        case 'pause':
          await pause(d.appId, 'template', f.until, f.errcode);
          return { status: 'queued', nextAt: f.until, attempted: false, errcode: f.errcode, error: 'paused', ambiguousSince: d.ambiguousSince };
        case 'ambiguous':
          return retry(d, { errcode: null, error: f.error, attempted: true }, d.ambiguousSince ?? started);
        case 'retry':
          return retry(d, f, d.ambiguousSince);
        default:
          return { status: 'failed', channel: 'template', errcode: 'errcode' in f ? f.errcode : null, error: 'error' in f ? f.error : 'failed', attempted: true };
      }
    }
  }

  return async function send(d: ClaimedDelivery, plan: SendPlan): Promise<Outcome> {
    if (!plan.useCs) return sendTemplate(d, plan, null);
    try {
      deps.onCall?.(d.appId, 'custom');
      await sender.customSend(d.appId, { touser: d.openid, msgtype: 'text', text: { content: customText(d.notice) } });
      return { status: 'delivered', channel: 'customer-service' };
    } catch (err) {
      const f = classifySendError(err, 'custom', now());
      switch (f.kind) {
        case 'fallback':
          return sendTemplate(d, plan, f.errcode);
        case 'pause':
          await pause(d.appId, 'custom', f.until, f.errcode);
          if (plan.channels.template) return sendTemplate(d, plan, null);
          return { status: 'queued', nextAt: f.until, attempted: false, errcode: f.errcode, error: 'paused' };
        case 'ambiguous':
          return { status: 'unknown', channel: 'customer-service', error: f.error, attempted: true };
        case 'retry':
          return retry(d, f, null);
        case 'permanent':
          return { status: 'failed', channel: 'customer-service', errcode: f.errcode, error: f.error, attempted: true };
      }
    }
  };
}

export type Send = ReturnType<typeof createSend>;
