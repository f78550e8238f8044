/**
 * Processes under test, each pinned to one core with taskset (SECURITY.md E: the bridge
 * on one core, the load generator on the other), and their peak memory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const hasTaskset = existsSync('/usr/bin/taskset');

/**
 * SECURITY.md E: PostgreSQL and Redis run on other cores than the bridge. Pins the local
 * `postgres` and `redis-server` processes (every thread; backends the postmaster forks later
 * inherit its mask) to `cpu` for the run, and returns what was pinned and how to put their
 * masks back. Off with BENCH_PIN_SERVICES=0; a service that is not a local process, or
 * cannot be pinned, is left as it is and not named.
 */
export function pinLocalServices(cpu: number): { pinned: string[]; restore(): void } {
  if (!hasTaskset || process.env.BENCH_PIN_SERVICES === '0') return { pinned: [], restore: () => undefined };
  const masks = new Map<number, string>();
  const pinned: string[] = [];
  for (const name of ['postgres', 'redis-server']) {
    let pids: number[] = [];
    try {
      pids = execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    } catch {
      continue; // none running here
    }
    let any = false;
    for (const pid of pids) {
      try {
        const mask = /mask: ([0-9a-f]+)/.exec(execFileSync('taskset', ['-p', String(pid)], { encoding: 'utf8' }))?.[1];
        execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
        if (mask) masks.set(pid, mask);
        any = true;
      } catch {
        // exited meanwhile, or not ours to pin
      }
    }
    if (any) pinned.push(name);
  }
  return {
    pinned,
    restore() {
      for (const [pid, mask] of masks) {
        try {
          execFileSync('taskset', ['-a', '-p', mask, String(pid)], { stdio: 'ignore' });
        } catch {
          // gone
        }
      }
    },
  };
}

/**
 * How a production user runs wxbridge: the compiled build (`npm run build`, then
 * `node dist/main.js`) under plain node with these settings. The same values are in the
 * Dockerfile, `npm run start:prod` and README "Production"; test/build/production-build.test.ts
 * fails when they disagree. Why these values: README "Production" (measured with
 * `BENCH_ONLY=rss`).
 */
export const PRODUCTION_RUNTIME = {
  nodeFlags: ['--max-semi-space-size=8'],
  env: { MALLOC_ARENA_MAX: '2' },
} as const;

/**
 * The runtime of the production-shaped bridges: `dist` (default, as above) or `tsx` (the
 * source through tsx, as `npm start` runs it). For experiments, BENCH_NODE_FLAGS (space
 * separated; empty for none) and BENCH_MALLOC_ARENA_MAX (empty for glibc's default) replace
 * the production settings.
 */
export interface Runtime {
  kind: 'dist' | 'tsx';
  nodeFlags: string[];
  env: Record<string, string>;
}

export function benchRuntime(): Runtime {
  const kind = process.env.BENCH_RUNTIME === 'tsx' ? 'tsx' : 'dist';
  const flags = process.env.BENCH_NODE_FLAGS;
  const arena = process.env.BENCH_MALLOC_ARENA_MAX ?? PRODUCTION_RUNTIME.env.MALLOC_ARENA_MAX;
  return {
    kind,
    nodeFlags: flags === undefined ? [...PRODUCTION_RUNTIME.nodeFlags] : flags.split(/\s+/).filter(Boolean),
    env: arena ? { MALLOC_ARENA_MAX: arena } : {},
  };
}

export const describeRuntime = (r: Runtime): string =>
  `${r.kind === 'dist' ? 'node dist/main.js (compiled build)' : 'node --import tsx src/main.ts'}` +
  `${r.nodeFlags.length ? ` ${r.nodeFlags.join(' ')}` : ''}, MALLOC_ARENA_MAX=${r.env.MALLOC_ARENA_MAX ?? 'unset'}`;

/** node's arguments for a source entry (`src/main.ts`) in that runtime. */
export function entryArgs(r: Runtime, entry: string): string[] {
  if (r.kind === 'tsx') return [...r.nodeFlags, '--import', 'tsx', entry];
  ensureBuilt();
  return [...r.nodeFlags, entry.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js')];
}

let built = false;

/**
 * Runs `npm run build` once per bench run when dist/ is missing or older than a file in
 * src/. Without type checking (`--noCheck`: the same JavaScript, in seconds), as tsx runs
 * the source unchecked: a type error elsewhere in a work-in-progress tree is CI's to report,
 * not a reason to measure nothing.
 */
export function ensureBuilt(): void {
  if (built) return;
  const stamp = existsSync('dist/main.js') ? statSync('dist/main.js').mtimeMs : 0;
  if (newestMtime('src') > stamp) {
    console.error('[bench] dist/ is older than src/: npm run build -- --noCheck');
    execFileSync('npm', ['run', 'build', '--silent', '--', '--noCheck'], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  built = true;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (!e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

export interface Proc {
  child: ChildProcess;
  /** Peak resident set size in MB (VmHWM), read from /proc. */
  peakRssMb(): number | undefined;
  stop(): Promise<void>;
}

export function spawnPinned(cpu: number, args: string[], env: Record<string, string>): Proc {
  const cmd = hasTaskset ? 'taskset' : process.execPath;
  const argv = hasTaskset ? ['-c', String(cpu), process.execPath, ...args] : args;
  const child = spawn(cmd, argv, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && code !== 143) console.error(`[bench] process exited ${code}: ${err.slice(-2000)}`);
    else if (signal && !stopping) console.error(`[bench] ${args.join(' ')} was killed by ${signal}: ${err.slice(-500)}`);
  });
  return {
    child,
    peakRssMb() {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        return m ? Math.round(Number(m[1]) / 1024) : undefined;
      } catch {
        return undefined;
      }
    },
    stop: () =>
      new Promise((resolve) => {
        // A process that already ended (by itself or by a signal) emits no second 'exit'.
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        stopping = true;
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export async function waitForUrl(url: string, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up in ${timeoutMs} ms`);
}

/** Refuses to start a server where one already answers (a leftover of a killed run would be measured instead). */
export async function assertFree(url: string): Promise<void> {
  const answered = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
  if (answered) throw new Error(`something already answers at ${url}: stop it first`);
}

/** Waits for `url`, failing at once if the process exits first (a config error, a port in use). */
export async function waitUntilUp(proc: Proc, url: string): Promise<void> {
  let onExit: (() => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = () => reject(new Error(`the process for ${url} exited with ${proc.child.exitCode} before it was ready`));
    proc.child.once('exit', onExit);
  });
  try {
    await Promise.race([waitForUrl(url, 120_000), exited]);
  } finally {
    if (onExit) proc.child.off('exit', onExit);
  }
}
