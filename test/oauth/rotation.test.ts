/**
 * Signing-key rotation (SECURITY.md A4, T10; OIDC Core §10.1.1). Two server instances
 * share one database; the operator rotates with the real CLI command; three verifiers
 * use `wxbridge/verify` (jose createRemoteJWKSet with its defaults) while tokens are
 * issued continuously by both instances. Time is not waited out: the CLI's clock is
 * moved past the publish lead, and for the "sign right after publish" variant the
 * verifiers' caches are seeded as if fetched 31 s ago, so jose's own 30 s cooldown and
 * 10 min cache age decide — exactly as in production.
 */
import type { Server } from 'node:http';
import { customFetch, decodeJwt, decodeProtectedHeader, jwksCache, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createOAuthFeature, type OAuthFeature } from '../../src/oauth/index.ts';
import { keyCommands } from '../../src/oauth/keys.cli.ts';
import { createKeysService } from '../../src/oauth/keys.service.ts';
import { defaultPolicy } from '../../src/oauth/policy.ts';
import { createSecretBox } from '../../src/security/secret-box.ts';
import { createVerifier, type Verifier } from '../../src/verify/index.ts';
import { basic, postForm, SECRETS, startOAuthApp, type OAuthTestApp } from './helpers.ts';

const POLL_MS = 200;
const LEAD_PASSED = 16 * 60_000;
let app: OAuthTestApp;
let b: OAuthFeature;
let bServer: Server;
let bUrl: string;

beforeAll(async () => {
  app = await startOAuthApp({ policy: { keysPollMs: POLL_MS } });
  b = createOAuthFeature({ ...app.deps, linking: app.linking, policy: { keysPollMs: POLL_MS } });
  await b.ready;
  const koa = createApp({ ...app.deps, features: [b] });
  bServer = await new Promise((resolve) => {
    const s = koa.listen(0, '127.0.0.1', () => resolve(s));
  });
  const a = bServer.address();
  bUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  await b?.stop?.();
  bServer?.close();
  await app?.stop();
});

async function cli(args: string[], clockOffsetMs = LEAD_PASSED): Promise<string[]> {
  const lines: string[] = [];
  await keyCommands['rotate-keys']!.run({ db: app.deps.db, secrets: app.deps.secrets, out: (l) => lines.push(l), now: () => Date.now() + clockOffsetMs }, args);
  return lines;
}

