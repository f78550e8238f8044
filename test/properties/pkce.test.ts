/**
 * PKCE as a property (RFC 7636 §4.1, §4.6; RFC 9700 §2.1.1; SECURITY.md A3), end to end over
 * HTTP: for any verifier of the allowed alphabet and length, the S256 challenge made from it
 * round-trips — the code is exchanged with exactly that verifier — and any other verifier
 * (one character changed, cut, extended, re-cased, another random one, the challenge itself,
 * outside the alphabet or length) is refused with invalid_grant without burning the code.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFlow } from '../oauth/flow.ts';
import { startOAuthApp, type OAuthTestApp } from '../oauth/helpers.ts';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 20);
const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const verifierArb = fc.stringMatching(/^[A-Za-z0-9\-._~]{43,128}$/);

let app: OAuthTestApp;
let flow: ReturnType<typeof createFlow>;
beforeAll(async () => {
  app = await startOAuthApp();
  flow = createFlow(app);
}, 180_000);
afterAll(async () => {
  await app?.stop();
});

/** Ways to be almost, but not, the right verifier. */
const wrongFor = (v: string) =>
  fc.oneof(
    fc.tuple(fc.nat(v.length - 1), fc.constantFrom(...ALPHABET.split(''))).map(([i, c]) => v.slice(0, i) + c + v.slice(i + 1)),
    fc.nat(v.length - 1).map((n) => v.slice(0, n)),
    fc.constantFrom(...ALPHABET.split('')).map((c) => v + c),
    fc.constant(v.toUpperCase()),
    fc.constant(` ${v}`),
    fc.constant(s256(v)),
    verifierArb,
    fc.string({ maxLength: 200 }),
    fc.constant(`${v}${'a'.repeat(129 - v.length)}`),
  );

describe('property: PKCE S256', () => {
  it('When a code is bound to the S256 challenge of any verifier, then only that exact verifier exchanges it, and a wrong one does not burn it', async () => {
    const { ua } = flow.user(['6222000011112222']);
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        verifierArb.chain((v) => fc.tuple(fc.constant(v), fc.array(wrongFor(v), { minLength: 1, maxLength: 2 }))),
        async ([verifier, wrongs]) => {
          const cb = await flow.codeFor(ua, s256(verifier));
          const code = cb.searchParams.get('code')!;
          for (const w of wrongs.filter((x) => x !== verifier)) {
            const r = await flow.exchange(code, w);
            expect(r.status).toBe(400);
            expect(await r.json()).toMatchObject({ error: w.length === 0 ? expect.any(String) : 'invalid_grant' });
            refused++;
          }
          const ok = await flow.exchange(code, verifier);
          expect(ok.status).toBe(200);
          expect(await ok.json()).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
        },
      ),
      { numRuns: RUNS },
    );
    expect(refused).toBeGreaterThanOrEqual(RUNS);
  }, 120_000);

  it('When no code_verifier is sent, or the challenge method is not S256, then the code is refused / never issued', async () => {
    const { ua } = flow.user(['6222000011113333']);
    const verifier = 'v'.repeat(43);
    const cb = await flow.codeFor(ua, s256(verifier));
    const r = await flow.exchange(cb.searchParams.get('code')!, undefined);
    expect(r.status).toBe(400);
    const plain = await ua.get(flow.authorizeUrl(flow.cardRequest(verifier, { code_challenge_method: 'plain' })));
    expect(plain.headers.get('location') ?? '').not.toMatch(/[?&]code=/);
  });
});
