/**
 * Signing keys (DESIGN.md "Tokens"; SECURITY.md A4, RFC 7517, OIDC Core §10.1.1).
 * States move next → current → previous: a key is published (in the JWKS) before it
 * signs, only `current` signs, and a retired key stays published until every token it
 * signed has expired. Private keys are sealed with BRIDGE_SECRET_KEY at rest. Every
 * instance keeps the whole set in memory and re-reads the table every few seconds, so a
 * rotation made anywhere (CLI, admin UI, another node) is picked up without a restart;
 * the JWKS body and its ETag are precomputed on each change, so serving it allocates
 * nothing per request.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db, Queryable } from '../store/db.ts';
import {
  activateKey,
  deleteCurrentKey,
  deleteKey,
  insertKey,
  keysFingerprint,
  listKeys,
  lockKeys,
  pruneRetiredKeys,
  retireKey,
  type KeyAlg,
  type KeyRow,
  type KeyState,
} from './keys.queries.ts';
import { cachedJson, type CachedDocument } from './discovery.ts';
import { publishLeadMs, retentionMs, type OAuthPolicy } from './policy.ts';

export type { KeyAlg } from './keys.queries.ts';

export interface KeyInfo {
  kid: string;
  alg: KeyAlg;
  state: KeyState;
  publishedAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removeAfter: Date | null;
}

/** The JWKS body and its ETag, precomputed on each key change. */
export type JwksDocument = CachedDocument;

export interface RotationResult {
  /** What happened: a next key was only published, or next became current. */
  outcome: 'published' | 'promoted';
  keys: KeyInfo[];
  /** When published only: the earliest time a rotation may promote the new key. */
  promotableAt?: Date;
}

export class KeyRotationRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRotationRefused';
  }
}

export interface KeysService {
  /**
   * Creates the first keys if there are none, loads them, and starts watching the table.
   * `publishNext: false` (operator commands) leaves a missing next key for rotate() to make,
   * so that its algorithm can be chosen.
   */
  start(opts?: { watch?: boolean; publishNext?: boolean }): Promise<void>;
  stop(): void;
  /** Re-reads the table now (the watcher does this by itself when it changes). */
  reload(): Promise<void>;
  /** The key that signs: the `current` one. */
  signingKey(): { kid: string; alg: KeyAlg; privateKey: CryptoKey };
  /** A published key by kid (an opaque map key, never a query parameter: RFC 8725 §3.10). */
  publicKey(kid: string): { alg: KeyAlg; key: CryptoKey } | undefined;
  /** The algorithms of the published keys, for pinning verifiers (RFC 8725 §3.1). */
  algorithms(): readonly KeyAlg[];
  jwks(): JwksDocument;
  list(): KeyInfo[];
  /**
   * next → current → previous, and a new next. Refused while the next key is younger than
   * the publish lead, unless `force` (the "sign right after publish" variant). `emergency`
   * (a compromised key) removes the old current at once instead of keeping it published.
   */
  rotate(opts?: { alg?: KeyAlg; force?: boolean; emergency?: boolean }): Promise<RotationResult>;
  /** Removes a next or previous key now; the signing key and the last key never go. */
  remove(kid: string): Promise<void>;
}

interface Loaded {
  fingerprint: string;
  rows: KeyRow[];
  signing: { kid: string; alg: KeyAlg; privateKey: CryptoKey };
  published: Map<string, { alg: KeyAlg; key: CryptoKey }>;
  algorithms: KeyAlg[];
  jwks: JwksDocument;
}

export interface KeysDeps {
  db: Db;
  secrets: SecretBox;
  log: Logger;
  now: () => number;
  policy: OAuthPolicy;
  /** Algorithm of keys made when none is given (ES256 by default; EdDSA selectable). */
  defaultAlg?: KeyAlg;
}

const sealContext = (kid: string) => `signing-key:${kid}`;

