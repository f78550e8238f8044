/**
 * WeChat's response conventions (wechat-protocol.md §0): HTTP 200 always; errors are
 * `{"errcode","errmsg"}` with a ` rid: …` suffix; query APIs answer their data without
 * `errcode`; action APIs answer `{"errcode":0,"errmsg":"ok"}`.
 */
import type { Context } from 'koa';
import { rid } from './ids.ts';

export const errmsgs: Record<number, string> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40003: 'invalid openid',
  40008: 'invalid message type',
  40013: 'invalid appid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40030: 'invalid refresh_token',
  40032: 'invalid openid list size',
  40037: 'invalid template_id',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40164: 'invalid ip, not in whitelist',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  41009: 'missing openid',
  42001: 'access_token expired',
  42002: 'refresh_token expired',
  43001: 'require GET method',
  43002: 'require POST method',
  43004: 'require subscribe',
  43019: 'require remove blacklist',
  43101: 'user refuse to accept the msg',
  44002: 'empty post data',
  44004: 'empty content',
  45008: 'article size out of limit',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit must slower retry next minute',
  45015: 'response out of time limit or subscription is canceled',
  45047: 'out of response count limit',
  45072: 'command field invalid',
  45080: 'has not sent message to user in the last 30 seconds',
  45081: 'already in typing status',
  47001: 'data format error',
  47003: 'argument invalid!',
  48001: 'api unauthorized',
  48002: 'api blocked',
};

/** Handlers note what they answered; the call log reads it. */
export interface CallMeta {
  appId?: string;
  errcode: number;
}

export function callMeta(ctx: Context): CallMeta {
  const state = ctx.state as { sandboxCall?: CallMeta };
  state.sandboxCall ??= { errcode: 0 };
  return state.sandboxCall;
}

function sendJsonText(ctx: Context, text: string): void {
  ctx.status = 200;
  // Observed header (§0); set before the body so Koa does not guess a type.
  ctx.set('Content-Type', 'application/json; encoding=utf-8');
  ctx.set('Cache-Control', 'no-store');
  ctx.body = text;
}

export function wxError(ctx: Context, errcode: number, errmsg?: string): void {
  callMeta(ctx).errcode = errcode;
  const msg = errmsg ?? errmsgs[errcode] ?? 'error';
  sendJsonText(ctx, JSON.stringify({ errcode, errmsg: `${msg} rid: ${rid()}` }));
}

/** Action APIs: `{"errcode":0,"errmsg":"ok", …extra}`. */
export function wxOk(ctx: Context, extra: Record<string, unknown> = {}): void {
  callMeta(ctx).errcode = 0;
  sendJsonText(ctx, JSON.stringify({ errcode: 0, errmsg: 'ok', ...extra }));
}

/** Query APIs: the data object alone, no `errcode`. */
export function wxData(ctx: Context, data: Record<string, unknown>): void {
  callMeta(ctx).errcode = 0;
  sendJsonText(ctx, JSON.stringify(data));
}

/** For bodies JSON.stringify cannot express, e.g. an int64 msgid as a bare number. */
export function wxRawJson(ctx: Context, jsonText: string): void {
  callMeta(ctx).errcode = 0;
  sendJsonText(ctx, jsonText);
}

/** A WeChat business error raised inside a service; routes turn it into `wxError`. */
export class WxFail extends Error {
  constructor(
    readonly errcode: number,
    readonly errmsg?: string,
  ) {
    super(errmsg ?? errmsgs[errcode] ?? String(errcode));
    this.name = 'WxFail';
  }
}

export function fail(errcode: number, errmsg?: string): never {
  throw new WxFail(errcode, errmsg);
}

/** Koa middleware for the WeChat API routers: WxFail → WeChat error body. */
export async function wxFailToResponse(ctx: Context, next: () => Promise<unknown>): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (err instanceof WxFail) wxError(ctx, err.errcode, err.errmsg);
    else throw err;
  }
}
