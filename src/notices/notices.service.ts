/**
 * The notices use cases, transport-free (STYLE.md rule 1): the routes, the inbox and the
 * tests call the same functions.
 *
 * createNotice (DESIGN.md "Merchant API"; SECURITY.md D2): the notice and one delivery per
 * linked user are written in one statement, keyed by the merchant's Idempotency-Key. A key
 * already used is answered from what is stored (same body: the stored 202; another: 409)
 * before the request is checked against today's config. The unique key makes concurrent
 * requests race safely: the loser's insert waits for the winner's commit, then replays its
 * answer or is refused in the same way.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../http/errors.ts';
import type { Db, Queryable } from '../store/db.ts';
import { templateJobSchema } from './notices.schemas.ts';
import {
  countDeliveries,
  findNotice,
  findNoticeByKey,
  finishTemplateJob,
  insertNotice,
  listDeliveries,
  listDeliveryRefs,
  recordTemplateReport,
} from './notices.queries.ts';
import type { ChannelChoice, NoticeAccepted, NoticeRequest, NoticeView } from './notices.types.ts';
import { channelsFor, missingTemplateFields, type MerchantDirectory } from './policy.ts';
import { lockDeliveryForRetry, requeueDelivery, type DeliveryBefore } from './retry.queries.ts';
import { quietUntil } from './schedule.ts';

export interface NoticesServiceDeps {
  db: Db;
  log: Logger;
  now: () => number;
  merchants: MerchantDirectory;
  webhookMerchants: string[];
  /** New deliveries are due: lets an in-process worker claim them now. */
  onEnqueued?: () => void;
}

export interface NoticesService {
  createNotice(p: { merchantId: string; clientId: string; idempotencyKey: string; request: NoticeRequest }): Promise<NoticeAccepted & { replayed: boolean }>;
  getNotice(p: { merchantId: string; id: string; after?: string | undefined; limit?: number | undefined }): Promise<NoticeView | null>;
  /** TEMPLATESENDJOBFINISH (wechat-protocol.md §4.2): `sent` → `delivered` / `failed`. Called by the inbox. */
  onTemplateJobFinished(p: { appId: string; msgId: string; status: string; openid: string }): Promise<void>;
  /** An operator's retry of one `failed` or `unknown` delivery (see `RetryRequest`). */
  retryDelivery(p: RetryRequest): Promise<RetryResult>;
}

export interface RetryRequest {
  deliveryId: string;
  /** Set: only a delivery of this merchant moves (a scoped caller); others are `not_found`. */
  merchantId: string | null;
  /**
   * An `unknown` delivery may already have reached the user (an ambiguous customer-service
   * send has no idempotency key): it is retried only when the caller says a person chose so.
   */
  acceptDuplicateRisk: boolean;
  /** Runs in the retry's transaction (the audit row): the retry and its record commit together. */
  record?: (q: Queryable, before: DeliveryBefore) => Promise<void>;
}

