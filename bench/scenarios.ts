/**
 * The benchmark scenarios. Each returns null when the bridge does not serve what it
 * measures yet, so the harness reports it as skipped instead of failing.
 */
import { measure, type LoadResult } from './lib/load.ts';

export interface BenchContext {
  baseUrl: string;
  durationSec: number;
  databaseUrl: string;
  redisUrl: string;
}

export interface ScenarioResult {
  result?: LoadResult;
  custom?: Record<string, string | number>;
  note?: string;
}

export interface Scenario {
  id: string;
  name: string;
  run(ctx: BenchContext): Promise<ScenarioResult | null>;
}

const available = async (url: string, init?: RequestInit) => {
  try {
    return (await fetch(url, init)).status < 400;
  } catch {
    return false;
  }
};

const CARD_BACKEND = 'Basic ' + Buffer.from('card-backend:demo-card-backend-secret').toString('base64');

export const scenarios: Scenario[] = [
  {
    id: 'healthz',
    name: 'wxbridge GET /healthz (full middleware stack)',
    run: async (ctx) => ({ result: await measure({ url: `${ctx.baseUrl}/healthz`, durationSec: ctx.durationSec }) }),
  },
  {
    id: 'jwks',
    name: 'wxbridge GET /.well-known/jwks.json',
    async run(ctx) {
      const url = `${ctx.baseUrl}/.well-known/jwks.json`;
      if (!(await available(url))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec }) };
    },
  },
  {
    id: 'token',
    name: 'wxbridge POST /oauth2/token (client_credentials, ES256)',
    async run(ctx) {
      const url = `${ctx.baseUrl}/oauth2/token`;
      const init = {
        method: 'POST' as const,
        headers: { authorization: CARD_BACKEND, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=notices%3Asend',
      };
      if (!(await available(url, init))) return null;
      return { result: await measure({ url, durationSec: ctx.durationSec, ...init }) };
    },
  },
];
