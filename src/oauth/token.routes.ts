/**
 * POST /oauth2/token, /oauth2/revoke, /oauth2/introspect and GET|POST /oauth2/userinfo
 * (RFC 6749 §3.2, RFC 7009, RFC 7662, OIDC Core §5.3). Each endpoint is a short stack of
 * single-check steps: a form body (never JSON, never the query), the allow-listed
 * parameters each at most once, client authentication, then the use case. Responses are
 * `no-store` (RFC 6749 §5.1).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { parseForm, readRawBody, type FormBody } from '../http/body.ts';
import { bearerToken } from './bearer.ts';
import type { ClientAuth } from './client-auth.ts';
import type { Client } from './clients.ts';
import { InvalidBearerRequest, InvalidRequest, InvalidToken, UnsupportedGrantType } from './errors.ts';
import { tokenParams, type Grants } from './grants.service.ts';
import { inspectParams, type Inspector } from './inspect.service.ts';
import { clientAuthParams, pickParams } from './params.ts';

const FORM_LIMIT = 16 * 1024;

async function readForm(ctx: Context): Promise<FormBody> {
  if (ctx.request.type !== 'application/x-www-form-urlencoded') throw new InvalidRequest('send application/x-www-form-urlencoded');
  return parseForm((await readRawBody(ctx, FORM_LIMIT)).toString('utf8'));
}

function noStore(ctx: Context, body: unknown): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.body = body;
}

export function createTokenRoutes(deps: { issuer: string; clientAuth: ClientAuth; grants: Grants; inspector: Inspector }): Router {
  const router = new Router();
  const authenticate = (ctx: Context, form: FormBody, endpoint: string): Promise<Client> =>
    deps.clientAuth.authenticate({ authorization: ctx.get('authorization') || undefined, params: pickParams(form, clientAuthParams), endpoint });

  router.post('/oauth2/token', async (ctx) => {
    const form = await readForm(ctx);
    const client = await authenticate(ctx, form, `${deps.issuer}/oauth2/token`);
    const p = pickParams(form, tokenParams);
    switch (p.grant_type) {
      case 'authorization_code':
        return noStore(ctx, await deps.grants.authorizationCode(client, p));
      case 'refresh_token':
        return noStore(ctx, await deps.grants.refreshToken(client, p));
      case 'client_credentials':
        return noStore(ctx, await deps.grants.clientCredentials(client, p));
      case undefined:
        throw new InvalidRequest('grant_type is required');
      default:
        throw new UnsupportedGrantType();
    }
  });

  /** RFC 7009 §2.1 / RFC 7662 §2.1: an authenticated client and a `token`, with an optional hint. */
  async function tokenRequest(ctx: Context, endpoint: string): Promise<{ client: Client; token: string; hint?: string }> {
    const form = await readForm(ctx);
    const client = await authenticate(ctx, form, `${deps.issuer}${endpoint}`);
    const p = pickParams(form, inspectParams);
    if (!p.token) throw new InvalidRequest('token is required');
    return { client, token: p.token, hint: p.token_type_hint };
  }

  router.post('/oauth2/revoke', async (ctx) => {
    const r = await tokenRequest(ctx, '/oauth2/revoke');
    await deps.inspector.revoke(r.client, r.token, r.hint);
    ctx.status = 200;
    noStore(ctx, '');
  });

  router.post('/oauth2/introspect', async (ctx) => {
    const r = await tokenRequest(ctx, '/oauth2/introspect');
    noStore(ctx, await deps.inspector.introspect(r.client, r.token, r.hint));
  });

  // OIDC Core §5.3.1: GET or POST; the token from the Authorization header only (RFC 9700 §4.3.2).
  const userinfo = async (ctx: Context) => {
    if (ctx.query.access_token !== undefined) throw new InvalidBearerRequest('send the access token in the Authorization header');
    const token = bearerToken(ctx.get('authorization'));
    if (!token) throw new InvalidToken('a Bearer access token is required', { bare: !ctx.get('authorization') });
    noStore(ctx, await deps.inspector.userinfo(token));
  };
  router.get('/oauth2/userinfo', userinfo);
  router.post('/oauth2/userinfo', userinfo);
  return router;
}
