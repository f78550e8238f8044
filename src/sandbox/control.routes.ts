/**
 * The sandbox's JSON control API under `/control/...`: the same operations as the
 * programmatic `Sandbox` methods, for tests over HTTP, benchmarks and the standalone
 * sandbox. No auth (demo and loopback only); state-changing calls require
 * `Content-Type: application/json`, which a cross-site page cannot send without a CORS
 * preflight this API never answers.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { BodyTooLargeError, readRawBody } from './body.ts';
import { parseOrThrow } from './validate.ts';
import { AuthorizeRejected, type SandboxControl } from './sandbox.types.ts';
import { summarizeApp, toJsonText } from './serialize.ts';

const authorizeSchema = z
  .object({
    appid: z.string(),
    redirect_uri: z.string(),
    response_type: z.string().default('code'),
    scope: z.string(),
    state: z.string().optional(),
    userId: z.string(),
    decision: z.enum(['allow', 'decline']).default('allow'),
    doubleRedirect: z.boolean().optional(),
  })
  .strict();

const qrConnectSchema = z
  .object({
    appid: z.string(),
    redirect_uri: z.string(),
    response_type: z.string().default('code'),
    scope: z.string().default('snsapi_login'),
    state: z.string().optional(),
    lang: z.enum(['cn', 'en']).optional(),
    userId: z.string(),
    decision: z.enum(['allow', 'decline']).default('allow'),
  })
  .strict();

const pushSchema = z.object({ appId: z.string(), userId: z.string(), message: z.record(z.string(), z.unknown()) }).strict();
const optInSchema = z.object({ appId: z.string(), userId: z.string(), templateId: z.string(), longTerm: z.boolean().optional() }).strict();
const clockSchema = z.object({ advanceMs: z.number().int().min(0) }).strict();

function send(ctx: Context, status: number, value: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json; charset=utf-8';
  ctx.body = toJsonText(value);
}

async function jsonBody(ctx: Context): Promise<Record<string, unknown>> {
  if (!ctx.is('application/json')) throw new AppError('request.unsupported_media_type', 'send application/json');
  const raw = await readRawBody(ctx);
  if (raw.trim() === '') return {};
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new AppError('request.invalid', 'body must be a JSON object');
}

async function controlErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (err instanceof AuthorizeRejected) {
      const { code, message, detail } = err.pageError;
      return send(ctx, 400, { error: 'authorize_rejected', wechat_code: code ?? null, message, detail });
    }
    if (err instanceof AppError) return send(ctx, err.status, { error: err.code, error_description: err.publicMessage ?? err.code });
    if (err instanceof BodyTooLargeError) return send(ctx, 413, { error: 'request.body_too_large' });
    throw err;
  }
}

const q = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function createControlRoutes(sb: SandboxControl): Router {
  const router = new Router({ prefix: '/control' });
  router.use(controlErrors);

  router.get('/apps', (ctx) => send(ctx, 200, [...sb.state.apps.values()].map(summarizeApp)));
  router.post('/apps', async (ctx) => {
    send(ctx, 201, summarizeApp(sb.registerApp((await jsonBody(ctx)) as never)));
  });
  router.post('/apps/:appId/verify-url', async (ctx) => send(ctx, 200, await sb.verifyPushUrl(ctx.params.appId ?? '')));
  router.patch('/apps/:appId', async (ctx) => send(ctx, 200, summarizeApp(sb.updateApp(ctx.params.appId ?? '', (await jsonBody(ctx)) as never))));

  router.get('/users', (ctx) => send(ctx, 200, [...sb.state.users.keys()].map((id) => sb.describeUser(id))));
  router.post('/users', async (ctx) => send(ctx, 201, sb.describeUser(sb.createUser((await jsonBody(ctx)) as never).userId)));
  router.get('/users/:userId', (ctx) => send(ctx, 200, sb.describeUser(ctx.params.userId ?? '')));
  router.patch('/users/:userId/relations/:appId', async (ctx) => {
    sb.setRelation(ctx.params.appId ?? '', ctx.params.userId ?? '', await jsonBody(ctx));
    send(ctx, 200, sb.describeUser(ctx.params.userId ?? ''));
  });
  router.post('/users/:userId/actions', async (ctx) => {
    const { appId, ...action } = await jsonBody(ctx);
    if (typeof appId !== 'string') throw new AppError('request.invalid', 'appId is required');
    send(ctx, 200, await sb.act(appId, ctx.params.userId ?? '', action as never));
  });

  router.post('/push', async (ctx) => send(ctx, 200, await sb.push(parseOrThrow(pushSchema, await jsonBody(ctx)))));
  router.post('/subscribe-optins', async (ctx) => {
    const o = parseOrThrow(optInSchema, await jsonBody(ctx));
    sb.optIn(o.appId, o.userId, o.templateId, o.longTerm ?? false);
    send(ctx, 200, { ok: true });
  });

  router.get('/faults', (ctx) => send(ctx, 200, sb.state.faults.map((f) => ({ ...f.spec, seen: f.seen, fired: f.fired }))));
  router.post('/faults', async (ctx) => {
    sb.inject((await jsonBody(ctx)) as never);
    send(ctx, 201, { ok: true });
  });
  router.delete('/faults', (ctx) => {
    sb.clearFaults();
    send(ctx, 200, { ok: true });
  });

  router.get('/messages', (ctx) =>
    send(ctx, 200, sb.messages({ appId: q(ctx.query.appId), userId: q(ctx.query.userId), openid: q(ctx.query.openid), kind: q(ctx.query.kind) as never })),
  );
  router.get('/calls', (ctx) => send(ctx, 200, sb.calls(q(ctx.query.path)).filter((c) => !q(ctx.query.appId) || c.appId === ctx.query.appId)));
  router.get('/pushes', (ctx) => send(ctx, 200, sb.pushes({ appId: q(ctx.query.appId), userId: q(ctx.query.userId) })));
  router.get('/qrcodes', (ctx) => send(ctx, 200, [...sb.state.qrTickets.values()]));

  router.post('/authorize', async (ctx) => {
    const a = parseOrThrow(authorizeSchema, await jsonBody(ctx));
    send(ctx, 200, sb.authorize(a));
  });

  router.get('/website-apps', (ctx) => send(ctx, 200, [...sb.state.websiteApps.values()]));
  router.post('/website-apps', async (ctx) => send(ctx, 201, sb.registerWebsiteApp((await jsonBody(ctx)) as never)));
  router.post('/qrconnect', async (ctx) => send(ctx, 200, sb.qrConnect(parseOrThrow(qrConnectSchema, await jsonBody(ctx)))));

  router.patch('/limits', async (ctx) => send(ctx, 200, sb.setLimits((await jsonBody(ctx)) as never)));
  router.post('/clock', async (ctx) => {
    sb.advanceClock(parseOrThrow(clockSchema, await jsonBody(ctx)).advanceMs);
    send(ctx, 200, { now: sb.now() });
  });
  router.post('/idle', async (ctx) => {
    await sb.idle();
    send(ctx, 200, { ok: true });
  });
  router.post('/reset', (ctx) => {
    sb.reset();
    send(ctx, 200, { ok: true });
  });

  return router;
}
