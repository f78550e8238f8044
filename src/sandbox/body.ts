/**
 * Request bodies for the sandbox. It reads the raw stream itself (no body-parser
 * dependency), so it must be mounted before any body parser of a host app.
 */
import type { Context } from 'koa';

const LIMIT_BYTES = 1024 * 1024;

export class BodyTooLargeError extends Error {
  constructor() {
    super('request body too large');
    this.name = 'BodyTooLargeError';
  }
}

/**
 * The raw body, read once and kept on the context: the fault middleware may peek at it
 * (to learn the appid of a stable_token call) before the handler reads it.
 */
export async function readRawBody(ctx: Context, limit = LIMIT_BYTES): Promise<string> {
  const st = ctx.state as { sandboxRawBody?: string };
  if (st.sandboxRawBody !== undefined) return st.sandboxRawBody;
  st.sandboxRawBody = await readStream(ctx, limit);
  return st.sandboxRawBody;
}

async function readStream(ctx: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export type JsonBody = { ok: true; value: unknown } | { ok: false; empty: boolean };

/** WeChat APIs: an empty body is 44002, unparsable JSON is 47001 (§0). */
export async function readJsonBody(ctx: Context): Promise<JsonBody> {
  const raw = await readRawBody(ctx);
  if (raw.trim() === '') return { ok: false, empty: true };
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, empty: false };
  }
}

/** HTML forms (application/x-www-form-urlencoded). */
export async function readFormBody(ctx: Context): Promise<Record<string, string>> {
  const raw = await readRawBody(ctx, 64 * 1024);
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}
