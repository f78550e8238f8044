/**
 * `npm run drills`: the fault drills of issue 9, run for longer than CI's short form and
 * printed as one table — Redis down and back, PostgreSQL down and back, WeChat answering -1
 * to every call, two instances rotating keys at once, and notice workers SIGKILLed mid-batch.
 * The drills are the CI ones (test/drills/*.ts, test/notices/faults.test.ts), in cycles.
 *
 * Against the real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, defaulting to the local
 * ones as `npm run bench` does), taken down by cutting TCP proxies so the servers themselves
 * stay up for everyone else; DRILL_EMBEDDED=1 uses PGlite and the in-process Kv instead.
 *
 * DRILL_DURATION (s, default 60) is each drill's time under faults; DRILL_DOWN_MS (default
 * 3000) each outage; DRILL_ONLY=redis,postgres,wechat,rotation,worker picks drills. Exits
 * non-zero when any drill saw a violation.
 */
import { spawn } from 'node:child_process';

if (process.env.DRILL_EMBEDDED === '1') {
  delete process.env.DATABASE_URL;
  delete process.env.REDIS_URL;
} else {
  process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
  process.env.REDIS_URL ??= 'redis://127.0.0.1:6379';
}
const DURATION_S = Number(process.env.DRILL_DURATION ?? 60);
const DOWN_MS = Number(process.env.DRILL_DOWN_MS ?? 3_000);
const ONLY = process.env.DRILL_ONLY?.split(',').filter(Boolean);
const wanted = (name: string) => !ONLY || ONLY.includes(name);

interface Row {
  drill: string;
  cycles: number | string;
  ok: number;
  refused: number;
  unready: string;
  slowestDown: string;
  recovery: string;
  tokens: number | string;
  notices: string;
  violations: string[];
  seconds: number;
}

/** The notices fault test, scaled to the duration: its one JSON line is the result. */
function workerKillDrill(): Promise<Row> {
  const notices = Math.max(2_000, DURATION_S * 150);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', 'test/notices/faults.test.ts'], { env: { ...process.env, FAULT_NOTICES: String(notices) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => {
      const line = /\[notices fault run\] (\{.*\})/.exec(out)?.[1];
      const s = line ? (JSON.parse(line) as { notices: number; kills: number; cuts: number; lost: number; duplicates: number; definiteWrong: number; byStatus: Record<string, number> }) : null;
      const violations = code === 0 ? [] : [`faults test exited ${code}${s ? '' : ': no result line'}`];
      if (s?.lost) violations.push(`${s.lost} notices lost`);
      if (s?.duplicates) violations.push(`${s.duplicates} duplicates`);
      resolve({
        drill: 'worker SIGKILLed mid-batch',
        cycles: s ? `${s.kills} kills, ${s.cuts} Redis cuts` : '-',
        ok: s ? (s.byStatus.delivered ?? 0) + (s.byStatus.sent ?? 0) : 0,
        refused: s ? (s.byStatus.failed ?? 0) + (s.byStatus.unknown ?? 0) : 0,
        unready: '-',
        slowestDown: '-',
        recovery: '-',
        tokens: '-',
        notices: s ? `${s.notices} / ${s.duplicates} dup / ${s.lost} lost` : '-',
        violations,
        seconds: Math.round((Date.now() - t0) / 1000),
      });
    });
  });
}

async function main(): Promise<void> {
  const { startDrillApp, REAL } = await import('../test/drills/kit.ts');
  const { storeOutageDrill } = await import('../test/drills/store-outage.ts');
  const { wechatOutageDrill } = await import('../test/drills/wechat-outage.ts');
  const { rotationDrill } = await import('../test/drills/rotation.ts');
  // Each cycle: an outage of DOWN_MS under load, then recovery and the checks (~2 s more).
  const cycles = Math.max(1, Math.round((DURATION_S * 1000) / (DOWN_MS + 2_500)));
  const rows: Row[] = [];
  const d = await startDrillApp();
  console.log(`[drills] ${d.mode}; ${DURATION_S} s per drill, outages of ${DOWN_MS} ms (${cycles} cycles)`);
  const table = (r: Awaited<ReturnType<typeof storeOutageDrill>>, t0: number): Row => ({
    drill: r.drill,
    cycles: r.cycles,
    ok: Object.values(r.ops).reduce((n, o) => n + o.ok, 0),
    refused: Object.values(r.ops).reduce((n, o) => n + o.refused, 0),
    // Rotation has no outage: its timing columns stay empty.
    unready: r.drill.includes('rotating') ? '-' : `${r.unreadyMs} ms`,
    slowestDown: r.drill.includes('rotating') ? '-' : `${r.slowestDownMs} ms`,
    recovery: r.drill.includes('rotating') ? '-' : `${r.recoveryMs} ms`,
    tokens: r.tokens,
    notices: `${r.notices.sentOnce}/${r.notices.keys} once, ${r.notices.duplicates} dup, ${r.notices.missing} missing`,
    violations: r.violations,
    seconds: Math.round((Date.now() - t0) / 1000),
  });
  try {
    for (const [name, run] of [
      ['redis', () => storeOutageDrill(d, 'kv', { cycles, downMs: DOWN_MS })],
      ['postgres', () => storeOutageDrill(d, 'db', { cycles, downMs: DOWN_MS })],
      ['wechat', () => wechatOutageDrill(d, { cycles, downMs: DOWN_MS, settleMs: 120_000 })],
      ['rotation', () => rotationDrill(d, { cycles: Math.max(4, cycles) })],
    ] as const) {
      if (!wanted(name)) continue;
      const t0 = Date.now();
      console.log(`[drills] ${name} …`);
      rows.push(table(await run(), t0));
    }
  } finally {
    await d.close();
  }
  if (wanted('worker')) {
    console.log('[drills] worker …');
    rows.push(await workerKillDrill());
  }

  const head = ['drill', 'cycles', 'ok while down', 'refused while down', '→503', 'slowest while down', 'recovery', 'tokens', 'notices', 'violations', 's'];
  const lines = rows.map((r) => [r.drill, String(r.cycles), String(r.ok), String(r.refused), r.unready, r.slowestDown, r.recovery, String(r.tokens), r.notices, r.violations.length ? r.violations.slice(0, 3).join('; ') : 'none', String(r.seconds)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\nFault drills (${REAL ? 'PostgreSQL + Redis via cut proxies' : 'embedded'}), ${new Date().toISOString()}`);
  console.log(fmt(head));
  console.log(fmt(widths.map((w) => '-'.repeat(w))));
  for (const l of lines) console.log(fmt(l));
  const bad = rows.filter((r) => r.violations.length);
  for (const r of bad) console.log(`\n${r.drill}: ${r.violations.length} violations\n  ${r.violations.join('\n  ')}`);
  process.exitCode = bad.length ? 1 : 0;
}

void main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
