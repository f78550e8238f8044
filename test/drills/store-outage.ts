/**
 * The store outage drill (issue 9; SECURITY.md D1): PostgreSQL or Redis goes away while
 * users log in, merchant H5s exchange codes, merchants send notices and WeChat pushes;
 * then it comes back. Measured per cycle: how long until /readyz says 503, the slowest
 * answer while down, how long until everything works again. Checked: every answer while
 * down is fast and, when refused, a 503 (a retry page or an RFC 9457 body); no token
 * without a consumed state and a durable binding; every push refused while down is
 * acknowledged when WeChat retries after; with only Redis down, notices are still accepted
 * (SECURITY.md D1: the outbox is in PostgreSQL); every notice accepted — or refused and sent again
 * with its Idempotency-Key — reaches WeChat exactly once.
 */
import { randomBytes } from 'node:crypto';
import { codeGrant, deliverPush, landLogin, pendingLogin, readyz, sendNotice, subscribePush, until, type DrillApp, type OpResult } from './kit.ts';
import { closeLedger, openLedger, type DrillOptions, type DrillReport } from './ledger.ts';

const DOWN_BUDGET_MS = 1_000;
const RECOVERY_BUDGET_MS = 5_000;

export async function storeOutageDrill(d: DrillApp, which: 'db' | 'kv', o: DrillOptions): Promise<DrillReport> {
  const sw = which === 'db' ? d.db : d.kv;
  const ledger = await openLedger(d);
  const { user, bearer, ops, violations, tokens, landed, acked } = ledger;
  const acceptedKeys = new Set<string>();
  let unreadyMs = 0;
  let slowestDownMs = 0;
  let recoveryMs = 0;
  const key = () => `d${randomBytes(5).toString('hex')}`;

  /** An answer while down: counted, and held to the budget. */
  const record = (kind: string, r: OpResult) => {
    ops[kind]![r.ok ? 'ok' : 'refused']++;
    slowestDownMs = Math.max(slowestDownMs, r.ms);
    if (r.ms > DOWN_BUDGET_MS) violations.push(`${kind} took ${r.ms} ms while ${which} was down`);
    // A refusal while down must say "try again": 503 (pushes: any non-2xx makes WeChat retry).
    if (!r.ok && kind !== 'push' && r.status !== 503) violations.push(`${kind} answered ${r.status} while ${which} was down`);
    if (r.detail && !r.ok && kind !== 'grant') violations.push(`${kind}: ${r.detail}`);
  };

  for (let cycle = 0; cycle < o.cycles; cycle++) {
    // Ready for the cut: a login waiting at WeChat's callback, a push WeChat is about to send.
    const pending = await pendingLogin(d, user);
    const retryPushes: { url: string; body: string; openid: string }[] = [];
    const retryKeys: string[] = [];
    sw.cut();
    const cutAt = performance.now();
    const unready = await until(async () => (await readyz(d)) === 503, DOWN_BUDGET_MS, 10);
    if (unready === null) violations.push(`/readyz not 503 within ${DOWN_BUDGET_MS} ms of ${which} going down`);
    unreadyMs = Math.max(unreadyMs, unready ?? DOWN_BUDGET_MS);
    // While down: every kind of operation, again and again, until the outage is over.
    let first = true;
    while (first || performance.now() - cutAt < o.downMs) {
      const l = await landLogin(first ? pending : await pendingLogin(d, user).catch(() => pending));
      record('login', l);
      if (l.ok) landed.push(pending.state);
      const g = await codeGrant(d, user);
      record('grant', g);
      if (g.token) tokens.push(g.token);
      const k = key();
      const n = await sendNotice(d, bearer, user.account, k);
      record('notice', n);
      if (n.ok) acceptedKeys.add(k);
      else retryKeys.push(k);
      // D1: with only Redis down, a notice is still enqueued into the PostgreSQL outbox.
      if (which === 'kv' && !n.ok) violations.push(`a notice was refused (${n.status}) while only Redis was down`);
      const push = subscribePush(d);
      const p = await deliverPush(push);
      record('push', p);
      if (p.ok) acked.push(push.openid);
      else retryPushes.push(push);
      first = false;
    }
    // Back: recovered when /readyz is 200 and each kind of operation works again, new ones.
    sw.restore();
    const restoredAt = performance.now();
    const recovered = await until(
      async () => {
        if ((await readyz(d)) !== 200) return false;
        const push = subscribePush(d);
        if (!(await deliverPush(push)).ok) return false;
        acked.push(push.openid);
        const k = key();
        if (!(await sendNotice(d, bearer, user.account, k)).ok) return false;
        acceptedKeys.add(k);
        const g = await codeGrant(d, user);
        if (!g.ok) return false;
        tokens.push(g.token!);
        // A fresh login end to end (a callback that failed closed stays failed: the user restarts).
        const again = await pendingLogin(d, user);
        if (!(await landLogin(again)).ok) return false;
        landed.push(again.state);
        return true;
      },
      RECOVERY_BUDGET_MS,
      50,
    );
    if (recovered === null) violations.push(`not fully recovered within ${RECOVERY_BUDGET_MS} ms of ${which} coming back`);
    recoveryMs = Math.max(recoveryMs, recovered ?? Math.round(performance.now() - restoredAt));
    // Then the backlog: WeChat retries every push it got no 2xx for; the merchant sends every
    // refused notice again with its Idempotency-Key. Each must now be taken.
    for (const push of retryPushes) {
      if ((await until(async () => (await deliverPush(push)).ok, RECOVERY_BUDGET_MS)) === null) violations.push('a push retried after recovery was refused');
      else acked.push(push.openid);
    }
    for (const k of retryKeys) {
      if ((await until(async () => (await sendNotice(d, bearer, user.account, k)).ok, RECOVERY_BUDGET_MS)) === null) violations.push('a notice sent again after recovery was refused');
      else acceptedKeys.add(k);
    }
  }

  return closeLedger(d, ledger, {
    drill: which === 'db' ? 'PostgreSQL down' : 'Redis down',
    cycles: o.cycles,
    keys: [...acceptedKeys],
    settleMs: o.settleMs ?? 20_000,
    timings: { unreadyMs, slowestDownMs, recoveryMs },
  });
}
