/**
 * Request bodies, read by hand so every endpoint states its cap (413 beyond it) and the
 * push handler gets the raw bytes it must verify before parsing (STYLE.md: raw body
 * before XML parsing). Form bodies keep repeated keys as arrays, so the OAuth endpoints
 * can refuse duplicated parameters (RFC 6749 §3.1).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { AppError } from './errors.ts';

export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  if (ctx.state.rawBody) return ctx.state.rawBody;
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new AppError('request.body_too_large', `request body over ${limit} bytes`);
  const body = await collect(ctx.req, limit).catch((err: unknown) => {
    // The rest of an oversized body is not read: close the connection after the 413.
    if (err instanceof AppError) ctx.set('Connection', 'close');
    throw err;
  });
  ctx.state.rawBody = body;
  return body;
}

/**
 * The body's bytes, by stream events rather than `for await` (an async iterator and a promise
 * per chunk were a visible share of a push's CPU, issue #9). A body of one chunk is returned
 * as is, without a copy.
 */
function collect(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new AppError('request.body_too_large', `request body over ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error('request aborted'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onAborted);
  });
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
