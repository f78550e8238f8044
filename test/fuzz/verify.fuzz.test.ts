/**
 * Fuzzing `wxbridge/verify` (src/verify/index.ts; RFC 8725, RFC 9068 §4; SECURITY.md A2, A3):
 * random mutations of a valid access token — a byte of any segment, a header claim (`alg`
 * none/HS256 with the public key as secret, `typ`, `kid`, `jku`/`jwk`), a payload claim
 * (`iss`, `aud`, `exp`, `nbf`) re-signed by an attacker's key, re-encodings, extra segments
 * — are refused with a jose error (the documented failure: branch on `code`), within 50 ms,
 * and anything accepted is exactly the token we signed.
 */
import fc from 'fast-check';
import { createLocalJWKSet, errors, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../../src/verify/index.ts';
import { RUNS, underOracleAsync, type OracleStats } from './oracles.ts';

const ISSUER = 'https://bridge.bank.example';
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

let verifier: Verifier;
let token: string;
let ours: CryptoKey;
let attacker: CryptoKey;
let publicJwk: JWK;
const claims = () => ({ iss: ISSUER, sub: 'sub-1', aud: 'card', client_id: 'card-h5', scope: 'openid', jti: 'jti-1', account: 'acct-1' });

async function sign(key: CryptoKey, kid: string, over: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...claims(), ...over })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid, ...header })
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(key);
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  ours = pair.privateKey;
  attacker = (await generateKeyPair('ES256')).privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwks: JSONWebKeySet = { keys: [publicJwk] };
  verifier = createVerifier({ issuer: ISSUER, audience: 'card', keys: createLocalJWKSet(jwks) });
  token = await sign(ours, 'k1');
});

const mutateAt = (s: string, i: number, c: string) => s.slice(0, i % (s.length + 1)) + c + s.slice((i % (s.length + 1)) + 1);
/**
 * The very token we signed: the signing input (header.payload) unchanged to the byte, and a
 * signature segment that decodes to the same bytes (base64 decoders tolerate a stray space
 * or non-canonical trailing bits; that changes nothing that is signed).
 */
const sameToken = (t: string) => {
  const a = t.split('.');
  const b = token.split('.');
  return a.length === 3 && a[0] === b[0] && a[1] === b[1] && Buffer.from(a[2]!, 'base64url').equals(Buffer.from(b[2]!, 'base64url'));
};

