import { describe, expect, it } from 'vitest';
import { safeNextPath } from './next-path.ts';

describe('safeNextPath (RFC 9700 §4.11 open redirectors)', () => {
  it.each(['/', '/link/card', '/oauth2/authorize/resume?req=abc&x=1', '/a/b%20c', '/demo/app?next=%2Fx'])(
    'When next is the same-origin path %s, then it is kept as is',
    (v) => expect(safeNextPath(v)).toBe(v),
  );

  it.each([
    'https://evil.example/',
    '//evil.example',
    '///evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    ' /x',
    'javascript:alert(1)',
    'evil.example',
    '',
    '/%2F%2Fevil.example',
    '/%5cevil.example',
    '/x#frag',
    '/x\u2028',
    'http:/evil.example',
    `/${'a'.repeat(2000)}`,
  ])('When next is %j, then it is refused', (v) => expect(safeNextPath(v)).toBeNull());

  it('When next is not a string (an array from repeated params), then it is refused', () => {
    expect(safeNextPath(['/a', '/b'])).toBeNull();
    expect(safeNextPath(undefined)).toBeNull();
  });
});
