/**
 * Processes under test, each pinned to one core with taskset (SECURITY.md E: the bridge
 * on one core, the load generator on the other), and their peak memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const hasTaskset = existsSync('/usr/bin/taskset');

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
