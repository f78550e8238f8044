/**
 * The multi-step `verify-api` proof (DESIGN.md "Linking protocols"), transport-free.
 * A proof is a Kv record bound to the user's identity; each step takes it with GETDEL and
 * puts it back only when the merchant says `continue`, so a double submit cannot run a
 * step twice. Failed attempts are counted per user and per account (the account is known
 * only as a keyed hash of the first step's answers) and cut off at `maxFailedAttempts` an
 * hour; each call to the merchant first reserves its try on both counters (attempt-limit.ts),
 * so parallel submissions cannot pass the check together. What the user typed goes to the
 * merchant and nowhere else: not stored, not logged.
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
import { attemptCounter, reserveAttempt } from './attempt-limit.ts';
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

/**
 * One account however it is typed: the merchant normalises a card number written with spaces,
 * dashes or dots, full-width digits or lower-case letters to the same account, so the key of
 * the per-account failure counter must too, or re-formatting the input resets the counter.
 * Invisible format characters (zero-width space, soft hyphen) go too. Two inputs sharing a
 * key only makes the counter stricter, so erring towards folding is the safe side.
 */
export function normalizeAccountValue(v: string): string {
  return v.normalize('NFKC').replace(/[\s\p{Pd}.\p{Cf}]/gu, '').toUpperCase();
}

/** The keyed hash that stands for the account named by the first step's answers. */
export function accountKeyOf(key: Buffer, values: Record<string, string>): string {
  const normalized = Object.fromEntries(Object.entries(values).map(([name, v]) => [name, normalizeAccountValue(v)]));
  return hmacSha256(key, canonicalJson(normalized));
}

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
  const countersOf = (proof: Proof) => [
    attemptCounter('verify-user', `${proof.merchantId}:${proof.identityId}`),
    ...(proof.accountKey ? [attemptCounter('verify-account', `${proof.merchantId}:${proof.accountKey}`)] : []),
  ];
  const reserve = (proof: Proof, max: number) => reserveAttempt(deps.kv, countersOf(proof), max, MERCHANT_QUEUE_MS);

  /** Audits a failed proof; its try is already counted (a reservation kept). */
  async function failed(proof: Proof, reason: string, message: string): Promise<VerifyStep> {
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
    // The try is counted before the merchant sees it (ASVS 5.0 15.4.2): checking the counters
    // and counting only after a rejection let 15 parallel guesses through a limit of 5.
    const reservation = await reserve(proof, method.maxFailedAttempts);
    if (!reservation) return { kind: 'too_many', next: proof.next };
    const gate = bulkheadOf(proof.merchantId);
    // No turn at the merchant (the bulkhead is full): the guess went nowhere, so it is no try.
    await gate.acquire().catch(async (err: unknown) => {
      await reservation.giveBack();
      throw err;
    });
    let answer;
    try {
      answer = await callVerifyApi(deps.fetch, method, { step, attempt: proof.attempt, fields: values }, new Date(deps.now()));
    } catch (err) {
      // No answer (a timeout, a bad reply) tells the user nothing about the guess, so it is no
      // failure either: a slow or failing merchant must not lock its users' accounts for an hour.
      await reservation.giveBack();
      throw err;
    } finally {
      gate.release();
    }
    if (answer.status === 'rejected') {
      await reservation.keep();
      return failed(proof, 'rejected', answer.message ?? '');
    }
    await reservation.giveBack();
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
      const { m } = endpointOf(p.merchantId);
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
        if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_VALUE) {
          // Never reaches the merchant, but still a failed try (a reservation kept at once).
          const reservation = await reserve(proof, method.maxFailedAttempts);
          if (!reservation) return { kind: 'too_many', next: proof.next };
          await reservation.keep();
          return failed(proof, 'invalid_input', '');
        }
        values[f.name] = v.trim();
      }
      // The first answers name the account (e.g. the card number): count failures against it too.
      if (!proof.accountKey) proof.accountKey = accountKeyOf(deps.accountKey, values);
      return advance(proof, 'continue', values);
    },
  };
}
