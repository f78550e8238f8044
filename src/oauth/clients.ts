/**
 * The OAuth clients merchants use, from the config file (DESIGN.md "Declarative config").
 * Client secrets are hashed (scrypt) when the registry starts and only the hashes are
 * kept here; nothing about clients is written anywhere. A secret that has verified once
 * is remembered as an HMAC under a per-process key, so the token endpoint pays scrypt
 * only for the first and for wrong secrets.
 * TODO(#admin): clients made in the admin UI join this registry from their table.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import type { ClientConfig, MerchantConfig } from '../config/index.ts';
import { hashSecret, safeEqual, verifySecret } from '../security/secrets.ts';

export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';
export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export interface Client {
  readonly clientId: string;
  readonly merchantId: string;
  readonly grantTypes: readonly GrantType[];
  readonly redirectUris: readonly string[];
  readonly scopes: readonly string[];
  readonly accessTokenTtl: number;
  readonly authMethods: readonly AuthMethod[];
  readonly jwks: JSONWebKeySet | undefined;
}

export interface ClientRegistry {
  /** Hashes the configured secrets; call once before serving. */
  init(): Promise<void>;
  get(clientId: string): Client | undefined;
  merchant(merchantId: string): MerchantConfig | undefined;
  checkSecret(client: Client, presented: string): Promise<boolean>;
}

/** Scopes that ask for user data rather than merchant API rights. */
export const userScopes = ['openid', 'profile', 'offline_access'] as const;

function authMethodsOf(c: ClientConfig): AuthMethod[] {
  if (c.tokenEndpointAuthMethod) return [c.tokenEndpointAuthMethod];
  const m: AuthMethod[] = [];
  if (c.clientSecret) m.push('client_secret_basic', 'client_secret_post');
  if (c.jwks) m.push('private_key_jwt');
  return m;
}

export function createClientRegistry(merchants: readonly MerchantConfig[]): ClientRegistry {
  const clients = new Map<string, Client>();
  const merchantsById = new Map<string, MerchantConfig>();
  const pending = new Map<string, string>();
  const hashes = new Map<string, string>();
  const memoKey = randomBytes(32);
  const remembered = new Map<string, string>();
  for (const m of merchants) {
    merchantsById.set(m.id, m);
    for (const c of m.clients) {
      clients.set(
        c.clientId,
        Object.freeze({
          clientId: c.clientId,
          merchantId: m.id,
          grantTypes: c.grantTypes,
          redirectUris: c.redirectUris,
          scopes: c.scopes,
          accessTokenTtl: c.accessTokenTtl,
          authMethods: authMethodsOf(c),
          jwks: c.jwks as JSONWebKeySet | undefined,
        }),
      );
      if (c.clientSecret) pending.set(c.clientId, c.clientSecret);
    }
  }
  const memo = (clientId: string, secret: string) => createHmac('sha256', memoKey).update(`${clientId}\u0000${secret}`).digest('base64url');

  return {
    async init() {
      await Promise.all([...pending].map(async ([id, secret]) => hashes.set(id, await hashSecret(secret))));
      pending.clear();
    },
    get: (clientId) => clients.get(clientId),
    merchant: (id) => merchantsById.get(id),
    async checkSecret(client, presented) {
      const hash = hashes.get(client.clientId);
      if (!hash) return false;
      const known = remembered.get(client.clientId);
      const mine = memo(client.clientId, presented);
      if (known && safeEqual(known, mine)) return true;
      if (!(await verifySecret(presented, hash))) return false;
      remembered.set(client.clientId, mine);
      return true;
    },
  };
}
