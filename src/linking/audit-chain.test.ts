import { describe, expect, it } from 'vitest';
import { auditHash, canonicalJson, GENESIS_HASH, type AuditContent } from './audit-chain.ts';

const row = (over: Partial<AuditContent> = {}): AuditContent => ({
  at: '2026-01-01T00:00:00.000Z',
  actor: 'user:1',
  action: 'binding.linked',
  merchantId: 'card',
  identityId: null,
  bindingId: null,
  source: 'web',
  detail: { proof: 'oidc', n: 1 },
  ...over,
});

describe('audit hash chain', () => {
  it('When keys come back in another order (JSONB), then the canonical form and hash are the same', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    expect(auditHash(GENESIS_HASH, row({ detail: { n: 1, proof: 'oidc' } }))).toBe(auditHash(GENESIS_HASH, row()));
  });

  it('When any field or the previous hash changes, then the hash changes', () => {
    const h = auditHash(GENESIS_HASH, row());
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(auditHash(GENESIS_HASH, row({ actor: 'user:2' }))).not.toBe(h);
    expect(auditHash(GENESIS_HASH, row({ detail: { proof: 'oidc', n: 2 } }))).not.toBe(h);
    expect(auditHash('1'.repeat(64), row())).not.toBe(h);
  });
});
