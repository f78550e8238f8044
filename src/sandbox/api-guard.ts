/** Shared entry checks of the cgi-bin APIs: the account token, the JSON body. */
import type { Context } from 'koa';
import type { SandboxDeps } from './deps.ts';
import { readJsonBody } from './body.ts';
import type { SandboxApp } from './state.ts';
import { checkAccountToken } from './tokens.service.ts';
import { callMeta, fail } from './wx-response.ts';

/** §0/§8: `access_token` is always a query parameter, also for POST APIs. */
export function accountOf(deps: SandboxDeps, ctx: Context): SandboxApp {
  const token = typeof ctx.query.access_token === 'string' ? ctx.query.access_token : undefined;
  const app = checkAccountToken(deps.state, token, deps.now());
  callMeta(ctx).appId = app.appId;
  return app;
}

/** 44002 for an empty body, 47001 for anything that is not a JSON object. */
export async function jsonObjectOf(ctx: Context): Promise<Record<string, unknown>> {
  const body = await readJsonBody(ctx);
  if (!body.ok) fail(body.empty ? 44002 : 47001);
  if (typeof body.value !== 'object' || body.value === null || Array.isArray(body.value)) fail(47001);
  return body.value as Record<string, unknown>;
}
