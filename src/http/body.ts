/**
 * Request bodies, read by hand so every endpoint states its cap (413 beyond it) and the
 * push handler gets the raw bytes it must verify before parsing (STYLE.md: raw body
 * before XML parsing). Form bodies keep repeated keys as arrays, so the OAuth endpoints
 * can refuse duplicated parameters (RFC 6749 §3.1).
 */
import type { Context } from 'koa';
import { AppError } from './errors.ts';

export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  if (ctx.state.rawBody) return ctx.state.rawBody;
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new AppError('request.body_too_large', `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      // Stop reading; the connection closes after the 413 is written.
      ctx.req.unpipe?.();
      throw new AppError('request.body_too_large', `request body over ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  ctx.state.rawBody = body;
  return body;
}

export type FormBody = Record<string, string | string[]>;

export function parseForm(text: string): FormBody {
  const out: FormBody = Object.create(null) as FormBody;
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else out[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** JSON or urlencoded by Content-Type; anything else is 415. An empty body is `{}`. */
export async function readBody(ctx: Context, limit = 64 * 1024): Promise<unknown> {
  const raw = await readRawBody(ctx, limit);
  if (raw.length === 0) return {};
  const type = ctx.request.type;
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      const v: unknown = JSON.parse(raw.toString('utf8'));
      return v;
    } catch {
      throw new AppError('request.invalid', 'body is not valid JSON');
    }
  }
  if (type === 'application/x-www-form-urlencoded') return parseForm(raw.toString('utf8'));
  throw new AppError('request.unsupported_media_type', 'use application/json or application/x-www-form-urlencoded');
}
