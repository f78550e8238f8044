/**
 * A closed-loop driver for multi-step browser flows: N virtual users, each with its own
 * cookie jar, following redirects by hand. Counts completed flows per second and the
 * latency of each whole flow.
 */
import { performance } from 'node:perf_hooks';

export class Jar {
  private cookies = new Map<string, string>();
  store(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      if (i > 0) this.cookies.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** GET (or POST) one URL with the jar; returns the response without following redirects. */
export async function step(jar: Jar, url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { cookie: jar.header(), ...(init.headers as Record<string, string>) } });
  jar.store(res);
  return res;
}

export function location(res: Response, base: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`expected a redirect, got ${res.status}`);
  return new URL(loc, base).toString();
}

export interface FlowResult {
  flowsPerSec: number;
  completed: number;
  failed: number;
  p50: number;
  p99: number;
  firstError?: string;
}

export interface DriveOptions {
  concurrency: number;
  durationSec: number;
  /**
   * Starts flows on a fixed schedule (flows/s) instead of back to back, still with at most
   * `concurrency` in flight: latency at a given load (SECURITY.md E: at 50 % of the maximum).
   */
  ratePerSec?: number;
}

export async function driveFlows(flow: () => Promise<void>, opts: DriveOptions): Promise<FlowResult> {
  const end = performance.now() + opts.durationSec * 1000;
  const times: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  let nextStart = t0;
  const interval = opts.ratePerSec ? 1000 / opts.ratePerSec : 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < end) {
        let s = performance.now();
        if (interval) {
          // Take the next slot of the schedule; a flow that starts late is timed from its slot,
          // so queueing behind a slow server shows in the latency (no coordinated omission).
          const slot = nextStart;
          nextStart += interval;
          if (slot >= end) break;
          if (slot > s) await new Promise((r) => setTimeout(r, slot - s));
          s = slot;
        }
        try {
          await flow();
          times.push(performance.now() - s);
        } catch (err) {
          failed++;
          // One line for the results table: an HTML error page's markup would break its row.
          firstError ??= (err as Error).message.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(times[Math.min(times.length - 1, Math.floor(times.length * p))] ?? 0);
  return { flowsPerSec: Math.round(times.length / elapsed), completed: times.length, failed, p50: pct(0.5), p99: pct(0.99), ...(firstError ? { firstError } : {}) };
}
