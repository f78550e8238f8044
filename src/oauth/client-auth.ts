/**
 * Client authentication at the token, revocation and introspection endpoints (RFC 6749
 * §2.3, RFC 7523 §2.2 / §3, OIDC Core §9): client_secret_basic, client_secret_post,
 * private_key_jwt. Exactly one method per request (§2.3: "MUST NOT use more than one"),
 * and only the methods the client is registered for. Every failure is the same generic
 * invalid_client; the reason goes to the log only. Transport-free: the routes hand over
 * the Authorization header and the form.
 */
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Kv } from '../store/kv.ts';
import { keyspace } from '../store/keyspace.ts';
import type { Client, ClientRegistry } from './clients.ts';
import { assertionAlgorithms } from './discovery.ts';
import { InvalidClient, InvalidRequest } from './errors.ts';
import type { Params } from './params.ts';
import type { OAuthPolicy } from './policy.ts';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface ClientAuthInput {
  authorization: string | undefined;
  params: Params<'client_id' | 'client_secret' | 'client_assertion' | 'client_assertion_type'>;
  /** The URL of the endpoint called: an accepted assertion audience besides the issuer. */
  endpoint: string;
}

export interface ClientAuth {
  authenticate(input: ClientAuthInput): Promise<Client>;
}

export interface ClientAuthDeps {
  clients: ClientRegistry;
  kv: Kv;
  issuer: string;
  now: () => number;
  policy: OAuthPolicy;
}

const fail = (reason: string, clientId?: string) => new InvalidClient(undefined, { reason, clientId });

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before base64. */
function parseBasic(header: string): { id: string; secret: string } | null {
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return null;
  try {
    const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: dec(decoded.slice(0, i)), secret: dec(decoded.slice(i + 1)) };
  } catch {
    return null;
  }
}

export function createClientAuth(deps: ClientAuthDeps): ClientAuth {
  const jwksOf = new WeakMap<Client, JWTVerifyGetKey>();

  const registered = async (clientId: string | undefined, method: Client['authMethods'][number]): Promise<Client> => {
    const client = clientId ? await deps.clients.get(clientId) : undefined;
    if (!client) throw fail('unknown_client');
    if (!client.authMethods.includes(method)) throw fail(`method_not_allowed:${method}`, client.clientId);
    return client;
  };

  async function bySecret(id: string | undefined, secret: string, method: 'client_secret_basic' | 'client_secret_post'): Promise<Client> {
    const client = await registered(id, method);
    if (!(await deps.clients.checkSecret(client, secret))) throw fail('bad_secret', client.clientId);
    return client;
  }

  async function byAssertion(input: ClientAuthInput): Promise<Client> {
    const { client_assertion: assertion, client_assertion_type: type } = input.params;
    if (type !== JWT_BEARER_ASSERTION) throw new InvalidRequest(`client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
    let claimed: unknown;
    try {
      claimed = decodeJwt(assertion ?? '').sub;
    } catch {
      throw fail('assertion_malformed');
    }
    const clientId = input.params.client_id ?? (typeof claimed === 'string' ? claimed : undefined);
    const client = await registered(clientId, 'private_key_jwt');
    if (!client.jwks) throw fail('no_jwks', client.clientId);
    let getKey = jwksOf.get(client);
    if (!getKey) jwksOf.set(client, (getKey = createLocalJWKSet(client.jwks)));
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion ?? '', getKey, {
        algorithms: [...assertionAlgorithms],
        issuer: client.clientId,
        subject: client.clientId,
        audience: [deps.issuer, input.endpoint],
        requiredClaims: ['exp', 'jti'],
        currentDate: new Date(deps.now()),
      }));
    } catch (err) {
      throw fail(`assertion:${err instanceof joseErrors.JOSEError ? err.code : 'invalid'}`, client.clientId);
    }
    const nowS = deps.now() / 1000;
    const exp = payload.exp as number;
    if (exp - nowS > deps.policy.maxAssertionLifetimeSeconds) throw fail('assertion_lifetime', client.clientId);
    // RFC 7523 §3 item 7: a jti may be used once; remembered until the assertion expires.
    const ttlMs = Math.max(1000, Math.ceil((exp - nowS) * 1000) + deps.policy.clockSkewMs);
    const fresh = await deps.kv.setIfAbsent(keyspace.oauth.assertionJti(client.clientId, String(payload.jti)), '1', ttlMs);
    if (!fresh) throw fail('assertion_replayed', client.clientId);
    return client;
  }

  return {
    async authenticate(input) {
      const basic = input.authorization ? parseBasic(input.authorization) : null;
      if (input.authorization && !basic) throw fail('authorization_header');
      const used = [basic !== null, input.params.client_secret !== undefined, input.params.client_assertion !== undefined].filter(Boolean).length;
      if (used > 1) throw new InvalidRequest('use exactly one client authentication method');
      if (basic) {
        if (input.params.client_id !== undefined && input.params.client_id !== basic.id) throw fail('client_id_mismatch');
        return bySecret(basic.id, basic.secret, 'client_secret_basic');
      }
      if (input.params.client_secret !== undefined) return bySecret(input.params.client_id, input.params.client_secret, 'client_secret_post');
      if (input.params.client_assertion !== undefined) return byAssertion(input);
      throw fail('no_credentials', input.params.client_id);
    },
  };
}
