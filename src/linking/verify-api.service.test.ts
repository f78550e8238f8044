import { describe, expect, it } from 'vitest';
import { accountKeyOf, normalizeAccountValue } from './verify-api.service.ts';

const key = Buffer.from('test-account-key');

describe('verify-api account key: one account however it is typed', () => {
  it.each([
    '6222 0210 1234 5678',
    '6222-0210-1234-5678',
    '6222.0210.1234.5678',
    '６２２２０２１０１２３４５６７８', // full-width digits (an IME)
    '6222\u00a00210\u20031234\u30005678', // no-break, em and ideographic spaces
    '6222\u200b0210\u00ad12345678', // zero-width space, soft hyphen
    '6222\u201302101234\u20105678', // en dash, hyphen
  ])('When the card is typed as %j, then it normalises to the bare number', (v) => {
    expect(normalizeAccountValue(v)).toBe('6222021012345678');
  });

  it('When letters differ only in case or width, then they are one account; other values stay apart', () => {
    expect(normalizeAccountValue('ab-12 c')).toBe('AB12C');
    expect(normalizeAccountValue('ＡＢ１２ｃ')).toBe('AB12C');
    expect(accountKeyOf(key, { card: '6222 0210 1234 5678' })).toBe(accountKeyOf(key, { card: '6222021012345678' }));
    expect(accountKeyOf(key, { card: '6222021012345678' })).not.toBe(accountKeyOf(key, { card: '6222021012345679' }));
    expect(accountKeyOf(key, { card: '1' })).not.toBe(accountKeyOf(key, { account: '1' }));
  });
});
