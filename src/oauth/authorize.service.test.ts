/**
 * The authorization endpoint's pure checks (RFC 6749 §3.1, §4.1.2.1; RFC 9700 §4.1.3;
 * RFC 7636): exact redirect_uri matching as a property, the two error phases, and the
 * response URL keeping the registered URI byte for byte.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MerchantConfig } from '../config/index.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import { createAuthorizeService, responseUrl } from './authorize.service.ts';
import { createClientRegistry } from './clients.ts';
import { createCodesService } from './codes.service.ts';
import { pickParams } from './params.ts';

const REDIRECT = 'https://h5.card.example/auth/callback';
const merchants = [
  {
    id: 'card',
    name: 'Card',
    officialAccount: 'demo',
    clients: [{ clientId: 'card-h5', clientSecret: 'x'.repeat(12), redirectUris: [REDIRECT], grantTypes: ['authorization_code'], scopes: ['openid'], accessTokenTtl: 600 }],
  },
] as unknown as MerchantConfig[];

const clients = createClientRegistry(merchants);
const kv = createMemoryKv();
const service = createAuthorizeService({
  issuer: 'https://bridge.example',
  clients,
  codes: createCodesService({ kv, now: Date.now }),
  kv,
  idTokenHintSubject: () => Promise.resolve(null),
  linking: () => {
    throw new Error('not used');
  },
  officialAccounts: [],
});
const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const form = (over: Record<string, string | string[]> = {}) => ({
  response_type: 'code',
  client_id: 'card-h5',
  redirect_uri: REDIRECT,
  scope: 'openid',
  code_challenge: challenge,
  code_challenge_method: 'S256',
  ...over,
});

describe('redirect_uri matching (RFC 9700 §4.1.3: simple string comparison)', () => {
  // Small edits of the registered URI (insertions, deletions, replacements anywhere) are
  // what an attacker tries; every one must fail closed.
  const edits = fc
    .tuple(fc.nat({ max: REDIRECT.length }), fc.string({ maxLength: 3 }), fc.nat({ max: 3 }))
    .map(([i, insert, drop]) => REDIRECT.slice(0, i) + insert + REDIRECT.slice(i + drop));

  it('When redirect_uri is any string other than the registered one, then it is refused and never redirected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(edits, fc.string(), fc.constantFrom(`${REDIRECT}/`, REDIRECT.toUpperCase(), `${REDIRECT}?a=1`, `${REDIRECT}#x`)), async (uri) => {
        fc.pre(uri !== REDIRECT);
        try {
          await service.verifyTarget(form({ redirect_uri: uri }));
          return false;
        } catch (err) {
          return (err as { allowRedirect?: boolean }).allowRedirect === false;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('When the registered redirect_uri is given, then the target is verified', async () => {
    expect((await service.verifyTarget(form())).redirectUri).toBe(REDIRECT);
  });
});

describe('authorization request validation (RFC 6749 §4.1.1, RFC 7636 §4.3)', () => {
  let target: Awaited<ReturnType<typeof service.verifyTarget>>;
  beforeAll(async () => {
    target = await service.verifyTarget(form());
  });

  it.each([
    [{ code_challenge_method: 'plain' }, 'invalid_request'],
    [{ code_challenge: 'short' }, 'invalid_request'],
    [{ response_type: 'token' }, 'unsupported_response_type'],
    [{ scope: 'openid profile' }, 'invalid_scope'],
    [{ response_mode: 'fragment' }, 'invalid_request'],
    [{ nonce: ['a', 'b'] }, 'invalid_request'],
    [{ state: 'x'.repeat(513) }, 'invalid_request'],
  ])('When the request has %o, then %s, redirectable', (over, error) => {
    expect(() => service.validate(form(over), target)).toThrow(expect.objectContaining({ error, allowRedirect: true }));
  });

  it('When everything is right, then the request is kept with the challenge and scopes', () => {
    expect(service.validate(form({ state: 's', nonce: 'n' }), target)).toMatchObject({ clientId: 'card-h5', merchantId: 'card', codeChallenge: challenge, scopes: ['openid'], state: 's', nonce: 'n' });
  });
});

describe('responses and parameters', () => {
  it('When the registered URI has a query, then the response keeps it and appends ours (RFC 6749 §3.1.2)', () => {
    expect(responseUrl('https://a.example/cb?x=1', { code: 'c d', state: undefined, iss: 'https://i' })).toBe('https://a.example/cb?x=1&code=c+d&iss=https%3A%2F%2Fi');
    expect(responseUrl('https://A.example/cb', { error: 'access_denied' })).toBe('https://A.example/cb?error=access_denied');
  });

  it('When a parameter is repeated, then it is refused; unknown ones are ignored; empty ones are absent (RFC 6749 §3.1)', () => {
    expect(() => pickParams({ a: ['1', '2'] }, ['a'])).toThrow(expect.objectContaining({ error: 'invalid_request' }));
    expect(pickParams({ a: '1', b: ['x', 'y'], c: '' }, ['a', 'c'])).toEqual({ a: '1' });
  });
});
