/**
 * Merchant API for bindings and binding codes (DESIGN.md "Merchant API"): Bearer tokens from
 * client_credentials, one scope per call, JSON errors. A merchant sees only its own objects:
 * another merchant's binding id is a 404, exactly like one that does not exist (ASVS 8.2.2,
 * 8.4.1).
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { readBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import type { BindingCodesService } from './binding-codes.service.ts';
import type { BindingsService } from './bindings.service.ts';
import type { Binding } from './types.ts';

export interface BindingsApiDeps {
  bindings: BindingsService;
  codes: BindingCodesService;
  /** `merchantAuth.require(scope)` of the OAuth feature: sets ctx.state.merchantAuth or throws. */
  requireScope: (scope: string) => Middleware;
}

const listQuery = z
  .object({ account: z.string().min(1).max(128).optional(), sub: z.string().min(1).max(128).optional(), status: z.enum(['active', 'revoked', 'all']).default('all') })
  .strict()
  .refine((q) => (q.account === undefined) !== (q.sub === undefined), 'give exactly one of account or sub');
const revokeBody = z.object({ reason: z.string().min(1).max(200) }).strict();
const codeBody = z
  .object({
    account: z.string().min(1).max(128),
    display: z.string().max(64).nullish(),
    expiresIn: z.number().int().min(60).max(2_592_000).optional(),
    qr: z.boolean().optional(),
  })
  .strict();

export function bindingJson(b: Binding & { sub: string }) {
  return {
    id: b.id,
    account: b.accountId,
    accountDisplay: b.accountDisplay,
    sub: b.sub,
    status: b.status,
    isDefault: b.isDefault,
    proof: b.proof,
    provenAt: b.provenAt.toISOString(),
    createdAt: b.createdAt.toISOString(),
    revokedAt: b.revokedAt?.toISOString() ?? null,
    revokeReason: b.revokeReason,
  };
}

function caller(ctx: Context): { merchantId: string; clientId: string } {
  const auth = ctx.state.merchantAuth as { merchantId: string; clientId: string } | undefined;
  if (!auth) throw new AppError('request.unauthenticated');
  return auth;
}

export function createBindingsApiRoutes(deps: BindingsApiDeps): Router {
  const router = new Router({ prefix: '/api/v1' });

  router.get('/bindings', deps.requireScope('bindings:read'), async (ctx) => {
    const { merchantId } = caller(ctx);
    const q = parseInput(listQuery, ctx.query);
    const status = q.status === 'all' ? undefined : q.status;
    let identityId: string | undefined;
    if (q.sub !== undefined) {
      const found = await deps.bindings.findBySubject(merchantId, q.sub);
      if (!found) return void (ctx.body = { bindings: [] });
      identityId = found.identityId;
    }
    const list = await deps.bindings.listBindings({ merchantId, accountId: q.account, identityId, status });
    ctx.body = { bindings: (await deps.bindings.withSubjects(merchantId, list)).map(bindingJson) };
  });

  router.post('/bindings/:id/revoke', deps.requireScope('bindings:write'), async (ctx) => {
    const { merchantId, clientId } = caller(ctx);
    const body = parseInput(revokeBody, await readBody(ctx, 4 * 1024));
    const b = await deps.bindings.revokeBinding({ bindingId: ctx.params.id ?? '', merchantId, actor: `merchant:${clientId}`, reason: body.reason, source: 'api' });
    const [withSub] = await deps.bindings.withSubjects(merchantId, [b]);
    ctx.body = { binding: bindingJson(withSub!) };
  });

  router.post('/binding-codes', deps.requireScope('binding-codes:write'), async (ctx) => {
    const { merchantId, clientId } = caller(ctx);
    const body = parseInput(codeBody, await readBody(ctx, 4 * 1024));
    const made = await deps.codes.createBindingCode({
      merchantId,
      account: body.account,
      display: body.display ?? null,
      expiresIn: body.expiresIn,
      qr: body.qr,
      actor: `merchant:${clientId}`,
    });
    ctx.status = 201;
    ctx.body = made;
  });

  return router;
}
