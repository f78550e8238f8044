/**
 * Fuzzing the return-target validator (src/linking/next-path.ts; RFC 9700 §4.11, open
 * redirectors) with the time and output-size oracles: whatever it accepts must, once a
 * browser resolves it against our origin, stay on our origin and be the very path given.
 * Inputs: arbitrary strings, URL-ish pieces with the known tricks (`//`, `/\`, encoded
 * slashes, control characters, schemes, userinfo), and mutations of good paths.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeNextPath } from '../../src/linking/next-path.ts';
import { RUNS, underOracle, type OracleStats } from './oracles.ts';

const ORIGIN = 'https://bridge.bank.example';
const pieces = ['/', '//', '\\', '/\\', '%2f', '%2F', '%5c', '%00', '\t', '\n', '\r', ' ', '@', ':', 'evil.example', 'https:', 'javascript:', '#', '?', '..', '.', '%2e%2e', '\u2028', '\u00a0', '\u3000', 'link', 'card', '?next=//x', '%'];
const urlish = fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 12 }).map((a) => a.join(''));
const goodPath = fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`));
const mutatedGood = fc.tuple(goodPath, fc.nat(40), fc.constantFrom(...pieces)).map(([p, i, piece]) => p.slice(0, i % (p.length + 1)) + piece + p.slice(i % (p.length + 1)));
const anyInput = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), urlish, goodPath, mutatedGood, fc.string({ maxLength: 3000 }));

describe('fuzz: return-target validation (next-path)', () => {
  it('When any string is offered, then an accepted one is a same-origin relative path, returned unchanged, resolving to the same path in a browser', () => {
    const stats: OracleStats = { worstMs: 0, inputs: 0 };
    let accepted = 0;
    fc.assert(
      fc.property(anyInput, (input) => {
        const out = underOracle(stats, input, () => safeNextPath(input), []);
        if (out === null) return;
        if (out instanceof Error) throw out;
        accepted++;
        // Output-size oracle: the validator never grows or rewrites what it accepts.
        expect(out).toBe(input);
        expect(out.length).toBeLessThanOrEqual(1024);
        expect(out[0]).toBe('/');
        expect(out[1]).not.toBe('/');
        // What URL parsers strip or fold (ASCII controls, space, backslash) never gets through;
        // other Unicode spaces are percent-encoded by them, so they are harmless in a path.
        // eslint-disable-next-line no-control-regex -- control characters are what is checked
        expect(out).not.toMatch(/[\\\u0000-\u0020\u007f]/);
        // What a browser (WHATWG URL) does with it: same origin, no fragment, the same path.
        const resolved = new URL(out, ORIGIN);
        expect(resolved.origin).toBe(ORIGIN);
        expect(resolved.hash).toBe('');
        expect(resolved.username + resolved.password).toBe('');
        expect(`${resolved.pathname}${resolved.search}`.startsWith('//')).toBe(false);
        // And after one proxy-style decoding of the path, still no protocol-relative target.
        let decoded = out;
        try {
          decoded = decodeURIComponent(out);
        } catch {
          /* undecodable input stays as is */
        }
        expect(decoded.startsWith('//') || decoded.startsWith('/\\')).toBe(false);
      }),
      { numRuns: RUNS * 4 },
    );
    expect(stats.inputs).toBeGreaterThanOrEqual(RUNS * 4);
    // The generator must actually exercise the accepting side, or the property proves nothing.
    expect(accepted).toBeGreaterThan(RUNS / 4);
  });

  it('When a value is not a string (arrays from repeated query parameters, numbers, objects), then it is refused', () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(goodPath, { minLength: 1, maxLength: 3 }), fc.integer(), fc.object(), fc.constant(null), fc.constant(undefined)), (v) => {
        expect(safeNextPath(v)).toBeNull();
      }),
      { numRuns: RUNS },
    );
  });

  it('When a good path gets any of the known open-redirect prefixes, then it is refused', () => {
    const tricks = ['//', '/\\', '/%2f', '/%2F', '/%5c', '/%5C', '/\t/', '/\n/', '\\\\', 'https://', '//evil.example', ' /'];
    fc.assert(
      fc.property(fc.constantFrom(...tricks), goodPath, (trick, p) => {
        expect(safeNextPath(`${trick}evil.example${p}`)).toBeNull();
      }),
      { numRuns: RUNS },
    );
  });
});

describe('regressions found by this fuzz target', () => {
  it('When dot segments would fold the path into `//host` (`/.//evil`), then it is refused', () => {
    for (const v of ['/.///a', '/.//evil.example', '/././/evil.example/x', '/a/..//evil.example', '/%2e//evil.example']) expect(safeNextPath(v)).toBeNull();
    expect(safeNextPath('/link/card/./x')).toBe('/link/card/./x');
  });
});
