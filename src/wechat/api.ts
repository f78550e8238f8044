/**
 * The official-account server API (wechat-protocol.md §0, §3, §4, §7, §8), over tokens owned by
 * the access-token manager. Every call puts `access_token` in the query string, sends JSON raw
 * UTF-8, validates the answer with zod and classifies errcodes.
 *
 * Retries (SECURITY.md D2, D4):
 * - token_invalid (40001/40014/42001): `tokens.refresh(appId, usedToken)`, then one retry. The
 *   request was refused, so this is safe even for sends.
 * - -1: capped full-jitter backoff, for idempotent reads only. Sends surface it (kind 'busy').
 * - timeouts and other transport failures are never retried here; for sends they come out as
 *   `WeChatTransportError{ambiguous: true}` for the outbox to reconcile.
 */
import type { Logger } from 'pino';
import { WeChatApiError } from './errors.ts';
import { createWeChatHttp, isBusy, withBackoff, type FetchLike, type WeChatRequest } from './http.ts';
import { createMessagesApi, type MessagesApi } from './api-messages.ts';
import { createQrCodeApi, type QrCodeApi } from './api-qrcode.ts';
import { createUsersApi, type UsersApi } from './api-users.ts';

export interface TokenSource {
  get(appId: string): Promise<string>;
  refresh(appId: string, badToken?: string): Promise<string>;
}

export interface WeChatApiOptions {
  tokens: TokenSource;
  fetch?: FetchLike;
  /** `https://api.weixin.qq.com` in production. */
  apiBaseUrl: string;
  /** Where QR ticket images are shown (default `https://mp.weixin.qq.com`). */
  qrImageBaseUrl?: string;
  timeoutMs?: number;
  logger: Logger;
  /** Attempts of an idempotent read on -1 (default 3). */
  busyAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export type AppRequest<T> = Omit<WeChatRequest<T>, 'secrets'>;

/** Calls one API of one official account with its current token. */
export type AppCall = <T>(appId: string, req: AppRequest<T>) => Promise<T>;

export type WeChatApi = MessagesApi & UsersApi & QrCodeApi;

export function createWeChatApi(opts: WeChatApiOptions): WeChatApi {
  const log = opts.logger.child({ component: 'wechat.api' });
  const http = createWeChatHttp({ baseUrl: opts.apiBaseUrl, fetch: opts.fetch, timeoutMs: opts.timeoutMs, logger: log });
  const busyAttempts = opts.busyAttempts ?? 3;

  const call: AppCall = async <T>(appId: string, req: AppRequest<T>): Promise<T> => {
    let token = await opts.tokens.get(appId);
    let refreshed = false;
    const once = async (): Promise<T> => {
      for (;;) {
        try {
          return await http.call({ ...req, query: { access_token: token, ...req.query }, secrets: [token] });
        } catch (err) {
          if (refreshed || !(err instanceof WeChatApiError) || err.kind !== 'token_invalid') throw err;
          refreshed = true;
          log.info({ appId, endpoint: req.path, errcode: err.errcode }, 'token rejected; refreshing once');
          token = await opts.tokens.refresh(appId, token);
        }
      }
    };
    if (!req.idempotent) return once();
    return withBackoff(once, isBusy, {
      attempts: busyAttempts,
      baseMs: 200,
      capMs: 5_000,
      sleep: opts.sleep,
      random: opts.random,
    });
  };

  return {
    ...createMessagesApi(call),
    ...createUsersApi(call),
    ...createQrCodeApi(call, opts.qrImageBaseUrl ?? 'https://mp.weixin.qq.com'),
  };
}