describe('fuzz: the JWT verify wrapper (wxbridge/verify)', () => {
  it('When a valid token is mutated byte-wise, then it is refused with a jose error in under 50 ms, unless it decodes to the very same token', async () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    const mutations = fc.oneof(
      fc.tuple(fc.nat(2000), fc.constantFrom(...B64URL.split(''), '.', '=', '+', '/', ' ', '%')).map(([i, c]) => mutateAt(token, i, c)),
      fc.tuple(fc.nat(2000), fc.nat(2000)).map(([i, j]) => token.slice(0, Math.min(i, j) % token.length) + token.slice(Math.max(i, j) % token.length)),
      fc.constantFrom('', '.', '..', '...', 'a.b.c', 'a.b.c.d.e').map((x) => x),
      fc.string({ maxLength: 200 }).map((s) => `${token}${s}`),
      fc.nat(60_000).map((n) => `${token.split('.')[0]}.${'A'.repeat(n)}.${token.split('.')[2]}`),
      fc.string({ maxLength: 400 }),
    );
    await fc.assert(
      fc.asyncProperty(mutations, async (t) => {
        const out = await underOracleAsync(stats, t.slice(0, 120), () => verifier.verifyAccessToken(t), [errors.JOSEError]);
        if (out instanceof Error) {
          expect(typeof (out as errors.JOSEError).code).toBe('string');
          return;
        }
        expect(sameToken(t)).toBe(true);
        expect(out).toMatchObject(claims());
      }),
      { numRuns: RUNS * 2 },
    );
    expect(stats.inputs).toBeGreaterThanOrEqual(RUNS * 2);
  });

  it('When header or claims are forged (alg none/HS256, typ, kid, jku/jwk, iss, aud, exp, nbf, missing claims) and re-signed, then every one is refused', async () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    const [h, p] = token.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const claimEdits = fc.constantFrom<Record<string, unknown>>(
      { iss: `${ISSUER}/` },
      { iss: 'https://evil.example' },
      { aud: 'power' },
      { aud: ['power'] },
      { exp: now - 10 },
      { nbf: now + 600 },
      { iat: 'x' },
      { sub: undefined },
      { jti: undefined },
      { client_id: undefined },
      {},
    );
    const headerEdits = fc.constantFrom<Record<string, unknown>>(
      { typ: 'JWT' },
      { typ: 'jwt' },
      { typ: undefined },
      { kid: 'k2' },
      { jku: 'https://evil.example/jwks' },
      { jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } },
      { crit: ['exp'] },
      {},
    );
    const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    const forged = fc.oneof(
      // Any edit, signed by someone else's key (under our kid or theirs).
      fc.tuple(claimEdits, headerEdits, fc.boolean()).map(async ([c, hd, sameKid]) => {
        const key = attacker;
        return new SignJWT(strip({ ...payload, ...c })).setProtectedHeader(strip({ ...header, ...hd, alg: 'ES256', kid: sameKid ? 'k1' : 'k2' }) as { alg: string }).sign(key);
      }),
      // Claims edited but our signature kept (a re-encoded payload).
      fc.tuple(claimEdits, headerEdits).map(async ([c, hd]) => `${b64(strip({ ...header, ...hd }))}.${b64(strip({ ...payload, ...c }))}.${token.split('.')[2]}`),
      // alg none, and HS256 keyed with our public key (the classic confusion).
      fc.constantFrom('none', 'HS256', 'RS256', 'ES384', 'EdDSA').map(async (alg) => {
        const body = `${b64({ ...header, alg })}.${b64(payload)}`;
        if (alg !== 'HS256') return `${body}.`;
        const { createHmac } = await import('node:crypto');
        return `${body}.${createHmac('sha256', JSON.stringify(publicJwk)).update(body).digest('base64url')}`;
      }),
      // Our own key, but the edits make it a token we never issue.
      fc.tuple(claimEdits, headerEdits).filter(([c, hd]) => Object.keys(c).length + Object.keys(hd).length > 0).map(async ([c, hd]) => {
        const signedHeader = strip({ ...header, ...hd, alg: 'ES256' }) as { alg: string };
        return new SignJWT(strip({ ...payload, ...c })).setProtectedHeader(signedHeader).sign(ours);
      }),
    );
    await fc.assert(
      fc.asyncProperty(forged, async (pending) => {
        const t = await pending.catch(() => null);
        if (t === null) return; // jose itself refused to sign the combination (e.g. crit)
        fc.pre(!sameToken(t));
        const out = await underOracleAsync(stats, t.slice(0, 120), () => verifier.verifyAccessToken(t), [errors.JOSEError]);
        const decoded = JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
        // A token we could have issued ourselves (our key, only an unknown `jku`/`jwk` header added) may pass:
        // those headers are never followed, which is the point. Everything else must fail.
        const harmless = !(out instanceof Error) && (decoded.jku !== undefined || decoded.jwk !== undefined);
        if (!harmless) expect(out).toBeInstanceOf(errors.JOSEError);
      }),
      { numRuns: RUNS },
    );
  });

  it('When the original token is offered, then it verifies (the oracle reaches the accepting side)', async () => {
    await expect(verifier.verifyAccessToken(token)).resolves.toMatchObject(claims());
    await expect(verifier.verifyAccessToken(await sign(ours, 'k1'))).resolves.toMatchObject({ account: 'acct-1' });
  });
});