export type RetryResult =
  | { outcome: 'retried'; before: DeliveryBefore }
  | { outcome: 'not_found' }
  /** Not failed or unknown: queued, in flight, sent or delivered. */
  | { outcome: 'not_retryable'; status: string }
  | { outcome: 'needs_confirmation' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Same request, same hash: keys sorted at every level, so field order does not matter. */
export function requestHash(request: NoticeRequest): string {
  const canonical = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
      : v;
  return createHash('sha256').update(JSON.stringify(canonical(request))).digest('base64url');
}

export function createNoticesService(deps: NoticesServiceDeps): NoticesService {
  const { db, now } = deps;

  function check(merchantId: string, r: NoticeRequest) {
    const m = deps.merchants(merchantId);
    if (!m) throw new AppError('request.forbidden', 'this client cannot send notices');
    if (r.template !== undefined && !m.templates[r.template]) throw new AppError('request.invalid', `template: unknown template '${r.template}'`);
    const ch = channelsFor(m, r);
    if (!ch.cs && !ch.template) {
      const why = m.policy !== 'auto' && r.channel !== 'auto' && m.policy !== r.channel ? `channel: ${r.channel} is not permitted for this merchant` : 'needs a template or a text for a permitted channel';
      throw new AppError('request.invalid', why);
    }
    if (ch.template && r.template) {
      const missing = missingTemplateFields(m, r.template, r.data);
      if (missing.length) throw new AppError('request.invalid', `data: missing ${missing.join(', ')} for template '${r.template}'`);
    }
    return m;
  }

  /** The stored answer for the same request, 409 for another. */
  async function replay(existing: { id: string; requestHash: string; createdAt: Date }, hash: string) {
    if (existing.requestHash !== hash) throw new AppError('notices.idempotency_conflict', 'this Idempotency-Key was used with another request');
    return { id: existing.id, createdAt: existing.createdAt.toISOString(), deliveries: await listDeliveryRefs(db, existing.id), replayed: true };
  }

  return {
    async createNotice({ merchantId, clientId, idempotencyKey, request }) {
      const hash = requestHash(request);
      // The key first (D2: "a repeat returns the stored result"): an accepted notice stays
      // accepted whatever the config says now (a template removed, a channel narrowed), so
      // the merchant's network retry must not be judged against today's config.
      const existing = await findNoticeByKey(db, merchantId, idempotencyKey);
      if (existing) return replay(existing, hash);
      const m = check(merchantId, request);
      const t = now();
      const inserted = await insertNotice(db, { merchantId, clientId, idempotencyKey, requestHash: hash, request }, { appId: m.appId, nextAt: quietUntil(t, m.quietHours) ?? t });
      if (!inserted) {
        // A concurrent request with this key won the insert (ON CONFLICT): answer as it did.
        const winner = await findNoticeByKey(db, merchantId, idempotencyKey);
        if (!winner) throw new AppError('notices.idempotency_conflict', 'retry the request');
        return replay(winner, hash);
      }
      deps.log.info({ noticeId: inserted.id, merchantId, deliveries: inserted.deliveries.length }, 'notice accepted');
      deps.onEnqueued?.();
      return { id: inserted.id, createdAt: inserted.createdAt.toISOString(), deliveries: inserted.deliveries, replayed: false };
    },

    async getNotice({ merchantId, id, after, limit = 200 }) {
      const notice = await findNotice(db, merchantId, id);
      if (!notice) return null;
      const [counts, deliveries] = await Promise.all([countDeliveries(db, id), listDeliveries(db, { noticeId: id, after: after ?? null, limit: limit + 1 })]);
      const page = deliveries.slice(0, limit);
      return {
        id: notice.id,
        template: notice.template,
        channel: notice.channel as ChannelChoice,
        createdAt: notice.created_at.toISOString(),
        counts,
        deliveries: page,
        next: deliveries.length > limit ? (page[page.length - 1]?.id ?? null) : null,
      };
    },

    async onTemplateJobFinished(input) {
      const p = templateJobSchema.parse(input);
      const moved = await finishTemplateJob(db, { ...p, now: now(), webhookMerchants: deps.webhookMerchants });
      // The push may beat the worker's write of the msgid; keep it for the worker to apply.
      if (moved === 0) await recordTemplateReport(db, { ...p, now: now() });
    },

    async retryDelivery(p) {
      if (!UUID.test(p.deliveryId)) return { outcome: 'not_found' };
      const res = await db.transaction(async (tx): Promise<RetryResult> => {
        const before = await lockDeliveryForRetry(tx, { id: p.deliveryId, merchantId: p.merchantId });
        if (!before) return { outcome: 'not_found' };
        if (before.status !== 'failed' && before.status !== 'unknown') return { outcome: 'not_retryable', status: before.status };
        if (before.status === 'unknown' && !p.acceptDuplicateRisk) return { outcome: 'needs_confirmation' };
        await requeueDelivery(tx, { id: before.id, from: before.status, now: now() });
        await p.record?.(tx, before);
        return { outcome: 'retried', before };
      });
      if (res.outcome === 'retried') {
        deps.log.info({ deliveryId: p.deliveryId, from: res.before.status }, 'notice delivery retried');
        deps.onEnqueued?.();
      }
      return res;
    },
  };
}
