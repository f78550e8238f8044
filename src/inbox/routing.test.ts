/**
 * Intent routing (DESIGN.md "Intents"): merchant keywords and menu keys, built-in intents,
 * exact before contained, longest keyword wins, one official account's merchants only.
 */
import { describe, expect, it } from 'vitest';
import type { MerchantConfig } from '../config/index.ts';
import { createIntentRouter } from './routing.ts';

const merchant = (id: string, account: string, intents?: Partial<NonNullable<MerchantConfig['intents']>>): MerchantConfig =>
  ({
    id,
    name: id,
    officialAccount: account,
    ...(intents ? { intents: { url: 'https://m.example/i', timeoutMs: 1000, keywords: {}, menuKeys: {}, ...intents } } : {}),
  }) as MerchantConfig;

const card = merchant('card', 'demo', { keywords: { 余额: 'balance', 账单: 'bill', 信用卡账单: 'card_bill', 绑卡: 'bind' }, menuKeys: { MY_BILL: 'bill', MY_ACCOUNTS: 'my_accounts' } });
const power = merchant('power', 'demo', { keywords: { 电费: 'power_bill', 余额: 'power_balance' } });
const elsewhere = merchant('gas', 'other', { keywords: { 燃气: 'gas' } });
const router = createIntentRouter([card, power, elsewhere]);

describe('intent routing', () => {
  it('When the text equals a keyword, then the first merchant declaring it gets the intent', () => {
    expect(router.byText('demo', ' 余额 ')).toEqual({ kind: 'intent', intent: 'balance', merchant: card });
    expect(router.byText('demo', '电费')).toEqual({ kind: 'intent', intent: 'power_bill', merchant: power });
  });

  it('When a keyword is contained in the text, then the longest one wins', () => {
    expect(router.byText('demo', '我的信用卡账单呢')).toMatchObject({ intent: 'card_bill' });
    expect(router.byText('demo', '查一下账单')).toMatchObject({ intent: 'bill' });
  });

  it('When the text is a built-in word, then the built-in intent answers, for all merchants or the one that mapped it', () => {
    expect(router.byText('demo', 'HELP')).toEqual({ kind: 'builtin', name: 'help' });
    expect(router.byText('demo', '我要绑定')).toEqual({ kind: 'builtin', name: 'bind' });
    expect(router.byText('demo', '绑卡')).toEqual({ kind: 'builtin', name: 'bind', merchant: card });
    expect(router.byText('demo', 'My   Accounts')).toEqual({ kind: 'builtin', name: 'my_accounts' });
  });

  it('When nothing matches, or the keyword belongs to another account, then there is no route', () => {
    expect(router.byText('demo', '你好')).toEqual({ kind: 'none' });
    expect(router.byText('demo', '燃气')).toEqual({ kind: 'none' });
    expect(router.byText('other', '燃气')).toMatchObject({ intent: 'gas' });
  });

  it('When a menu key is clicked, then the merchant mapping or a built-in key routes it', () => {
    expect(router.byMenuKey('demo', 'MY_BILL')).toEqual({ kind: 'intent', intent: 'bill', merchant: card });
    expect(router.byMenuKey('demo', 'MY_ACCOUNTS')).toEqual({ kind: 'builtin', name: 'my_accounts', merchant: card });
    expect(router.byMenuKey('demo', 'HELP')).toEqual({ kind: 'builtin', name: 'help' });
    expect(router.byMenuKey('demo', 'UNKNOWN')).toEqual({ kind: 'none' });
  });
});
