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
  child.on('exit', (code) => {
    if (code && code !== 0 && code !== 143) console.error(`[bench] process exited ${code}: ${err.slice(-2000)}`);
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
        if (child.exitCode !== null) return resolve();
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
