/**
 * Mounts a whole Koa app under a path prefix (the sandbox at /sandbox in demo mode):
 * the sub-app sees paths as if it ran at its own root, and writes the response itself.
 * Headers the outer app already set (security headers, request id) stay on it.
 */
import type Koa from 'koa';
import type { Context, Middleware } from 'koa';

export function mountApp(prefix: string, app: Koa): Middleware {
  const handle = app.callback();
  const under = prefix + '/';
  const forward = async (ctx: Context): Promise<void> => {
    const rest = ctx.url.slice(prefix.length) || '/';
    ctx.req.url = rest.startsWith('/') ? rest : '/' + rest;
    ctx.respond = false;
    await new Promise<void>((resolve) => {
      ctx.res.once('finish', resolve);
      ctx.res.once('close', resolve);
      void handle(ctx.req, ctx.res);
    });
    ctx.status = ctx.res.statusCode;
  };
  // Not async: every request passes here, and most hand on at once.
  return (ctx, next) => {
    const path = ctx.path;
    return path === prefix || path.startsWith(under) ? forward(ctx) : next();
  };
}
