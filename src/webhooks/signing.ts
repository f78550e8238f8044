/**
 * Standard Webhooks signatures (DESIGN.md "Webhooks"): `webhook-id`, `webhook-timestamp` and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`, made by the maintained
 * `standardwebhooks` implementation rather than by hand, so merchants can verify with any
 * Standard Webhooks library.
 *
 * The merchant's configured secret: a `whsec_<base64>` secret (the scheme's own format) is
 * decoded as the scheme says; any other string is used as its UTF-8 bytes, so operators can
 * keep the secrets they already have. Merchants verify with the same rule.
 */
import { Webhook } from 'standardwebhooks';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function webhookKey(secret: string): Uint8Array {
  return secret.startsWith('whsec_') ? new Uint8Array(Buffer.from(secret.slice(6), 'base64')) : new Uint8Array(Buffer.from(secret, 'utf8'));
}

/** A signer for one secret; build it once per merchant. */
export function createSigner(secret: string): (id: string, at: Date, body: string) => SignedHeaders {
  const wh = new Webhook(webhookKey(secret), { format: 'raw' });
  return (id, at, body) => ({
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': wh.sign(id, at, body),
  });
}

/** Verifies a signed request as a merchant would (tests, the demo merchant); throws if it does not verify. */
export function verifySigned(secret: string, body: string, headers: Record<string, string>): unknown {
  return new Webhook(webhookKey(secret), { format: 'raw' }).verify(body, headers);
}
