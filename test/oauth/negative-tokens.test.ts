/**
 * SECURITY.md T11, token side (RFC 8725 §2.1, §3.1–3.12; RFC 9068 §4): every forgery is
 * refused both by the merchant helper `wxbridge/verify` and by wxbridge itself
 * (introspection, merchant API). Forgeries are signed with the server's real key where
 * that isolates the one property under test.
 */
import { createServer, type Server } from 'node:http';
import { customFetch, decodeJwt, decodeProtectedHeader, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../../src/verify/index.ts';
import { basic, clientCredentials, postForm, SECRETS, startOAuthApp, type OAuthTestApp } from './helpers.ts';

let app: OAuthTestApp;
let verifier: Verifier;
let jwksFetches = 0;
let real: string;
let realClaims: JWTPayload;
let attacker: Server;
let attackerHits = 0;
let attackerUrl = '';

beforeAll(async () => {
  app = await startOAuthApp();
  const counting: typeof fetch = (input, init) => {
    jwksFetches++;
    return fetch(input, init);
  };
  verifier = createVerifier({ issuer: app.issuer, audience: 'card', jwks: { [customFetch]: counting } });
  real = await clientCredentials(app, 'card-backend', SECRETS.cardBackend);
  realClaims = decodeJwt(real);
  attacker = createServer((_req, res) => {
    attackerHits++;
    res.end('{"keys":[]}');
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  const a = attacker.address();
  attackerUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/jwks.json`;
}, 180_000); // an embedded Postgres boots slowly on a busy machine
afterAll(async () => {
  attacker?.close();
  await app?.stop();
});

/** Signed with the server's own current key: only what the test changes is wrong. */
async function withRealKey(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const k = app.oauth.keys.signingKey();
  return new SignJWT(claims).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'at+jwt', ...header }).sign(k.privateKey);
}

function unsigned(claims: JWTPayload, header: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc(header)}.${enc(claims)}.`;
}

const without = (k: string): JWTPayload => Object.fromEntries(Object.entries(realClaims).filter(([key]) => key !== k));

/** Refused by the helper, by introspection, and by the merchant API check. */
async function refusedEverywhere(token: string): Promise<void> {
  await expect(verifier.verifyAccessToken(token)).rejects.toHaveProperty('code');
  const r = await postForm(`${app.baseUrl}/oauth2/introspect`, { token }, { authorization: basic('card-backend', SECRETS.cardBackend) });
  expect(await r.json()).toEqual({ active: false });
  await expect(app.oauth.merchantAuth.authenticate(`Bearer ${token}`, 'bindings:read')).rejects.toMatchObject({ error: 'invalid_token', status: 401 });
}

describe('token forgeries (RFC 8725, RFC 9068 §4, SECURITY.md T11)', () => {
  it('When a genuine token is checked, then the helper and the server accept it (the baseline the forgeries differ from)', async () => {
    expect((await verifier.verifyAccessToken(real)).client_id).toBe('card-backend');
    expect((await app.oauth.merchantAuth.authenticate(`Bearer ${real}`, 'bindings:read')).merchantId).toBe('card');
  });

  it('When alg is none, then it is refused (RFC 8725 §2.1, §3.1)', async () => {
    await refusedEverywhere(unsigned(realClaims, { alg: 'none', typ: 'at+jwt', kid: decodeProtectedHeader(real).kid }));
  });

  it('When HS256 is signed with the public key (algorithm confusion, CVE-2015-9235), then it is refused', async () => {
    const pub = JSON.parse((await (await fetch(`${app.baseUrl}/.well-known/jwks.json`)).text())).keys[0];
    const secrets = [new TextEncoder().encode(JSON.stringify(pub)), new TextEncoder().encode(await exportSPKI((await app.oauth.keys.publicKey(pub.kid))!.key))];
    for (const secret of secrets) {
      await refusedEverywhere(await new SignJWT(realClaims).setProtectedHeader({ alg: 'HS256', kid: pub.kid, typ: 'at+jwt' }).sign(secret));
    }
  });

  it('When the signature is altered, then it is refused', async () => {
    const [h, p, s] = real.split('.');
    const flipped = `${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`;
    await refusedEverywhere(`${h}.${p}.${flipped}`);
  });

  it.each([
    ['iss', { iss: 'https://evil.example' }],
    ['aud', { aud: 'power' }],
    ['exp (expired)', { exp: Math.floor(Date.now() / 1000) - 10 }],
  ])('When %s is wrong, then it is refused (RFC 8725 §3.8, §3.9; RFC 9068 §4)', async (_l, change) => {
    const t = await withRealKey({ ...realClaims, ...change });
    if ('aud' in change) {
      // aud=power is refused by card's verifier and introspects inactive for card; power's own API check is another merchant.
      await expect(verifier.verifyAccessToken(t)).rejects.toHaveProperty('code', 'ERR_JWT_CLAIM_VALIDATION_FAILED');
      return;
    }
    await refusedEverywhere(t);
  });

  it.each(['exp', 'iat', 'sub', 'jti', 'client_id', 'iss', 'aud'])('When %s is missing, then it is refused (RFC 9068 §2.2 REQUIRED)', async (claim) => {
    await refusedEverywhere(await withRealKey(without(claim)));
  });

  it('When the typ is not at+jwt (an ID token, a plain JWT, none), then it is refused as an access token (RFC 8725 §3.11, §3.12)', async () => {
    const idToken = await app.oauth.tokens.issueIdToken({ clientId: 'card', sub: 'x', authTime: Math.floor(Date.now() / 1000), ttlSeconds: 60 });
    await expect(verifier.verifyAccessToken(idToken)).rejects.toHaveProperty('code');
    await refusedEverywhere(await withRealKey(realClaims, { typ: 'JWT' }));
    const k = app.oauth.keys.signingKey();
    await refusedEverywhere(await new SignJWT(realClaims).setProtectedHeader({ alg: k.alg, kid: k.kid }).sign(k.privateKey));
    // And the other way round: an access token is no ID token.
    await expect(verifier.verifyIdToken(real, { clientId: 'card' })).rejects.toHaveProperty('code');
  });

  it('When tokens name unknown kids, then they are refused without a refetch storm (RFC 8725 §3.10, OIDC Core §10.1.1)', async () => {
    const rogue = await generateKeyPair('ES256');
    const before = jwksFetches;
    for (let i = 0; i < 25; i++) {
      const t = await new SignJWT(realClaims).setProtectedHeader({ alg: 'ES256', kid: `unknown-${i}`, typ: 'at+jwt' }).sign(rogue.privateKey);
      await expect(verifier.verifyAccessToken(t)).rejects.toHaveProperty('code');
      await expect(app.oauth.merchantAuth.authenticate(`Bearer ${t}`, 'bindings:read')).rejects.toMatchObject({ error: 'invalid_token' });
    }
    // At most one reload inside jose's 30 s cooldown, however many unknown kids arrive.
    expect(jwksFetches - before).toBeLessThanOrEqual(1);
  });

  it('When jku, x5u or an embedded jwk point at an attacker key, then they are ignored (RFC 8725 §3.10, ASVS 9.1.3)', async () => {
    const rogue = await generateKeyPair('ES256');
    const jwk = await exportJWK(rogue.publicKey);
    for (const header of [{ jku: attackerUrl }, { x5u: attackerUrl }, { jwk }, { jku: attackerUrl, jwk, kid: 'attacker' }]) {
      await refusedEverywhere(await new SignJWT(realClaims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...header }).sign(rogue.privateKey));
    }
    expect(attackerHits).toBe(0);
  });

  it('When an ID token is verified, then aud must be the client and the nonce must match', async () => {
    const idToken = await app.oauth.tokens.issueIdToken({ clientId: 'card-h5', sub: 'ps_1', authTime: Math.floor(Date.now() / 1000), ttlSeconds: 60, nonce: 'n1' });
    expect((await verifier.verifyIdToken(idToken, { clientId: 'card-h5', nonce: 'n1' })).sub).toBe('ps_1');
    await expect(verifier.verifyIdToken(idToken, { clientId: 'card-h5', nonce: 'n2' })).rejects.toHaveProperty('code', 'ERR_WXBRIDGE_NONCE_MISMATCH');
    await expect(verifier.verifyIdToken(idToken, { clientId: 'power-h5', nonce: 'n1' })).rejects.toHaveProperty('code');
  });

  it('When a user token (with a binding) is used on the merchant API, then it is refused: only client_credentials tokens are backend credentials', async () => {
    const user = await withRealKey({ ...realClaims, sub: 'ps_someone', binding_id: '00000000-0000-0000-0000-000000000000', account: 'A1' });
    await expect(app.oauth.merchantAuth.authenticate(`Bearer ${user}`, 'bindings:read')).rejects.toMatchObject({ error: 'invalid_token' });
  });
});

it('When a client asks for another merchant’s token audience, then it cannot get one: aud is always its own merchant', async () => {
  const t = await clientCredentials(app, 'power-backend', SECRETS.powerBackend);
  expect(decodeJwt(t).aud).toBe('power');
  await expect(verifier.verifyAccessToken(t)).rejects.toHaveProperty('code', 'ERR_JWT_CLAIM_VALIDATION_FAILED');
});
