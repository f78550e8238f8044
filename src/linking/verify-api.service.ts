/**
 * The multi-step `verify-api` proof (DESIGN.md "Linking protocols"), transport-free.
 * A proof is a Kv record bound to the user's identity; each step takes it with GETDEL and
 * puts it back only when the merchant says `continue`, so a double submit cannot run a
 * step twice. Failed attempts are counted per user and per account (the account is known
 * only as a keyed hash of the first step's answers) and cut off at `maxFailedAttempts` an
 * hour. What the user typed goes to the merchant and nowhere else: not stored, not logged.
 *
 * Calls to one merchant's verify API go through a bulkhead: at most MERCHANT_CALLS at a
 * time, the rest queue (up to MERCHANT_QUEUE_MS). A burst of users finishing at once (200
 * in test/linking/concurrency.test.ts) then waits here instead of inside the merchant's
 * timeout, where the merchant, swamped, answered too late for a third of them (503).
 */
import { z } from 'zod';
import type { MerchantConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { hmacSha256, randomId } from '../security/secrets.ts';
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { createPoolGate, type PoolGate } from '../store/pool-gate.ts';
import type { BindingsService } from './bindings.service.ts';
import { canonicalJson } from './audit-chain.ts';
import { parseStored } from '../store/rows.ts';
import type { LinkResult } from './types.ts';
import { callVerifyApi, type VerifyField } from './verify-api.connector.ts';

const proofSchema = z.object({
  kind: z.literal('verify-api'),
  merchantId: z.string(),
  identityId: z.string(),
  attempt: z.string(),
  step: z.number().int(),
  fields: z.array(z.object({ name: z.string(), label: z.string(), type: z.enum(['text', 'tel', 'number', 'password']), pattern: z.string().optional() })),
  message: z.string().optional(),
  accountKey: z.string().optional(),
  next: z.string().nullable(),
});
type Proof = z.infer<typeof proofSchema>;

export type VerifyStep =
  | { kind: 'fields'; proofId: string; fields: VerifyField[]; message?: string; next: string | null }
  | { kind: 'done'; result: LinkResult; next: string | null }
  | { kind: 'rejected'; message: string; next: string | null }
  | { kind: 'too_many'; next: string | null }
  | { kind: 'expired' };

export interface VerifyApiDeps {
  kv: Kv;
  fetch: typeof fetch;
  merchant: (id: string) => MerchantConfig | undefined;
  bindings: BindingsService;
  /** Keys the per-account failure counter; never stored with what it hashes. */
  accountKey: Buffer;
  now: () => number;
}

export interface VerifyApiService {
  begin(p: { merchantId: string; identityId: string; next: string | null }): Promise<VerifyStep>;
  submit(p: { merchantId: string; identityId: string; proofId: string; values: Record<string, unknown> }): Promise<VerifyStep>;
}

const MAX_VALUE = 128;
/** Calls in flight to one merchant's verify API, and how long a call may queue for a turn. */
const MERCHANT_CALLS = 16;
const MERCHANT_QUEUE_MS = 10_000;

export function createVerifyApiService(deps: VerifyApiDeps): VerifyApiService {
  const bulkheads = new Map<string, PoolGate>();
  const bulkheadOf = (merchantId: string): PoolGate => {
    let gate = bulkheads.get(merchantId);
    if (!gate) {
      gate = createPoolGate({ max: MERCHANT_CALLS, waitMs: MERCHANT_QUEUE_MS, maxWaiting: 1000, dependency: 'merchant', what: 'turn to call the verify API' });
      bulkheads.set(merchantId, gate);
    }
    return gate;
  };

  function endpointOf(merchantId: string) {
    const m = deps.merchant(merchantId);
    const method = m?.linking.find((l) => l.type === 'verify-api');
    if (!m || !method || method.type !== 'verify-api') throw new AppError('linking.not_found');
    return { m, method };
  }
  const userCounter = (merchantId: string, identityId: string) => keyspace.linking.attempts('verify-user', `${merchantId}:${identityId}`);
  const accountCounter = (merchantId: string, key: string) => keyspace.linking.attempts('verify-account', `${merchantId}:${key}`);
  const count = async (key: string) => Number((await deps.kv.get(key)) ?? 0);

  async function failed(proof: Proof, reason: string, message: string): Promise<VerifyStep> {
    await deps.kv.incr(userCounter(proof.merchantId, proof.identityId), ttl.proofFailures);
    if (proof.accountKey) await deps.kv.incr(accountCounter(proof.merchantId, proof.accountKey), ttl.proofFailures);
    await deps.bindings.audit({
      actor: `user:${proof.identityId}`,
      action: 'proof.failed',
      merchantId: proof.merchantId,
      identityId: proof.identityId,
      source: 'web',
      detail: { proof: 'verify-api', reason, step: proof.step },
    });
    return { kind: 'rejected', message, next: proof.next };
  }

  async function advance(proof: Proof, step: 'start' | 'continue', values: Record<string, string>): Promise<VerifyStep> {
    const { method } = endpointOf(proof.merchantId);
    const gate = bulkheadOf(proof.merchantId);
    await gate.acquire();
    let answer;
    try {
      answer = await callVerifyApi(deps.fetch, method, { step, attempt: proof.attempt, fields: values }, new Date(deps.now()));
    } finally {
      gate.release();
    }
    if (answer.status === 'rejected') return failed(proof, 'rejected', answer.message ?? '');
    if (answer.status === 'verified') {
      const result = await deps.bindings.link({
        merchantId: proof.merchantId,
        identityId: proof.identityId,
        account: { id: answer.account.id, display: answer.account.display ?? null },
        proof: 'verify-api',
        actor: `user:${proof.identityId}`,
        source: 'web',
      });
      return { kind: 'done', result, next: proof.next };
    }
    const proofId = randomId(24);
    const stored: Proof = { ...proof, step: proof.step + 1, fields: answer.fields, message: answer.message };
    await deps.kv.set(keyspace.linking.proof(proofId), JSON.stringify(stored), ttl.proof);
    return { kind: 'fields', proofId, fields: answer.fields, message: answer.message, next: proof.next };
  }

  return {
    async begin(p) {
      const { m, method } = endpointOf(p.merchantId);
      if ((await count(userCounter(m.id, p.identityId))) >= method.maxFailedAttempts) return { kind: 'too_many', next: p.next };
      const proof: Proof = { kind: 'verify-api', merchantId: m.id, identityId: p.identityId, attempt: randomId(16), step: 0, fields: [], next: p.next };
      return advance(proof, 'start', {});
    },

    async submit(p) {
      if (!/^[A-Za-z0-9_-]{32}$/.test(p.proofId)) return { kind: 'expired' };
      const proof = parseStored(proofSchema, await deps.kv.getDel(keyspace.linking.proof(p.proofId)));
      // Another user's (or another merchant's) proof id is as good as none.
      if (!proof || proof.identityId !== p.identityId || proof.merchantId !== p.merchantId) return { kind: 'expired' };
      const { method } = endpointOf(proof.merchantId);
      const values: Record<string, string> = {};
      for (const f of proof.fields) {
        const v = p.values[f.name];
        if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_VALUE) return failed(proof, 'invalid_input', '');
        values[f.name] = v.trim();
      }
      // The first answers name the account (e.g. the card number): count failures against it too.
      if (!proof.accountKey) proof.accountKey = hmacSha256(deps.accountKey, canonicalJson(values));
      if (
        (await count(userCounter(proof.merchantId, proof.identityId))) >= method.maxFailedAttempts ||
        (await count(accountCounter(proof.merchantId, proof.accountKey))) >= method.maxFailedAttempts
      )
        return { kind: 'too_many', next: proof.next };
      return advance(proof, 'continue', values);
    },
  };
}
