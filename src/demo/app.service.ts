/**
 * The demo merchant H5 app (DESIGN.md "Demo mode": "a demo merchant web app that shows
 * the JWT it received"). It is a merchant like any other: openid-client against our own
 * discovery document, authorization code + PKCE + state + nonce, the code exchanged
 * server-side, the access token checked with `wxbridge/verify`. Tokens stay on the
 * server; the page shows their decoded claims. Transport-free: the routes pass URLs.
 */
import * as oidc from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { randomId } from '../security/secrets.ts';
import { keyspace } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { createVerifier } from '../verify/index.ts';

const FLOW_TTL_MS = 10 * 60_000;
const flowSchema = z.object({ verifier: z.string(), state: z.string(), nonce: z.string() });

export interface DemoAppClient {
  issuer: string;
  merchantId: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  scope: string;
}

export interface DemoAppResult {
  accessToken: { header: Record<string, unknown>; claims: Record<string, unknown>; verified: boolean; error?: string };
  idToken: { header: Record<string, unknown>; claims: Record<string, unknown> } | null;
  userinfo: Record<string, unknown> | null;
  refreshToken: boolean;
  expiresIn: number | undefined;
}

export function createDemoApp(deps: { kv: Kv; client: DemoAppClient; fetch?: typeof fetch }) {
  const c = deps.client;
  let config: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    // http is allowed only because demo mode runs on loopback (openid-client refuses it otherwise).
    config ??= oidc
      .discovery(new URL(c.issuer), c.clientId, c.clientSecret, undefined, {
        execute: c.issuer.startsWith('http://') ? [oidc.allowInsecureRequests] : [],
        ...(deps.fetch ? { [oidc.customFetch]: deps.fetch } : {}),
      })
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      });
    return config;
  };
  const verifier = createVerifier({ issuer: c.issuer, audience: c.merchantId });

  return {
    /** Starts a login: returns the flow id (for a cookie) and where to send the browser. */
    async start(): Promise<{ flowId: string; url: string }> {
      const flow = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
      const flowId = randomId(18);
      await deps.kv.set(keyspace.oauth.demoAppFlow(flowId), JSON.stringify(flow), FLOW_TTL_MS);
      const url = oidc.buildAuthorizationUrl(await configuration(), {
        redirect_uri: c.redirectUri,
        scope: c.scope,
        code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
        code_challenge_method: 'S256',
        state: flow.state,
        nonce: flow.nonce,
      });
      return { flowId, url: url.href };
    },

    /** The callback: one use of the flow, the code exchanged, every token checked. */
    async finish(flowId: string | undefined, callbackUrl: string): Promise<DemoAppResult> {
      const raw = flowId ? await deps.kv.getDel(keyspace.oauth.demoAppFlow(flowId)) : null;
      const flow = raw ? flowSchema.safeParse(JSON.parse(raw)) : null;
      if (!flow?.success) throw new DemoFlowExpired();
      const cfg = await configuration();
      const tokens = await oidc.authorizationCodeGrant(cfg, new URL(callbackUrl), {
        pkceCodeVerifier: flow.data.verifier,
        expectedState: flow.data.state,
        expectedNonce: flow.data.nonce,
        idTokenExpected: c.scope.split(' ').includes('openid'),
      });
      let verified = true;
      let error: string | undefined;
      await verifier.verifyAccessToken(tokens.access_token).catch((err: unknown) => {
        verified = false;
        error = (err as { code?: string }).code ?? 'invalid';
      });
      const idClaims = tokens.claims();
      const userinfo = idClaims ? await oidc.fetchUserInfo(cfg, tokens.access_token, idClaims.sub).catch(() => null) : null;
      return {
        accessToken: { header: { ...decodeProtectedHeader(tokens.access_token) }, claims: { ...decodeJwt(tokens.access_token) }, verified, error },
        idToken: tokens.id_token ? { header: { ...decodeProtectedHeader(tokens.id_token) }, claims: { ...idClaims } } : null,
        userinfo: userinfo ? { ...userinfo } : null,
        refreshToken: typeof tokens.refresh_token === 'string',
        expiresIn: tokens.expiresIn(),
      };
    },
  };
}

export class DemoFlowExpired extends Error {
  constructor() {
    super('the demo login expired or was already used');
    this.name = 'DemoFlowExpired';
  }
}

export type DemoApp = ReturnType<typeof createDemoApp>;
