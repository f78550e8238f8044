/**
 * The `verify-api` protocol, wxbridge → merchant (DESIGN.md "Linking protocols"): a POST of
 * `{step, attempt, fields}` signed the Standard Webhooks way (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`),
 * answered by `verified` / `continue` (fields to render) / `rejected`. The answer is
 * untrusted input: zod-checked, bounded, rendered only through escaping templates. A
 * timeout, an HTTP error, a redirect or a malformed answer is "merchant unavailable".
 */
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { DependencyUnavailableError } from '../http/errors.ts';
import { readCappedText } from '../security/capped-body.ts';
import { randomId } from '../security/secrets.ts';
import { deadlineSignal } from '../store/deadline.ts';

const fieldSchema = z
  .object({
    // Field names become form input names: a small safe alphabet, never our own (`_csrf`, `proof`).
    name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/).refine((n) => n !== 'proof', 'reserved name'),
    label: z.string().min(1).max(100),
    type: z.enum(['text', 'tel', 'number', 'password']).default('text'),
    pattern: z.string().max(200).optional(),
  })
  .strip();

export const verifyResponseSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('verified'), account: z.object({ id: z.string().min(1).max(128), display: z.string().max(64).nullish() }).strip() }).strip(),
  z.object({ status: z.literal('continue'), fields: z.array(fieldSchema).min(1).max(6), message: z.string().max(300).optional() }).strip(),
  z.object({ status: z.literal('rejected'), message: z.string().max(300).optional() }).strip(),
]);

export type VerifyResponse = z.infer<typeof verifyResponseSchema>;
export type VerifyField = z.infer<typeof fieldSchema>;

export interface VerifyEndpoint {
  url: string;
  secret: string;
  timeoutMs: number;
}

export interface VerifyRequest {
  step: 'start' | 'continue';
  attempt: string;
  fields: Record<string, string>;
}

/** In bytes; checked while reading, so a larger answer is never buffered whole. */
const MAX_ANSWER_BYTES = 16 * 1024;

/** A `whsec_`-prefixed secret is base64 (the Standard Webhooks form); anything else is used as raw bytes. */
export function webhookSigner(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(new Uint8Array(Buffer.from(secret, 'utf8')), { format: 'raw' });
}

export function signedHeaders(secret: string, body: string, now: Date): Record<string, string> {
  const id = `msg_${randomId(16)}`;
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': webhookSigner(secret).sign(id, now, body),
  };
}

export async function callVerifyApi(fetchFn: typeof fetch, endpoint: VerifyEndpoint, req: VerifyRequest, now: Date): Promise<VerifyResponse> {
  const body = JSON.stringify(req);
  // An answer that arrived while our event loop was stalled still counts (store/deadline.ts).
  const deadline = deadlineSignal(endpoint.timeoutMs);
  let text: string;
  try {
    const res = await fetchFn(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...signedHeaders(endpoint.secret, body, now) },
      body,
      // A merchant answer that redirects is not an answer (ASVS 15.3.2).
      redirect: 'manual',
      signal: deadline.signal,
    });
    if (res.status !== 200) {
      // Not an answer: let the connection go rather than read whatever came with it.
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`verify API answered HTTP ${res.status}`);
    }
    // Read within the deadline and at most MAX_ANSWER_BYTES of it (security/capped-body.ts).
    text = await readCappedText(res, MAX_ANSWER_BYTES);
  } catch (err) {
    throw new DependencyUnavailableError('merchant', err);
  } finally {
    deadline.done();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DependencyUnavailableError('merchant', err);
  }
  const parsed = verifyResponseSchema.safeParse(json);
  if (!parsed.success) throw new DependencyUnavailableError('merchant', new Error('verify API answer does not match the protocol'));
  return parsed.data;
}
