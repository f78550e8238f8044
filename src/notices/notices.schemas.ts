/**
 * zod at the notices feature's trust boundaries (STYLE.md rule 3): the merchant API body,
 * the Idempotency-Key header, the merchant identity the auth middleware hands over, and the
 * TEMPLATESENDJOBFINISH report the inbox passes on.
 */
import { z } from 'zod';

const httpUrl = z
  .url()
  .max(1024)
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const recipientSchema = z.union([
  z.object({ account: z.string().min(1).max(128) }).strict(),
  z.object({ binding: z.uuid() }).strict(),
  z.object({ sub: z.string().min(1).max(128) }).strict(),
  z.object({ tag: z.string().min(1).max(64) }).strict(),
  z.object({ segment: z.enum(['all', 'subscribed']) }).strict(),
]);

export const createNoticeSchema = z
  .object({
    to: recipientSchema,
    /** A template name of the merchant's config (`notices.templates`). */
    template: z.string().min(1).max(64).optional(),
    /** Values the template's fields map from; strings or numbers, no nesting. */
    data: z
      .record(z.string().regex(/^[A-Za-z0-9_]{1,32}$/, 'keys are 1–32 letters, digits or _'), z.union([z.string().max(200), z.number().finite()]))
      .refine((d) => Object.keys(d).length <= 20, 'at most 20 fields')
      .default({}),
    url: httpUrl.optional(),
    channel: z.enum(['auto', 'template', 'customer-service']).default('auto'),
    /** The customer-service message text. */
    text: z.string().min(1).max(600).optional(),
  })
  .strict();

/** Printable ASCII, as Stripe and the IETF draft allow; long enough for a UUID or a hash. */
export const idempotencyKeySchema = z
  .string({ error: 'the Idempotency-Key header is required' })
  .regex(/^[\x21-\x7e]{1,255}$/, 'the Idempotency-Key header must be 1–255 printable ASCII characters');

export const merchantAuthSchema = z.object({
  merchantId: z.string().min(1),
  clientId: z.string().min(1),
  scopes: z.array(z.string()),
});

export const noticeQuerySchema = z
  .object({
    after: z.uuid().optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(200),
  })
  .strict();

export const templateJobSchema = z.object({
  appId: z.string().min(1),
  /** int64 as a decimal string (wechat-protocol.md §4.2 `MsgID`). */
  msgId: z.string().regex(/^\d{1,20}$/),
  status: z.string().min(1).max(200),
  openid: z.string().min(1),
});
