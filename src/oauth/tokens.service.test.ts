/**
 * Access tokens as issued and as checked by wxbridge itself (RFC 9068 §2, §4; RFC 8725
 * §3.1, §3.10, §3.11), with an in-memory key set; revocations in the database (PGlite, or
 * PostgreSQL with DATABASE_URL).
 */
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { primaryDb } from '../../test/helpers/stores.ts';
import type { Db } from '../store/db.ts';
import { migrate } from '../store/migrate.ts';
import type { KeysService } from './keys.service.ts';
import { createTokensService, type TokensService } from './tokens.service.ts';

let tokens: TokensService;
let key: { privateKey: CryptoKey; publicKey: CryptoKey };
let now = Date.now();
let db: Db;

beforeAll(async () => {
  key = await generateKeyPair('ES256');
  const keys = {
    signingKey: () => ({ kid: 'k1', alg: 'ES256' as const, privateKey: key.privateKey }),
    publicKey: (kid: string) => (kid === 'k1' ? { alg: 'ES256' as const, key: key.publicKey } : undefined),
    algorithms: () => ['ES256' as const],
  } as unknown as KeysService;
  db = await primaryDb.create();
  await migrate(db);
  tokens = createTokensService({ issuer: 'https://bridge.example', keys, db, now: () => now });
});
afterAll(async () => {
  await primaryDb.dispose(db);
});

describe('access tokens (RFC 9068)', () => {
  it('When a user token is issued, then it carries the binding claims and verifies', async () => {
    const { token, claims } = await tokens.issueAccessToken({
      merchantId: 'card',
      clientId: 'card-h5',
      sub: 'ps_1',
      scopes: ['openid'],
      ttlSeconds: 600,
      authTime: 1,
      amr: ['verify-api'],
      binding: { id: 'b1', accountId: 'A1', accountDisplay: '**** 1' },
    });
    expect(claims).toMatchObject({ aud: 'card', client_id: 'card-h5', account: 'A1', account_display: '**** 1', binding_id: 'b1', amr: ['verify-api'] });
    expect(claims.exp - claims.iat).toBe(600);
    expect(await tokens.verifyAccessToken(token)).toEqual(claims);
  });

  it('When the token has expired on our clock, then it is refused', async () => {
    const { token } = await tokens.issueAccessToken({ merchantId: 'card', clientId: 'c', sub: 'c', scopes: [], ttlSeconds: 60 });
    now += 61_000;
    try {
      await expect(tokens.verifyAccessToken(token)).rejects.toMatchObject({ error: 'invalid_token' });
    } finally {
      now -= 61_000;
    }
  });

  it('When kid is unknown or absent, or the alg is not the key’s, then it is refused without any lookup', async () => {
    const claims = { iss: 'https://bridge.example', sub: 'c', aud: 'card', client_id: 'c', jti: 'j', scope: '' };
    const mk = (header: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...header }).setIssuedAt().setExpirationTime('1m').sign(key.privateKey);
    await expect(tokens.verifyAccessToken(await mk({ kid: "k1' OR 1=1 --" }))).rejects.toMatchObject({ error: 'invalid_token' });
    await expect(tokens.verifyAccessToken(await mk({}))).rejects.toMatchObject({ error: 'invalid_token' });
    expect((await tokens.verifyAccessToken(await mk({ kid: 'k1' }))).sub).toBe('c');
  });

  it('When a token is revoked, then its jti is remembered until it would have expired, and twice is harmless', async () => {
    await tokens.revokeAccessToken('jti-1', Math.floor(now / 1000) + 60);
    await tokens.revokeAccessToken('jti-1', Math.floor(now / 1000) + 60);
    expect(await tokens.isRevoked('jti-1')).toBe(true);
    expect(await tokens.isRevoked('jti-2')).toBe(false);
    await tokens.revokeAccessToken('jti-old', Math.floor(now / 1000) - 1);
    expect(await tokens.isRevoked('jti-old')).toBe(false);
    now += 120_000;
    try {
      expect(await tokens.isRevoked('jti-1')).toBe(false);
      // A later revocation prunes what has expired.
      await tokens.revokeAccessToken('jti-3', Math.floor(now / 1000) + 60);
      const { rows } = await db.query<{ jti: string }>('SELECT jti FROM revoked_access_tokens ORDER BY jti');
      expect(rows.map((r) => r.jti)).toEqual(['jti-3']);
    } finally {
      now -= 120_000;
    }
  });
});
