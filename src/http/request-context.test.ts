import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa from 'koa';
import { pino, type Logger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { requestContext } from './request-context.ts';

function contextFor(url: string, headers: Record<string, string> = {}) {
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = url;
  req.headers = headers;
  return new Koa().createContext(req, new ServerResponse(req));
}

function spiedLogger(level = 'warn'): { log: Logger; child: ReturnType<typeof vi.spyOn> } {
  const log = pino({ level, enabled: true }, { write: () => undefined });
  return { log, child: vi.spyOn(log, 'child') };
}

describe('requestContext', () => {
  it('When nothing logs at the enabled level, then no child logger is made, yet the id is set', async () => {
    const { log, child } = spiedLogger('warn');
    const ctx = contextFor('/x');
    await requestContext({ log })(ctx, async () => {
      ctx.status = 200;
    });
    expect(child).not.toHaveBeenCalled();
    expect(ctx.state.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(ctx.response.get('X-Request-Id')).toBe(ctx.state.requestId);
  });

  it('When a handler logs, then the child is made once, bound to the request id', async () => {
    const { log, child } = spiedLogger('warn');
    const ctx = contextFor('/x', { 'x-request-id': 'inbound-id-1234' });
    await requestContext({ log })(ctx, async () => {
      ctx.state.log.warn('one');
      ctx.state.log.warn('two');
    });
    expect(child).toHaveBeenCalledTimes(1);
    expect(child).toHaveBeenCalledWith({ reqId: 'inbound-id-1234' });
  });

  it('When the access line is enabled (info), then it is written through the request logger', async () => {
    const { log, child } = spiedLogger('info');
    const ctx = contextFor('/page');
    await requestContext({ log })(ctx, async () => {
      ctx.status = 204;
    });
    expect(child).toHaveBeenCalledTimes(1);
  });

  it('When the locale is read, then it comes from ?lang, else Accept-Language, else zh-CN; and it stays assignable', async () => {
    const { log } = spiedLogger();
    const seen: string[] = [];
    for (const [url, al] of [
      ['/p?lang=en', 'zh-CN'],
      ['/p', 'en-US,en;q=0.9'],
      ['/p', ''],
    ] as const) {
      const ctx = contextFor(url, al ? { 'accept-language': al } : {});
      await requestContext({ log })(ctx, async () => {
        seen.push(ctx.state.locale);
      });
    }
    expect(seen).toEqual(['en', 'en', 'zh-CN']);
    const ctx = contextFor('/p');
    await requestContext({ log })(ctx, async () => {
      ctx.state.locale = 'en';
      ctx.state.log = log;
      ctx.state.custom = 1;
      expect([ctx.state.locale, ctx.state.log, ctx.state.custom]).toEqual(['en', log, 1]);
    });
  });

  it('When an inbound request id is malformed, then a fresh one replaces it', async () => {
    const { log } = spiedLogger();
    const ctx = contextFor('/x', { 'x-request-id': 'bad id\n' });
    await requestContext({ log })(ctx, async () => undefined);
    expect(ctx.state.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
