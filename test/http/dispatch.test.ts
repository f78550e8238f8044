/**
 * The dispatch step and the precomputed routes against plain routers (src/http/dispatch.ts,
 * src/http/precomputed.ts): whatever routers are given, a request gets the answer it got
 * when every router ran in sequence.
 */
import type { Server } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { dispatchRouters } from '../../src/http/dispatch.ts';
import { precomputed, precomputedRoutes, servePrecomputed } from '../../src/http/precomputed.ts';

const servers: Server[] = [];
const plain = (body: string) => ({ body, type: 'text/plain; charset=utf-8' });
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function serve(routers: Router[], opts: { fast?: boolean; allowedMethods?: boolean; unless?: (path: string) => boolean; mounted?: Koa.Middleware } = {}): Promise<string> {
  const app = new Koa();
  app.use(async (ctx, next) => {
    await next();
    ctx.set('x-route', String((ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'none'));
  });
  if (opts.fast) app.use(servePrecomputed(routers, { unless: opts.unless }));
  if (opts.mounted) app.use(opts.mounted);
  app.use(dispatchRouters(routers, { allowedMethods: opts.allowedMethods ?? true }));
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

const text = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init);
  return `${r.status} ${await r.text()}`;
};

describe('dispatchRouters', () => {
  it('When several routers could answer, then the first in order wins, as in sequence', async () => {
    const a = new Router();
    a.get('/x/:id', (ctx) => void (ctx.body = `a${ctx.params.id}`));
    const b = new Router();
    b.get('/x/1', (ctx) => void (ctx.body = 'b'));
    b.get('/y', (ctx) => void (ctx.body = 'y'));
    const base = await serve([a, b]);
    expect(await text(`${base}/x/1`)).toBe('200 a1');
    expect(await text(`${base}/y`)).toBe('200 y');
    expect(await text(`${base}/z`)).toBe('404 Not Found');
  });

  it('When a router starts with a parameter or a RegExp, then it still sees every path', async () => {
    const lit = new Router();
    lit.get('/lit', (ctx) => void (ctx.body = 'lit'));
    const param = new Router();
    param.get('/:anything/end', (ctx) => void (ctx.body = `p:${ctx.params.anything}`));
    const re = new Router();
    re.get(/^\/re-\d+$/, (ctx) => void (ctx.body = 're'));
    const base = await serve([lit, param, re]);
    expect(await text(`${base}/lit`)).toBe('200 lit');
    expect(await text(`${base}/what/end`)).toBe('200 p:what');
    expect(await text(`${base}/re-42`)).toBe('200 re');
  });

  it('When a path differs in case or has a trailing slash, then it matches as the router would', async () => {
    const r = new Router({ prefix: '/api/v1' });
    r.get('/items', (ctx) => void (ctx.body = 'items'));
    const base = await serve([r]);
    expect(await text(`${base}/API/v1/Items`)).toBe('200 items');
    expect(await text(`${base}/api/v1/items/`)).toBe('200 items');
  });

  it('When router-level middleware exists, then it runs only for that router’s routes', async () => {
    const guarded = new Router({ prefix: '/admin' });
    guarded.use((ctx, next) => {
      ctx.set('x-guard', '1');
      return next();
    });
    guarded.get('/page', (ctx) => void (ctx.body = 'admin'));
    const open = new Router();
    open.get('/public', (ctx) => void (ctx.body = 'public'));
    const base = await serve([guarded, open]);
    expect((await fetch(`${base}/admin/page`)).headers.get('x-guard')).toBe('1');
    expect((await fetch(`${base}/public`)).headers.get('x-guard')).toBeNull();
  });

  it('When the method is wrong, then 405/OPTIONS/501 come from the routes’ methods; without allowedMethods, 404', async () => {
    const r = new Router();
    r.get('/thing', (ctx) => void (ctx.body = 'thing'));
    r.post('/thing', (ctx) => void (ctx.body = 'posted'));
    const base = await serve([new Router(), r]);
    const del = await fetch(`${base}/thing`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('HEAD, GET, POST');
    expect((await fetch(`${base}/thing`, { method: 'OPTIONS' })).headers.get('allow')).toBe('HEAD, GET, POST');
    expect((await fetch(`${base}/elsewhere`, { method: 'PROPFIND' })).status).toBe(501);
    const bare = await serve([r], { allowedMethods: false });
    expect((await fetch(`${bare}/thing`, { method: 'DELETE' })).status).toBe(404);
  });

  it('When a route is added after wiring but before the first request, then it is dispatched too', async () => {
    const r = new Router();
    const base = await serve([r]);
    r.get('/late', (ctx) => void (ctx.body = 'late'));
    expect(await text(`${base}/late`)).toBe('200 late');
  });
});

describe('precomputed routes', () => {
  it('When a tagged route is the first to match its path, then it is answered before the routers with its route label', async () => {
    const r = new Router();
    r.use(async (ctx, next) => {
      ctx.set('x-router-middleware', '1');
      await next();
    });
    r.get('/doc', precomputed(() => plain('doc')));
    const base = await serve([r], { fast: true });
    const res = await fetch(`${base}/doc`);
    expect(await res.text()).toBe('doc');
    expect(res.headers.get('x-route')).toBe('/doc');
    expect(res.headers.get('x-router-middleware')).toBeNull();
    // Other spellings take the router, with its middleware.
    expect((await fetch(`${base}/doc/`)).headers.get('x-router-middleware')).toBe('1');
  });

  it('When an earlier route also matches the path, then the tagged one is not precomputed', async () => {
    const first = new Router();
    first.get('/:any', (ctx) => void (ctx.body = 'first'));
    const second = new Router();
    second.get('/doc', precomputed(() => plain('doc')));
    expect([...precomputedRoutes([first, second]).keys()]).toEqual([]);
    expect([...precomputedRoutes([second, first]).keys()]).toEqual(['/doc']);
    const base = await serve([first, second], { fast: true });
    expect(await text(`${base}/doc`)).toBe('200 first');
  });

  it('When the handler is not ready (throws), then the request takes the router and gets its answer', async () => {
    let ready = false;
    const r = new Router();
    r.use(async (_ctx, next) => {
      ready = true; // what awaiting the feature's readiness does
      await next();
    });
    r.get(
      '/keys',
      precomputed(() => {
        if (!ready) throw new Error('not loaded');
        return plain('keys');
      }),
    );
    const base = await serve([r], { fast: true });
    const res = await fetch(`${base}/keys`);
    expect(await res.text()).toBe('keys');
    expect(res.headers.get('x-route')).toBe('/keys');
  });

  it('When the route has its own middleware or a parameter, or the method is not GET, then it is left to the router', async () => {
    const r = new Router();
    r.get('/guarded', (_ctx, next) => next(), precomputed(() => plain('g')));
    r.get('/p/:id', precomputed(() => plain('p')));
    r.post('/post', precomputed(() => plain('post')));
    expect([...precomputedRoutes([r]).keys()]).toEqual([]);
  });

  it('When a precomputed path belongs to what sits between it and the routers (a mount, a static prefix), then that owner answers', async () => {
    const r = new Router();
    r.get('/sandbox/doc', precomputed(() => plain('router')));
    r.get('/doc', precomputed(() => plain('doc')));
    const mounted: Koa.Middleware = (ctx, next) => (ctx.path.startsWith('/sandbox/') ? void (ctx.body = 'mounted') : next());
    const base = await serve([r], { fast: true, unless: (p) => p.startsWith('/sandbox/'), mounted });
    expect(await text(`${base}/sandbox/doc`)).toBe('200 mounted');
    expect(await text(`${base}/doc`)).toBe('200 doc');
  });
});
