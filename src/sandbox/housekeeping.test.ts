/** Bounded memory for long-running sandboxes (unit, no I/O). */
import { describe, expect, it } from 'vitest';
import { appendCapped, pruneState } from './housekeeping.ts';
import { createState } from './state.ts';

describe('housekeeping', () => {
  it('When a log passes its cap plus slack, then only the newest cap entries remain', () => {
    const list: number[] = [];
    for (let i = 1; i <= 111; i += 1) appendCapped(list, i, 100);
    expect(list).toHaveLength(100);
    expect(list[0]).toBe(12);
    expect(list.at(-1)).toBe(111);
  });

  it('When codes and tokens are a day past their end, then they are forgotten, and younger ones kept', () => {
    const state = createState();
    const now = 10 * 86_400_000;
    state.codes.set('old', { code: 'old', appId: 'a', userId: 'u', scope: 'snsapi_base', snapshot: false, issuedAt: 0, expiresAt: now - 86_400_001 });
    state.codes.set('new', { code: 'new', appId: 'a', userId: 'u', scope: 'snsapi_base', snapshot: false, issuedAt: 0, expiresAt: now - 1000 });
    state.accountTokens.set('t', { token: 't', appId: 'a', kind: 'classic', issuedAt: 0, expiresAt: now, invalidAfter: now - 2 * 86_400_000 });
    pruneState(state, now);
    expect([...state.codes.keys()]).toEqual(['new']);
    expect(state.accountTokens.size).toBe(0);
  });
});
