/**
 * Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery
 * 1.0 §3), built once per key-algorithm set and served from memory with an ETag. What
 * is advertised is exactly what the endpoints enforce: code flow only, PKCE S256 only,
 * pairwise subjects, the three client authentication methods.
 */
import { createHash } from 'node:crypto';
import { merchantScopes } from '../config/schema.ts';
import { userScopes } from './clients.ts';

export interface CachedDocument {
  /**
   * A string, not a Buffer: Node sends a string body in the same write as the headers,
   * where a Buffer costs a second chunk in a writev (the largest single cost of a JWKS
   * request in the issue #9 profile).
   */
  readonly body: string;
  readonly etag: string;
}

export const assertionAlgorithms = ['ES256', 'EdDSA', 'PS256', 'RS256'] as const;

export function endpoints(issuer: string) {
  return {
    authorization_endpoint: `${issuer}/oauth2/authorize`,
    token_endpoint: `${issuer}/oauth2/token`,
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    introspection_endpoint: `${issuer}/oauth2/introspect`,
    userinfo_endpoint: `${issuer}/oauth2/userinfo`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
  };
}

export function metadata(issuer: string, signingAlgs: readonly string[]): Record<string, unknown> {
  const authMethods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
  return {
    issuer,
    ...endpoints(issuer),
    scopes_supported: [...userScopes, ...merchantScopes],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: [...signingAlgs],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: [...assertionAlgorithms],
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: [...assertionAlgorithms],
    introspection_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_signing_alg_values_supported: [...assertionAlgorithms],
    code_challenge_methods_supported: ['S256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'amr', 'name', 'picture', 'account', 'account_display', 'binding_id'],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    // RFC 9207: every authorization response carries `iss` (mix-up defence, RFC 9700 §4.4).
    authorization_response_iss_parameter_supported: true,
  };
}

export function cachedJson(value: unknown): CachedDocument {
  const body = JSON.stringify(value);
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}
