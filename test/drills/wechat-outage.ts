/**
 * WeChat answering -1 ("system busy") to every API call (the sandbox's fault injection;
 * SECURITY.md D1, D4): logins fail closed with a retry page (503) at once, no session; code
 * grants for users already logged in go on (they need no WeChat call); notices are accepted
 * and stay queued — never failed — and reach WeChat exactly once after it recovers; pushes
 * are still acknowledged (they call nothing). /readyz stays 200: WeChat is not ours to be
 * ready for.
 */
import { randomBytes } from 'node:crypto';
import { DEMO_ACCOUNT } from '../../src/config/demo.ts';
import { codeGrant, deliverPush, landLogin, pendingLogin, readyz, sendNotice, subscribePush, until, type DrillApp } from './kit.ts';
import { closeLedger, openLedger, type DrillOptions, type DrillReport } from './ledger.ts';

export async function wechatOutageDrill(d: DrillApp, o: DrillOptions): Promise<DrillReport> {
  const ledger = await openLedger(d);
  const { user, bearer, ops, violations, tokens, landed, acked } = ledger;
  const keys: string[] = [];
  let slowestDownMs = 0;
  let recoveryMs = 0;
  const count = (kind: string, ok: boolean) => ops[kind]![ok ? 'ok' : 'refused']++;

  for (let cycle = 0; cycle < o.cycles; cycle++) {
    d.sandbox.inject({ path: '*', errcode: -1 });
    const t0 = performance.now();
    let first = true;
    while (first || performance.now() - t0 < o.downMs) {
      first = false;
      const l = await landLogin(await pendingLogin(d, user));
      count('login', l.ok);
      slowestDownMs = Math.max(slowestDownMs, l.ms);
      if (l.ok) violations.push('a login succeeded while WeChat answered -1 to the code exchange');
      else if (l.status !== 503 || l.ms > 1_000) violations.push(`login answered ${l.status} in ${l.ms} ms while WeChat was busy`);
      const g = await codeGrant(d, user);
      count('grant', g.ok);
      if (g.token) tokens.push(g.token);
      const k = `w${randomBytes(5).toString('hex')}`;
      const n = await sendNotice(d, bearer, user.account, k);
      count('notice', n.ok);
      if (n.ok) keys.push(k);
      else violations.push(`notice refused (${n.status}) while only WeChat was down`);
      const push = subscribePush(d);
      const p = await deliverPush(push);
      count('push', p.ok);
      if (p.ok) acked.push(push.openid);
      if ((await readyz(d)) !== 200) violations.push('/readyz not 200 while only WeChat was down');
    }
    // Busy is not a definite answer: nothing may have been given up on.
    const failed = await d.app.deps.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM notice_deliveries d JOIN notices n ON n.id = d.notice_id WHERE n.idempotency_key = ANY($1::text[]) AND d.status IN ('failed', 'unknown')`,
      [keys],
    );
    if (failed.rows[0]!.n) violations.push(`${failed.rows[0]!.n} notices failed while WeChat was only busy`);
    d.sandbox.clearFaults();
    const recovered = await until(async () => {
      const p = await pendingLogin(d, user);
      const l = await landLogin(p);
      if (l.ok) landed.push(p.state);
      return l.ok;
    }, 5_000);
    if (recovered === null) violations.push('logins not back within 5 s of WeChat recovering');
    recoveryMs = Math.max(recoveryMs, recovered ?? 5_000);
  }
  if (!d.sandbox.calls().some((c) => c.appId === DEMO_ACCOUNT.appId && c.errcode === -1)) violations.push('the fault was never hit');
  return closeLedger(d, ledger, { drill: 'WeChat -1 on every call', cycles: o.cycles, keys, settleMs: o.settleMs ?? 30_000, timings: { unreadyMs: 0, slowestDownMs, recoveryMs } });
}
