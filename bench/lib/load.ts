/**
 * Load with autocannon: the maximum sustained rate, then latency at half of it
 * (SECURITY.md E measurement rules).
 */
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Per-request body/headers, e.g. a unique MsgId per push. */
  setupRequest?: (req: { method?: string; path?: string; headers?: Record<string, string>; body?: string }) => object;
  connections?: number;
  durationSec: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  p99AtHalf?: number;
  non2xx: number;
  errors: number;
  /** Every request sent by `measure`: warm-up, maximum and half-load runs (for CPU per request). */
  requests?: number;
}

function run(spec: LoadSpec, overallRate?: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: spec.url,
        method: spec.method ?? 'GET',
        headers: spec.headers,
        body: spec.body,
        connections: spec.connections ?? 32,
        duration: spec.durationSec,
        ...(overallRate ? { overallRate } : {}),
        ...(spec.setupRequest ? { requests: [{ setupRequest: spec.setupRequest as never }] } : {}),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

export async function measure(spec: LoadSpec, opts: { halfLoad?: boolean } = {}): Promise<LoadResult> {
  const warm = await run({ ...spec, durationSec: Math.min(3, spec.durationSec) });
  const max = await run(spec);
  const out: LoadResult = {
    rps: Math.round(max.requests.average),
    p50: max.latency.p50,
    p99: max.latency.p99,
    non2xx: max.non2xx,
    errors: max.errors,
    requests: warm.requests.total + max.requests.total,
  };
  if (opts.halfLoad !== false && out.rps > 0) {
    const half = await run(spec, Math.max(1, Math.round(out.rps / 2)));
    out.p99AtHalf = half.latency.p99;
    out.requests = (out.requests ?? 0) + half.requests.total;
  }
  return out;
}
