/**
 * What every drill checks at the end (SECURITY.md D1, D2, D5): each access token issued names
 * a binding active in PostgreSQL and each login that made a session consumed its state; every
 * accepted notice reached WeChat exactly once; every push acknowledged to WeChat is recorded.
 * And the report a drill returns, which the CI tests assert on and `npm run drills` prints.
 */
import { decodeJwt } from 'jose';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import { keyspace } from '../../src/store/keyspace.ts';
import { clientToken, linkedUser, until, type DrillApp, type LinkedUser } from './kit.ts';

/** Follows acknowledged to WeChat whose subscribe state is not in PostgreSQL (lost pushes). */
export async function unrecordedFollows(d: DrillApp, openids: string[]): Promise<string[]> {
  const r = await d.app.deps.db.query<{ openid: string }>('SELECT openid FROM identities WHERE app_id = $1 AND openid = ANY($2::text[]) AND subscribed IS TRUE', [DEMO_ACCOUNT.appId, openids]);
  const recorded = new Set(r.rows.map((x) => x.openid));
  return openids.filter((o) => !recorded.has(o));
}

/** Tokens without an active binding, sessions whose login state was not consumed. */
export async function tokenInvariants(d: DrillApp, tokens: string[], landedStates: string[]): Promise<string[]> {
  const violations: string[] = [];
  for (const t of tokens) {
    const claims = decodeJwt(t);
    const row = await d.app.deps.db.query<{ status: string }>('SELECT status FROM bindings WHERE id = $1', [claims.binding_id]);
    if (row.rows[0]?.status !== 'active') violations.push(`token ${String(claims.jti)} without a durable binding`);
  }
  for (const s of landedStates) if ((await d.app.deps.kv.get(keyspace.linking.state(DEMO_ACCOUNT.appId, s))) !== null) violations.push('a session from a state that was not consumed');
  return violations;
}

/** Notices of this drill (by Idempotency-Key = marker) as WeChat received them, and as stored. */
export async function noticeCounts(d: DrillApp, keys: string[]): Promise<{ sentOnce: number; duplicates: number; missing: string[]; open: number }> {
  const per = new Map<string, number>();
  for (const m of d.sandbox.messages({ appId: DEMO_ACCOUNT.appId })) {
    const marker = String((m.payload.data as Record<string, { value: string }> | undefined)?.thing1?.value ?? '');
    if (keys.includes(marker)) per.set(marker, (per.get(marker) ?? 0) + 1);
  }
  const open = await d.app.deps.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id WHERE n.idempotency_key = ANY($1::text[]) AND d.status IN ('queued', 'sending')`,
    [keys],
  );
  return { sentOnce: [...per.values()].filter((n) => n === 1).length, duplicates: [...per.values()].filter((n) => n > 1).length, missing: keys.filter((k) => !per.has(k)), open: open.rows[0]!.n };
}

export interface DrillOptions {
  cycles: number;
  downMs: number;
  /** How long to wait after the last recovery for every notice to reach WeChat. */
  settleMs?: number;
}

export interface DrillReport {
  drill: string;
  mode: string;
  cycles: number;
  /** Per kind of operation: answered ok / refused while the fault lasted. */
  ops: Record<string, { ok: number; refused: number }>;
  /** Worst time from the cut to /readyz 503, and the slowest answer while down. */
  unreadyMs: number;
  slowestDownMs: number;
  /** Worst time from the restore until /readyz 200 and every kind of operation works. */
  recoveryMs: number;
  tokens: number;
  /** Pushes acknowledged (while down, or when WeChat retried after); all must be recorded. */
  pushesAcked: number;
  notices: { keys: number; sentOnce: number; duplicates: number; missing: number; open: number };
  violations: string[];
}

/** What a drill keeps as it goes: its user and merchant, what was issued, acknowledged, violated. */
export interface Ledger {
  user: LinkedUser;
  bearer: string;
  ops: DrillReport['ops'];
  violations: string[];
  /** Access tokens issued, states of logins that made a session, follows acknowledged. */
  tokens: string[];
  landed: string[];
  acked: string[];
}

export async function openLedger(d: DrillApp): Promise<Ledger> {
  const ops = Object.fromEntries(['login', 'grant', 'notice', 'push'].map((k) => [k, { ok: 0, refused: 0 }]));
  return { user: await linkedUser(d), bearer: await clientToken(d), ops, violations: [], tokens: [], landed: [], acked: [] };
}

/**
 * The checks at the end of every drill — nothing lost, nothing twice, no token without its
 * state and binding — and the drill's report.
 */
export async function closeLedger(
  d: DrillApp,
  l: Ledger,
  o: { drill: string; cycles: number; keys: string[]; settleMs: number; timings: Pick<DrillReport, 'unreadyMs' | 'slowestDownMs' | 'recoveryMs'> },
): Promise<DrillReport> {
  const { keys, settleMs } = o;
  await until(async () => (await noticeCounts(d, keys)).missing.length === 0, settleMs, 200);
  const counts = await noticeCounts(d, keys);
  if (counts.missing.length) l.violations.push(`${counts.missing.length} accepted notices never reached WeChat`);
  if (counts.duplicates) l.violations.push(`${counts.duplicates} notices reached WeChat twice`);
  l.violations.push(...(await tokenInvariants(d, l.tokens, l.landed)));
  const lost = await unrecordedFollows(d, l.acked);
  if (lost.length) l.violations.push(`${lost.length} pushes acknowledged to WeChat but not recorded`);
  return {
    drill: o.drill,
    mode: d.mode,
    cycles: o.cycles,
    ops: l.ops,
    ...o.timings,
    tokens: l.tokens.length,
    pushesAcked: l.acked.length,
    notices: { keys: keys.length, sentOnce: counts.sentOnce, duplicates: counts.duplicates, missing: counts.missing.length, open: counts.open },
    violations: l.violations,
  };
}
