/**
 * Prometheus metrics on a registry owned by the app instance (no global default
 * registry: tests run several apps in one process).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: number[]): Histogram<L>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'wxbridge_' });
  const counters = new Map<string, Counter<string>>();
  const histograms = new Map<string, Histogram<string>>();
  return {
    registry,
    httpDuration: new Histogram({
      name: 'wxbridge_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    counter<L extends string>(name: string, help: string, labelNames: readonly L[]) {
      let c = counters.get(name);
      if (!c) {
        c = new Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
        counters.set(name, c);
      }
      return c as Counter<L>;
    },
    histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: number[]) {
      let h = histograms.get(name);
      if (!h) {
        h = new Histogram({ name, help, labelNames: [...labelNames], registers: [registry], ...(buckets ? { buckets } : {}) });
        histograms.set(name, h);
      }
      return h as Histogram<L>;
    },
  };
}
