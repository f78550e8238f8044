/**
 * Per-day counts for the dashboard, over other features' tables (read-only), each
 * limited to the viewer's scope. Days are UTC. Rows come back as {day, key, n}.
 */
import type { Queryable } from '../store/db.ts';
import { keyspace } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { scopeSql, type Scope } from './policy.ts';

export interface DayCount {
  day: string;
  key: string;
  n: number;
}

async function counts(q: Queryable, sql: string, params: unknown[]): Promise<DayCount[]> {
  const r = await q.query<{ day: string; key: string | number | null; n: number | string }>(sql, params);
  return r.rows.map((x) => ({ day: String(x.day), key: String(x.key ?? ''), n: Number(x.n) }));
}

const DAY = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;

/** Links and unlinks per day. */
export function bindingChanges(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  const s = scopeSql(scope, 'merchant_id', params);
  return counts(
    q,
    `SELECT ${DAY('created_at')} AS day, 'linked' AS key, count(*) AS n FROM bindings WHERE created_at >= $1 AND ${s} GROUP BY 1
     UNION ALL
     SELECT ${DAY('revoked_at')} AS day, 'unlinked' AS key, count(*) AS n FROM bindings WHERE revoked_at >= $1 AND ${s} GROUP BY 1`,
    params,
  );
}

/** New WeChat users, and users by the day of their latest web login (no per-login log is kept). */
export function identityActivity(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  const visible =
    scope.merchantId === null ? 'TRUE' : `EXISTS (SELECT 1 FROM bindings b WHERE b.identity_id = i.id AND b.merchant_id = $${params.push(scope.merchantId)})`;
  return counts(
    q,
    `SELECT ${DAY('i.created_at')} AS day, 'new' AS key, count(*) AS n FROM identities i WHERE i.created_at >= $1 AND ${visible} GROUP BY 1
     UNION ALL
     SELECT ${DAY('i.last_login_at')} AS day, 'login' AS key, count(*) AS n FROM identities i WHERE i.last_login_at >= $1 AND ${visible} GROUP BY 1`,
    params,
  );
}

/**
 * Sign-ins to merchant apps per day: each authorization-code exchange of a client with
 * refresh tokens starts a family (oauth migration 300), the one per-login record kept.
 */
export function oauthLogins(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  return counts(
    q,
    `SELECT ${DAY('created_at')} AS day, 'oauth' AS key, count(*) AS n FROM refresh_token_families WHERE created_at >= $1 AND ${scopeSql(scope, 'merchant_id', params)} GROUP BY 1`,
    params,
  );
}

/**
 * Calls counted against WeChat's daily quotas (keyspace `wechat.callCounter`), per account,
 * API and quota day: one Kv read per cell, a few hundred at most. A Kv that is down shows
 * zeros rather than failing the page.
 */
export async function quotaCounts(kv: Kv, appIds: string[], apis: readonly string[], days: string[]): Promise<DayCount[]> {
  const cells = appIds.flatMap((appId) => apis.flatMap((api) => days.map((day) => ({ appId, api, day }))));
  const values = await Promise.all(cells.map((c) => kv.get(keyspace.wechat.callCounter(c.appId, c.api, c.day)).catch(() => null)));
  return cells.flatMap((c, i) => {
    const n = Number(values[i] ?? 0);
    return Number.isFinite(n) && n > 0 ? [{ day: c.day, key: `${c.appId}|${c.api}`, n }] : [];
  });
}

/** Notice deliveries by the day they were made and where they stand now. */
export function noticeOutcomes(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  return counts(q, `SELECT ${DAY('created_at')} AS day, status AS key, count(*) AS n FROM notice_deliveries WHERE created_at >= $1 AND ${scopeSql(scope, 'merchant_id', params)} GROUP BY 1, 2`, params);
}

/** WeChat errcodes met by notice deliveries, per day. */
export function errcodes(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  return counts(
    q,
    `SELECT ${DAY('updated_at')} AS day, errcode AS key, count(*) AS n FROM notice_deliveries
      WHERE updated_at >= $1 AND errcode IS NOT NULL AND errcode <> 0 AND ${scopeSql(scope, 'merchant_id', params)} GROUP BY 1, 2`,
    params,
  );
}

/** Webhook events by day and state. */
export function webhookOutcomes(q: Queryable, scope: Scope, from: Date): Promise<DayCount[]> {
  const params: unknown[] = [from.toISOString()];
  return counts(q, `SELECT ${DAY('created_at')} AS day, status AS key, count(*) AS n FROM webhook_events WHERE created_at >= $1 AND ${scopeSql(scope, 'merchant_id', params)} GROUP BY 1, 2`, params);
}

/** WeChat users (in scope: those with a binding at the merchant) and active bindings now. */
export async function totals(q: Queryable, scope: Scope): Promise<{ identities: number; activeBindings: number }> {
  const params: unknown[] = [];
  const s = scopeSql(scope, 'merchant_id', params);
  const r = await q.query<{ identities: number | string; active: number | string }>(
    `SELECT (SELECT count(DISTINCT identity_id) FROM bindings WHERE ${s}) AS identities,
            (SELECT count(*) FROM bindings WHERE status = 'active' AND ${s}) AS active`,
    params,
  );
  const all = scope.merchantId === null ? await q.query<{ n: number | string }>('SELECT count(*) AS n FROM identities') : null;
  return { identities: Number(all?.rows[0]?.n ?? r.rows[0]?.identities ?? 0), activeBindings: Number(r.rows[0]?.active ?? 0) };
}