export function createKeysService(deps: KeysDeps): KeysService {
  const defaultAlg = deps.defaultAlg ?? 'ES256';
  let loaded: Loaded | undefined;
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  const at = () => new Date(deps.now());

  async function makeKey(q: Queryable, alg: KeyAlg, state: KeyState): Promise<string> {
    const pair = await generateKeyPair(alg, { extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    // RFC 7638 thumbprint as kid: unique per key, and says nothing about our internals.
    const kid = await calculateJwkThumbprint(publicJwk);
    const jwk: JWK = { ...publicJwk, kid, alg, use: 'sig' };
    await insertKey(q, { kid, alg, state, publicJwk: jwk, privateKeySealed: deps.secrets.seal(JSON.stringify(privateJwk), sealContext(kid)), at: at() });
    return kid;
  }

  async function build(rows: KeyRow[], fingerprint: string): Promise<Loaded> {
    const current = rows.find((r) => r.state === 'current');
    if (!current) throw new Error('no current signing key');
    const published = new Map<string, { alg: KeyAlg; key: CryptoKey }>();
    for (const r of rows) published.set(r.kid, { alg: r.alg, key: (await importJWK(r.public_jwk as JWK, r.alg)) as CryptoKey });
    const privateJwk = JSON.parse(deps.secrets.open(current.private_key_sealed, sealContext(current.kid))) as JWK;
    const privateKey = (await importJWK(privateJwk, current.alg)) as CryptoKey;
    // Current first, then next, then previous: the order verifiers meet them in.
    const order: Record<KeyState, number> = { current: 0, next: 1, previous: 2 };
    const ordered = [...rows].sort((a, b) => order[a.state] - order[b.state]);
    return {
      fingerprint,
      rows,
      signing: { kid: current.kid, alg: current.alg, privateKey },
      published,
      algorithms: [...new Set(rows.map((r) => r.alg))],
      jwks: cachedJson({ keys: ordered.map((r) => r.public_jwk) }),
    };
  }

  async function reload(): Promise<void> {
    const fingerprint = await keysFingerprint(deps.db);
    if (loaded && fingerprint === loaded.fingerprint) return;
    const rows = await listKeys(deps.db);
    loaded = await build(rows, fingerprint);
    deps.log.info({ keys: rows.map((r) => `${r.kid.slice(0, 8)}:${r.state}`) }, 'signing keys loaded');
  }

  async function ensureKeys(withNext: boolean): Promise<void> {
    await deps.db.transaction(async (tx) => {
      await lockKeys(tx);
      const rows = await listKeys(tx);
      // First start: a current key and its successor. Nobody can have cached a JWKS yet,
      // so the first key may sign at once; the next one is published from now on.
      if (!rows.some((r) => r.state === 'current')) await makeKey(tx, defaultAlg, 'current');
      if (withNext && !rows.some((r) => r.state === 'next')) await makeKey(tx, rows.find((r) => r.state === 'current')?.alg ?? defaultAlg, 'next');
    });
  }

  async function poll(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      const due = loaded?.rows.some((r) => r.state === 'previous' && r.remove_after && r.remove_after.getTime() <= deps.now());
      if (due) {
        const removed = await pruneRetiredKeys(deps.db, at());
        if (removed.length) deps.log.info({ removed: removed.map((k) => k.slice(0, 8)) }, 'retired signing keys removed');
      }
      await reload();
    } catch (err) {
      // Keep signing with what is in memory; the next tick tries again (SECURITY.md D1).
      deps.log.warn({ err }, 'signing keys reload failed');
    } finally {
      polling = false;
    }
  }

  const mustLoaded = (): Loaded => {
    if (!loaded) throw new Error('signing keys not loaded: call start() first');
    return loaded;
  };

  const info = (r: KeyRow): KeyInfo => ({
    kid: r.kid,
    alg: r.alg,
    state: r.state,
    publishedAt: r.published_at,
    activatedAt: r.activated_at,
    retiredAt: r.retired_at,
    removeAfter: r.remove_after,
  });

  return {
    async start(opts = {}) {
      await ensureKeys(opts.publishNext ?? true);
      await reload();
      if (opts.watch !== false && !timer) {
        timer = setInterval(() => void poll(), deps.policy.keysPollMs);
        timer.unref();
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    reload,
    signingKey: () => mustLoaded().signing,
    publicKey: (kid) => mustLoaded().published.get(kid),
    algorithms: () => mustLoaded().algorithms,
    jwks: () => mustLoaded().jwks,
    list: () => mustLoaded().rows.map(info),

    async rotate(opts = {}) {
      const result = await deps.db.transaction(async (tx): Promise<RotationResult> => {
        await lockKeys(tx);
        const rows = await listKeys(tx);
        const current = rows.find((r) => r.state === 'current');
        const next = rows.find((r) => r.state === 'next');
        const now = at();
        if (!current) throw new KeyRotationRefused('no current key: start the server once first');
        if (!next) {
          await makeKey(tx, opts.alg ?? current.alg, 'next');
          return { outcome: 'published', keys: (await listKeys(tx)).map(info), promotableAt: new Date(now.getTime() + publishLeadMs(deps.policy)) };
        }
        const promotableAt = new Date(next.published_at.getTime() + publishLeadMs(deps.policy));
        if (promotableAt > now && !opts.force && !opts.emergency)
          throw new KeyRotationRefused(
            `the next key ${next.kid} was published at ${next.published_at.toISOString()}; verifiers may not have it until ${promotableAt.toISOString()} (use --force to sign with it anyway)`,
          );
        // Emergency (a compromised key): it stops being published at once (A4, last line).
        if (opts.emergency) await deleteCurrentKey(tx, current.kid);
        else await retireKey(tx, current.kid, now, new Date(now.getTime() + retentionMs(deps.policy)));
        await activateKey(tx, next.kid, now);
        await makeKey(tx, opts.alg ?? next.alg, 'next');
        await pruneRetiredKeys(tx, now);
        return { outcome: 'promoted', keys: (await listKeys(tx)).map(info) };
      });
      await reload();
      return result;
    },

    async remove(kid) {
      const removed = await deps.db.transaction(async (tx) => {
        await lockKeys(tx);
        return deleteKey(tx, kid);
      });
      if (!removed) throw new KeyRotationRefused(`key ${kid} was not removed: it is unknown, it is the signing key, or it is the last key`);
      await reload();
    },
  };
}