async function issue(base: string): Promise<string> {
  const r = await postForm(`${base}/oauth2/token`, { grant_type: 'client_credentials' }, { authorization: basic('card-backend', SECRETS.cardBackend) });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

function verifiers(n: number, seed?: JSONWebKeySet): { list: Verifier[]; fetches: () => number } {
  let fetches = 0;
  const counting: typeof fetch = (input, init) => {
    fetches++;
    return fetch(input, init);
  };
  const list = Array.from({ length: n }, () =>
    createVerifier({
      issuer: app.issuer,
      audience: 'card',
      // Only the transport is wrapped (to count) and, for the variant, the cache seeded: every jose default stays.
      jwks: { [customFetch]: counting, ...(seed ? { [jwksCache]: { jwks: seed, uat: Date.now() - 31_000 } } : {}) },
    }),
  );
  return { list, fetches: () => fetches };
}

/** Issues from both instances and verifies with every verifier until `until` holds; returns the counts. */
async function drill(vs: Verifier[], during: () => Promise<void>, until: (kidA: string, kidB: string) => boolean) {
  let issued = 0;
  let failures = 0;
  const kids = new Set<string>();
  const started = Date.now();
  let done = false;
  let rotated = false;
  while (!done) {
    const [ta, tb] = await Promise.all([issue(app.baseUrl), issue(bUrl)]);
    issued += 2;
    for (const t of [ta, tb]) {
      kids.add(decodeProtectedHeader(t).kid!);
      for (const v of vs) await v.verifyAccessToken(t).catch(() => failures++);
    }
    if (!rotated && issued >= 20) {
      rotated = true;
      await during();
    }
    done = rotated && until(decodeProtectedHeader(ta).kid!, decodeProtectedHeader(tb).kid!);
    if (Date.now() - started > 20_000) throw new Error('the rotation was not picked up');
  }
  return { issued, failures, kids, ms: Date.now() - started };
}

describe('rotation drill (SECURITY.md T10)', () => {
  it('When the operator rotates with the publish lead respected, then both instances switch within a poll and 3 default verifiers see 0 failures and never refetch', async () => {
    const { list, fetches } = verifiers(3);
    const next = app.oauth.keys.list().find((k) => k.state === 'next')!.kid;
    const r = await drill(list, async () => void (await cli([])), (a, bk) => a === next && bk === next);
    expect(r.failures).toBe(0);
    expect(r.kids.has(next)).toBe(true);
    expect(r.kids.size).toBe(2);
    // The new key was in the JWKS the verifiers fetched at their first token: no unknown kid, no refetch.
    expect(fetches()).toBe(3);
    console.log(`[rotation drill] ${r.issued} tokens from 2 instances × 3 verifiers, ${r.failures} failures, ${fetches()} JWKS fetches, ${r.ms} ms`);
  });

  it('When a key signs right after it is published (--force), then verifiers with a 31 s old cache refetch once on the unknown kid and still see 0 failures', async () => {
    const snapshot = JSON.parse(app.oauth.keys.jwks().body.toString()) as JSONWebKeySet;
    // Publish a brand-new next key and promote it at once: the verifiers' cache predates it.
    await app.oauth.keys.remove(app.oauth.keys.list().find((k) => k.state === 'next')!.kid);
    await app.oauth.keys.rotate(); // publishes a fresh next (nothing to promote)
    const fresh = app.oauth.keys.list().find((k) => k.state === 'next')!.kid;
    expect(snapshot.keys.some((k) => k.kid === fresh)).toBe(false);
    const { list, fetches } = verifiers(3, snapshot);
    const r = await drill(list, async () => void (await cli(['--force'], 0)), (a, bk) => a === fresh && bk === fresh);
    expect(r.failures).toBe(0);
    expect(fetches()).toBe(3); // one refetch per verifier, allowed because its last fetch was > 30 s ago
    console.log(`[rotation drill, sign-after-publish] ${r.issued} tokens, ${r.failures} failures, ${fetches()} JWKS refetches, ${r.ms} ms`);
  });
});

describe('signing keys (RFC 7517 §9.2, SECURITY.md A4)', () => {
  it('When keys are stored, then private keys are sealed with BRIDGE_SECRET_KEY and bound to their kid', async () => {
    const { rows } = await app.deps.db.query<{ kid: string; private_key_sealed: string; public_jwk: Record<string, unknown> }>('SELECT kid, private_key_sealed, public_jwk FROM signing_keys');
    for (const row of rows) {
      expect(row.private_key_sealed).toMatch(/^v1\./);
      expect(row.private_key_sealed).not.toContain('"d"');
      expect(row.public_jwk.d).toBeUndefined();
      expect(() => app.deps.secrets.open(row.private_key_sealed, 'signing-key:another-kid')).toThrow();
      expect(() => createSecretBox(Buffer.alloc(32, 7)).open(row.private_key_sealed, `signing-key:${row.kid}`)).toThrow();
    }
  });

  it('When a rotation comes before the next key has been published for the lead time, then it is refused', async () => {
    await expect(cli([], 0)).rejects.toThrow(/verifiers may not have it/);
  });

  it('When someone removes the signing key, then it is refused; the key table can never be emptied', async () => {
    const current = app.oauth.keys.list().find((k) => k.state === 'current')!.kid;
    await expect(app.oauth.keys.remove(current)).rejects.toThrow(/not removed/);
    for (const k of app.oauth.keys.list().filter((x) => x.state !== 'current')) await app.oauth.keys.remove(k.kid);
    expect(app.oauth.keys.list().map((k) => k.state)).toEqual(['current']);
    await expect(app.oauth.keys.remove(current)).rejects.toThrow();
    const { rows } = await app.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signing_keys');
    expect(rows[0]!.n).toBe(1);
    await app.oauth.keys.rotate(); // publishes a new next again
  });

  it('When EdDSA is chosen, then the next key is Ed25519, and after promotion tokens are EdDSA and still verify', async () => {
    await app.oauth.keys.remove(app.oauth.keys.list().find((k) => k.state === 'next')!.kid);
    await cli(['--alg', 'EdDSA'], 0); // publishes an EdDSA next
    await cli([]); // promotes it
    await app.oauth.keys.reload();
    const t = await issue(app.baseUrl);
    expect(decodeProtectedHeader(t).alg).toBe('EdDSA');
    const jwks = JSON.parse(app.oauth.keys.jwks().body.toString()) as JSONWebKeySet;
    expect(jwks.keys.find((k) => k.kid === decodeProtectedHeader(t).kid)).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect((await verifiers(1).list[0]!.verifyAccessToken(t)).sub).toBe('card-backend');
  });

  it('When a retired key has outlived every token it signed, then it is removed; an emergency rotation removes the old key at once', async () => {
    const later = createKeysService({ db: app.deps.db, secrets: app.deps.secrets, log: app.deps.log, now: () => Date.now() + 3 * 3600_000, policy: defaultPolicy });
    await later.start({ watch: false });
    await later.rotate(); // prunes previous keys past remove_after, promotes next
    expect(later.list().filter((k) => k.state === 'previous').length).toBe(1); // only the one just retired
    const current = later.list().find((k) => k.state === 'current')!.kid;
    await later.rotate({ emergency: true });
    expect(later.list().some((k) => k.kid === current)).toBe(false);
    await app.oauth.keys.reload();
    const t = await issue(app.baseUrl);
    expect(decodeJwt(t).iss).toBe(app.issuer);
    expect(JSON.parse(app.oauth.keys.jwks().body.toString()).keys.some((k: { kid: string }) => k.kid === current)).toBe(false);
  });
});
