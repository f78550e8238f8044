/**
 * The `oidc` proof (DESIGN.md "Linking protocols"): openid-client against the merchant's own
 * identity provider, authorization code + PKCE (S256) + nonce + state, each per attempt.
 * The account id is the configured claim of the ID token that openid-client verified
 * (signature, iss, aud, nonce, exp). One redirect URI per merchant, so an answer from one
 * provider cannot be replayed at another's callback (RFC 9700 §4.4.2.2).
 * Plain-http issuers are accepted on loopback only (the demo IdP and tests).
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { DependencyUnavailableError } from '../http/errors.ts';

export interface OidcMethod {
  issuer: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  accountClaim: string;
  displayClaim?: string;
}

export interface OidcStart {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

/** `claims`: the verified ID token's claims, for callers that map more than the account (admin SSO roles). */
export type OidcFinish = { ok: true; accountId: string; display: string | null; claims: Readonly<Record<string, unknown>> } | { ok: false; reason: 'cancelled' | 'invalid' | 'no_account' };

export interface OidcConnector {
  /** `extra`: more authorization parameters (admin re-authentication asks for `prompt=login`, `max_age=0`). */
  begin(method: OidcMethod, redirectUri: string, extra?: Readonly<Record<string, string>>): Promise<OidcStart>;
  finish(method: OidcMethod, callbackUrl: URL, checks: { state: string; nonce: string; verifier: string }): Promise<OidcFinish>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function createOidcConnector(deps: { fetch: typeof fetch; timeoutMs?: number }): OidcConnector {
  const timeoutMs = deps.timeoutMs ?? 5_000;
  const configs = new Map<string, Promise<oidc.Configuration>>();
  const boundedFetch: oidc.CustomFetch = (url, options) =>
    deps.fetch(url, { ...options, redirect: 'manual', signal: options.signal ?? AbortSignal.timeout(timeoutMs) } as RequestInit);

  /**
   * The cache key is everything the Configuration holds that an admin can edit at runtime
   * (the config overlay): issuer, client id and client secret. Without the secret a corrected
   * or rotated secret never took effect, and a revoked one stayed in use, until a restart.
   * The secret enters as a digest, so the key is no copy of it. An entry left behind by an
   * old secret is small and bounded by the number of edits.
   */
  function configFor(m: OidcMethod): Promise<oidc.Configuration> {
    const secretDigest = createHash('sha256').update(m.clientSecret).digest('base64url');
    const key = `${m.issuer}\n${m.clientId}\n${secretDigest}`;
    let p = configs.get(key);
    if (!p) {
      const issuer = new URL(m.issuer);
      const insecure = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname);
      p = oidc.discovery(issuer, m.clientId, m.clientSecret, undefined, {
        [oidc.customFetch]: boundedFetch,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      configs.set(key, p);
      // A failed discovery is retried on the next attempt, not cached.
      p.catch(() => configs.delete(key));
    }
    return p;
  }

  async function upstream<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // Transport failures and 5xx from the provider: the merchant is unavailable.
      if (err instanceof oidc.ResponseBodyError && err.status < 500) throw err;
      if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ClientError) throw err;
      throw new DependencyUnavailableError('merchant', err);
    }
  }

  return {
    async begin(method, redirectUri, extra = {}) {
      const config = await upstream(() => configFor(method));
      const verifier = oidc.randomPKCECodeVerifier();
      const nonce = oidc.randomNonce();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        ...extra,
        redirect_uri: redirectUri,
        scope: method.scope,
        response_type: 'code',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        nonce,
        state,
      });
      return { url: url.href, state, nonce, verifier };
    },

    async finish(method, callbackUrl, checks) {
      const config = await upstream(() => configFor(method));
      let claims: oidc.IDToken | undefined;
      try {
        const tokens = await upstream(() =>
          oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: checks.verifier, expectedNonce: checks.nonce, expectedState: checks.state, idTokenExpected: true }),
        );
        claims = tokens.claims();
      } catch (err) {
        if (err instanceof DependencyUnavailableError) throw err;
        if (err instanceof oidc.AuthorizationResponseError) return { ok: false, reason: 'cancelled' };
        return { ok: false, reason: 'invalid' };
      }
      const account = claims?.[method.accountClaim];
      if (!(typeof account === 'string' && account.length > 0 && account.length <= 128) && typeof account !== 'number') return { ok: false, reason: 'no_account' };
      const display = method.displayClaim ? claims?.[method.displayClaim] : undefined;
      return { ok: true, accountId: String(account), display: typeof display === 'string' ? display.slice(0, 64) : null, claims: { ...claims } };
    },
  };
}
