/**
 * The OAuth clients merchants use: those of the config file (DESIGN.md "Declarative config")
 * and those made in the admin UI (table admin_clients, DESIGN.md: "objects made in the admin
 * UI live beside it").
 * - Config clients are read from the live config at each lookup (the admin UI's config
 *   overlay replaces merchants in place). Their secrets are in memory already (the config
 *   holds them), so a presented secret is compared by HMAC in constant time: hashing them
 *   with scrypt at start protected nothing and cost ~16 MB of peak memory per client
 *   (docs/BENCHMARKS.md, RSS). Admin secrets are stored hashed (scrypt) by the admin
 *   service; the hash is read with the client.
 * - An admin client is read from the database on first use and kept `cacheMs` (2 s); so an
 *   edit, a new secret, a disabled or a deleted client reaches every instance within that,
 *   without a restart or any signal between instances. A disabled client is unknown here.
 * - A secret that has verified once is remembered as an HMAC under a per-process key, tied
 *   to the hash it verified against, so the token endpoint pays scrypt only for the first
 *   and for wrong secrets, and a replaced secret stops working at once.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import type { ClientConfig, MerchantConfig } from '../config/index.ts';
import { safeEqual, verifySecret } from '../security/secrets.ts';
import type { Queryable } from '../store/db.ts';
import { findUiClientForAuth, type UiClientRecord } from './clients.queries.ts';

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
  /** A usable client: from the config file, or an enabled admin client of a known merchant. */
  get(clientId: string): Promise<Client | undefined>;
  merchant(merchantId: string): MerchantConfig | undefined;
  checkSecret(client: Client, presented: string): Promise<boolean>;
}

export interface ClientRegistryOptions {
  /** Where admin-made clients live; without it only config clients exist. */
  db?: Queryable;
  now?: () => number;
  /** How long an admin client (or its absence) is trusted before it is read again. */
  cacheMs?: number;
  /** Bound on cached admin lookups (unknown ids included), oldest dropped first. */
  maxCached?: number;
}

/** Scopes that ask for user data rather than merchant API rights. */
export const userScopes = ['openid', 'profile', 'offline_access'] as const;

const GRANTS: readonly GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials'];

function authMethodsOf(c: ClientConfig): AuthMethod[] {
  if (c.tokenEndpointAuthMethod) return [c.tokenEndpointAuthMethod];
  const m: AuthMethod[] = [];
  if (c.clientSecret) m.push('client_secret_basic', 'client_secret_post');
  if (c.jwks) m.push('private_key_jwt');
  return m;
}

/** An admin row as a Client; the admin UI offers secrets only, no keys. */
function fromRow(r: UiClientRecord): Client {
  return Object.freeze({
    clientId: r.client_id,
    merchantId: r.merchant_id,
    grantTypes: r.grant_types.filter((g): g is GrantType => (GRANTS as readonly string[]).includes(g)),
    redirectUris: r.redirect_uris,
    scopes: r.scopes,
    accessTokenTtl: r.access_token_ttl,
    authMethods: ['client_secret_basic', 'client_secret_post'] as AuthMethod[],
    jwks: undefined,
  });
}

type Cached = { at: number; found: { client: Client; hash: string } | null };

/**
 * `merchants` is read at each lookup: the config overlay replaces its items in place when a
 * merchant (and its clients) is made or changed in the admin UI (config/overlay.ts).
 */
export function createClientRegistry(merchants: readonly MerchantConfig[], opts: ClientRegistryOptions = {}): ClientRegistry {
  const now = opts.now ?? Date.now;
  const cacheMs = opts.cacheMs ?? 2_000;
  const maxCached = opts.maxCached ?? 10_000;
  // Keyed by the (frozen) config objects: a changed config brings new objects, so nothing stale stays.
  const fromConfig = new WeakMap<ClientConfig, Client>();
  const memoKey = randomBytes(32);
  /** clientId → the hash a presented secret verified against, and that secret's HMAC. */
  const remembered = new Map<string, { hash: string; mac: string }>();
  const adminCache = new Map<string, Cached>();
  const inflight = new Map<string, Promise<Cached>>();
  const memo = (clientId: string, secret: string) => createHmac('sha256', memoKey).update(`${clientId}\u0000${secret}`).digest('base64url');

  const merchant = (id: string) => merchants.find((m) => m.id === id);

  function configEntry(clientId: string): { m: MerchantConfig; c: ClientConfig } | undefined {
    for (const m of merchants) for (const c of m.clients) if (c.clientId === clientId) return { m, c };
    return undefined;
  }

  function configClient(m: MerchantConfig, c: ClientConfig): Client {
    let client = fromConfig.get(c);
    if (!client) {
      client = Object.freeze({
        clientId: c.clientId,
        merchantId: m.id,
        grantTypes: c.grantTypes,
        redirectUris: c.redirectUris,
        scopes: c.scopes,
        accessTokenTtl: c.accessTokenTtl,
        authMethods: authMethodsOf(c),
        jwks: c.jwks as JSONWebKeySet | undefined,
      });
      fromConfig.set(c, client);
    }
    return client;
  }

  /** The admin client as the database has it now; a disabled one, or one of an unknown merchant, is none. */
  async function readAdmin(db: Queryable, clientId: string): Promise<Cached> {
    const r = await findUiClientForAuth(db, clientId);
    const usable = r && !r.disabled && merchant(r.merchant_id) !== undefined;
    const entry: Cached = { at: now(), found: usable ? { client: fromRow(r), hash: r.secret_hash } : null };
    adminCache.delete(clientId);
    adminCache.set(clientId, entry);
    if (adminCache.size > maxCached) adminCache.delete(adminCache.keys().next().value as string);
    return entry;
  }

  /** Cached for `cacheMs`; concurrent misses of one id share one query. */
  async function admin(clientId: string): Promise<Cached['found']> {
    if (!opts.db) return null;
    const hit = adminCache.get(clientId);
    if (hit && now() - hit.at < cacheMs) return hit.found;
    let p = inflight.get(clientId);
    if (!p) {
      p = readAdmin(opts.db, clientId).finally(() => inflight.delete(clientId));
      inflight.set(clientId, p);
    }
    return (await p).found;
  }

  return {
    async get(clientId) {
      const e = configEntry(clientId);
      if (e) return configClient(e.m, e.c);
      return (await admin(clientId))?.client;
    },
    merchant,
    async checkSecret(client, presented) {
      const e = configEntry(client.clientId);
      const mine = memo(client.clientId, presented);
      if (e) return e.c.clientSecret !== undefined && safeEqual(mine, memo(client.clientId, e.c.clientSecret));
      const hash = (await admin(client.clientId))?.hash;
      if (!hash) return false;
      const known = remembered.get(client.clientId);
      if (known && known.hash === hash && safeEqual(known.mac, mine)) return true;
      if (!(await verifySecret(presented, hash))) return false;
      remembered.set(client.clientId, { hash, mac: mine });
      return true;
    },
  };
}
