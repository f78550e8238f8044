/**
 * Calls a merchant's intents endpoint (DESIGN.md "Intents"): a signed JSON POST
 * `{intent, text, account, binding_id, sub, location?}`, answered with
 * `{reply: {type: "text", content} | {type: "news", title, description, url, picUrl} | null}`.
 *
 * Signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
 * by the webhooks feature's signer, with the intents secret, or the merchant's webhook secret
 * when the intents block has none (same secret rules as webhooks). The webhook id is derived
 * from the push's de-duplication key, so a merchant can recognise a repeated call.
 * Bounded: the merchant's `timeoutMs`, no redirects followed (ASVS 15.3.2), a 16 KB answer cap.
 */
import { z } from 'zod';
import type { MerchantConfig } from '../config/index.ts';
import { BodyTooLargeError, readCappedText } from '../security/capped-body.ts';
import { digest } from '../store/keyspace.ts';
import { createSigner } from '../webhooks/signing.ts';
import { replySchema, type Reply } from './reply.ts';

export interface IntentCall {
  intent: string;
  text: string;
  account: string;
  binding_id: string;
  sub: string;
  location?: { latitude: number; longitude: number; precision?: number; at: string };
}

export type IntentFailure = 'unsigned' | 'timeout' | 'network' | 'status' | 'invalid';

export class IntentError extends Error {
  constructor(
    readonly reason: IntentFailure,
    readonly status?: number,
  ) {
    super(`intents endpoint: ${reason}${status ? ` (${status})` : ''}`);
    this.name = 'IntentError';
  }
}

export interface IntentsClient {
  /** The merchant's reply, or null when it has nothing to say. Throws IntentError. */
  call(merchant: MerchantConfig, body: IntentCall, dedupeKey: string): Promise<Reply | null>;
}

const MAX_ANSWER_BYTES = 16 * 1024;
const answerSchema = z.object({ reply: replySchema.nullable().optional() });

/** The answer's text, at most MAX_ANSWER_BYTES of it (src/security/capped-body.ts). */
async function readCapped(res: Response, limit: number): Promise<string> {
  try {
    return await readCappedText(res, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new IntentError('invalid', res.status);
    throw err;
  }
}

export function createIntentsClient(o: { fetch: typeof fetch; now: () => number }): IntentsClient {
  // Keyed by the (frozen) merchant config object, like the push ciphers: never a stale secret.
  const signers = new WeakMap<MerchantConfig, ReturnType<typeof createSigner>>();

  function signerFor(m: MerchantConfig): ReturnType<typeof createSigner> {
    let sign = signers.get(m);
    if (!sign) {
      const secret = m.intents?.secret ?? m.webhook?.secret;
      // Never call a merchant unsigned: it could not tell us from anyone else.
      if (!secret) throw new IntentError('unsigned');
      sign = createSigner(secret);
      signers.set(m, sign);
    }
    return sign;
  }

  return {
    async call(merchant, body, dedupeKey) {
      const intents = merchant.intents;
      if (!intents) throw new IntentError('invalid');
      const payload = JSON.stringify(body);
      const headers = signerFor(merchant)(`msg_${digest(dedupeKey)}`, new Date(o.now()), payload);
      // One deadline for the whole exchange, answer body included.
      const signal = AbortSignal.timeout(intents.timeoutMs);
      let res: Response;
      try {
        res = await o.fetch(intents.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: payload,
          redirect: 'manual',
          signal,
        });
      } catch {
        throw new IntentError(signal.aborted ? 'timeout' : 'network');
      }
      if (res.status === 204) return null;
      if (res.status < 200 || res.status >= 300) {
        await res.body?.cancel().catch(() => undefined);
        throw new IntentError('status', res.status);
      }
      let json: unknown;
      try {
        json = JSON.parse(await readCapped(res, MAX_ANSWER_BYTES));
      } catch (err) {
        if (err instanceof IntentError) throw err;
        throw new IntentError(signal.aborted ? 'timeout' : 'invalid', res.status);
      }
      const parsed = answerSchema.safeParse(json);
      if (!parsed.success) throw new IntentError('invalid', res.status);
      return parsed.data.reply ?? null;
    },
  };
}
