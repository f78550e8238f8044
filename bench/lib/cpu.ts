/**
 * CPU time of a process (user + system, all threads) from /proc, in ms. Divided by the
 * requests it served, it gives CPU µs per request: a figure a busy machine disturbs much
 * less than req/s, which a neighbour's load cuts directly.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux this runs on). */
const TICKS_PER_SEC = 100;

export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state; utime and stime are the 12th and 13th of those.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

/** CPU µs per request over a measured span, or undefined when either reading is missing. */
export function cpuUsPerRequest(before: number | undefined, after: number | undefined, requests: number): number | undefined {
  if (before === undefined || after === undefined || requests <= 0) return undefined;
  return Math.round(((after - before) * 1000) / requests);
}
