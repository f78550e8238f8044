/**
 * One way to call a WeChat server API (wechat-protocol.md §0): a timeout on every call,
 * errcode → WeChatApiError, every success body through zod, int64-safe JSON, and logs that
 * never carry a query string (it holds secrets, codes and tokens).
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import { WeChatApiError, WeChatTransportError } from './errors.ts';

/** What the transport must answer: a fetch Response, or the little of it that is read (http-agent.ts). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Pick<Response, 'status' | 'text'>>;

export interface WeChatRequest<T> {
  method: 'GET' | 'POST';
  /** Path under the base URL, e.g. `/cgi-bin/user/info`; also the `endpoint` of errors. */
  path: string;
  query?: Record<string, string | undefined>;
  /** Secret values sent in this request (secret, code, token): redacted if WeChat echoes them. */
  secrets?: readonly (string | undefined)[];
  body?: unknown;
  schema: z.ZodType<T>;
  /** Repeating the call is harmless: failures after sending are then not ambiguous. */
  idempotent: boolean;
}

export interface WeChatHttp {
  call<T>(req: WeChatRequest<T>): Promise<T>;
}

export interface WeChatHttpOptions {
  baseUrl: string;
  fetch?: FetchLike | undefined;
  timeoutMs?: number | undefined;
  logger: Logger;
}

// Errors raised before any byte left this host: the request certainly did not reach WeChat.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export function createWeChatHttp(opts: WeChatHttpOptions): WeChatHttp {
  const fetchFn: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const base = opts.baseUrl.replace(/\/+$/, '');
  const log = opts.logger;

  async function call<T>(req: WeChatRequest<T>): Promise<T> {
    const endpoint = req.path;
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) qs.append(k, v);
    const url = `${base}${req.path}${qs.size ? `?${qs.toString()}` : ''}`;
    const ambiguousIfSent = !req.idempotent;
    const started = performance.now();

    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The race makes the deadline hold even for a fetch that ignores its signal.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new Error('timeout'));
      }, timeoutMs);
    });
    let status = 0;
    let text: string;
    try {
      const init: RequestInit = { method: req.method, signal: ac.signal, headers: { accept: 'application/json' } };
      if (req.body !== undefined) {
        // JSON.stringify keeps non-ASCII raw (UTF-8), as WeChat requires (40033 otherwise).
        init.body = JSON.stringify(req.body);
        init.headers = { ...init.headers, 'content-type': 'application/json; charset=utf-8' };
      }
      const exchange = (async () => {
        const res = await fetchFn(url, init);
        return { status: res.status, text: await res.text() };
      })();
      exchange.catch(() => {}); // settled by the race; a late rejection is not unhandled
      ({ status, text } = await Promise.race([exchange, deadline]));
    } catch (err) {
      const timedOut = ac.signal.aborted;
      const notSent = !timedOut && errorCodes(err).some((c) => NOT_SENT_CODES.has(c));
      // No `cause`: a fetch error can quote the URL, and the URL holds secrets. Codes suffice.
      const e = new WeChatTransportError(timedOut ? 'timeout' : 'network', endpoint, ambiguousIfSent && !notSent, {
        detail: timedOut ? `no answer within ${timeoutMs} ms` : errorCodes(err).join(',') || errorName(err),
      });
      log.warn({ endpoint, reason: e.reason, ambiguous: e.ambiguous, ms: ms(started) }, 'wechat call failed');
      throw e;
    } finally {
      clearTimeout(timer);
    }

    if (status < 200 || status > 299) {
      log.warn({ endpoint, status, ms: ms(started) }, 'wechat call failed');
      // A 4xx means the request was refused as a whole; a 5xx may come after WeChat acted.
      throw new WeChatTransportError('http_status', endpoint, ambiguousIfSent && status >= 500, { status });
    }

    let parsed: unknown;
    try {
      parsed = parseJsonLossless(text);
    } catch {
      log.warn({ endpoint, status, ms: ms(started) }, 'wechat answered with non-JSON');
      throw new WeChatTransportError('non_json', endpoint, ambiguousIfSent, { status });
    }

    const errcode = readErrcode(parsed);
    if (errcode !== undefined && errcode !== 0) {
      const raw = (parsed as { errmsg?: unknown }).errmsg;
      const errmsg = redact(typeof raw === 'string' ? raw : '', req.secrets ?? []);
      log.info({ endpoint, errcode, ms: ms(started) }, 'wechat errcode');
      throw new WeChatApiError(errcode, errmsg, endpoint);
    }

    const result = req.schema.safeParse(parsed);
    if (!result.success) {
      // Only paths and messages of the issues: the body itself may hold a token.
      const where = result.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ');
      log.warn({ endpoint, ms: ms(started), issues: where }, 'wechat body failed validation');
      throw new WeChatTransportError('invalid_payload', endpoint, ambiguousIfSent, { detail: where });
    }
    log.debug({ endpoint, ms: ms(started) }, 'wechat call ok');
    return result.data;
  }

  return { call };
}

const ms = (started: number): number => Math.round(performance.now() - started);

function readErrcode(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null || !('errcode' in body)) return undefined;
  const v = (body as { errcode: unknown }).errcode;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

const errorName = (err: unknown): string => (err instanceof Error ? err.name : typeof err);

function errorCodes(err: unknown): string[] {
  const out: string[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || depth > 3) return;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
    visit((e as { cause?: unknown }).cause, depth + 1);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const x of errors) visit(x, depth + 1);
  };
  visit(err, 0);
  return out;
}

function redact(errmsg: string, secrets: readonly (string | undefined)[]): string {
  let out = errmsg;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out.length > 500 ? `${out.slice(0, 500)}…` : out;
}

/**
 * JSON.parse that keeps integers beyond 2^53 exact by turning them into strings before
 * parsing (template `msgid` is an int64, §4.1). Numbers inside string literals are left alone.
 * Safe integers and all non-integers stay numbers.
 */
export function parseJsonLossless(text: string): unknown {
  // 16+ consecutive digits is the only way to write an unsafe integer.
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip a string literal, honouring escapes
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === 0x22) {
          i++;
          break;
        } else i++;
      }
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const start = i++;
      while (i < n && /[0-9.eE+-]/.test(text[i] as string)) i++;
      const token = text.slice(start, i);
      if (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += `${text.slice(last, start)}"${token}"`;
        last = i;
      }
      continue;
    }
    i++;
  }
  return JSON.parse(out + text.slice(last));
}

export interface BackoffOptions {
  /** Total attempts including the first. */
  attempts: number;
  baseMs: number;
  capMs: number;
  sleep?: ((ms: number) => Promise<void>) | undefined;
  random?: (() => number) | undefined;
}

export const defaultSleep = (delayMs: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, delayMs));

/**
 * Retries `fn` while `shouldRetry(err)` holds, sleeping full-jitter delays
 * `random(0, min(cap, base·2^attempt))` in between (SECURITY.md D4).
 */
export async function withBackoff<T>(
  fn: () => Promise<T>,
  shouldRetry: (err: unknown) => boolean,
  opts: BackoffOptions,
): Promise<T> {
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= opts.attempts || !shouldRetry(err)) throw err;
      await sleep(Math.floor(random() * Math.min(opts.capMs, opts.baseMs * 2 ** attempt)));
    }
  }
}

/** Full-jitter retry on errcode -1 only. */
export const isBusy = (err: unknown): boolean => err instanceof WeChatApiError && err.kind === 'busy';
