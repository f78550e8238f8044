/**
 * The demo merchant system's own data and rules (DESIGN.md "Demo mode"): a few customers
 * with cards or power accounts, an SMS step whose code the demo shows ("123456"), and a
 * frozen card that is always refused. Transport-free: the verify API and the demo login
 * both read it. It plays the merchant's side of the `verify-api` protocol, so it keeps its
 * own short-lived attempt state, in memory, as a real merchant would keep it in its own system.
 */
import { createHash } from 'node:crypto';
import type { VerifyField } from '../linking/verify-api.connector.ts';

export const DEMO_SMS_CODE = '123456';
export const DEMO_PASSWORD = 'demo';

export interface DemoCustomer {
  username: string;
  name: string;
  card: string;
}

export const DEMO_CUSTOMERS: readonly DemoCustomer[] = [
  { username: 'alice', name: 'Alice 王', card: '6222021000001234' },
  { username: 'bob', name: 'Bob 李', card: '6222021000005678' },
  { username: 'carol', name: 'Carol 张', card: '6222021000009012' },
];

/** Always refused: shows what a merchant's rejection looks like. */
export const FROZEN_CARD = '6222021000000000';

/** The merchant's account id of a card: its own opaque id, never the number (what wxbridge stores). */
export const cardAccountId = (digits: string): string => `C${createHash('sha256').update(`card:${digits}`).digest('hex').slice(0, 12).toUpperCase()}`;
export const maskCard = (digits: string): string => `•••• ${digits.slice(-4)}`;

type Kind = 'card' | 'power';

const FIRST_FIELD: Record<Kind, VerifyField> = {
  card: { name: 'card', label: '卡号 Card number', type: 'tel', pattern: '[0-9 ]{16,23}' },
  power: { name: 'account', label: '电力户号 Account number', type: 'tel', pattern: '[0-9]{10}' },
};

const FIRST_MESSAGE: Record<Kind, string> = {
  card: '请输入信用卡卡号。演示卡：6222 0210 0000 1234。 Enter your card number (demo: 6222 0210 0000 1234).',
  power: '请输入 10 位电力户号，如 8800001234。 Enter your 10-digit account number, e.g. 8800001234.',
};

export type VerifyAnswer =
  | { status: 'verified'; account: { id: string; display: string } }
  | { status: 'continue'; fields: VerifyField[]; message: string }
  | { status: 'rejected'; message: string };

/** A number this demo system knows: any 16–19 digits starting 6222 (cards), 10 digits starting 88 (power). */
function accountOf(kind: Kind, raw: string): { id: string; display: string } | null {
  const digits = raw.replace(/[\s-]/g, '');
  if (kind === 'card' && /^6222\d{12,15}$/.test(digits)) return { id: cardAccountId(digits), display: maskCard(digits) };
  if (kind === 'power' && /^88\d{8}$/.test(digits))
    return { id: `P${createHash('sha256').update(`power:${digits}`).digest('hex').slice(0, 12).toUpperCase()}`, display: `户号 ${digits.slice(0, 2)}****${digits.slice(-4)}` };
  return null;
}

export interface DemoVerifier {
  answer(merchantId: string, req: { step: 'start' | 'continue'; attempt: string; fields: Record<string, string> }): VerifyAnswer;
}

export function createDemoVerifier(now: () => number = Date.now): DemoVerifier {
  const pending = new Map<string, { account: { id: string; display: string }; expiresAt: number }>();
  const sweep = () => {
    const t = now();
    for (const [k, v] of pending) if (v.expiresAt <= t) pending.delete(k);
  };
  return {
    answer(merchantId, req) {
      sweep();
      const kind: Kind = merchantId === 'power' ? 'power' : 'card';
      if (req.step === 'start') return { status: 'continue', fields: [FIRST_FIELD[kind]], message: FIRST_MESSAGE[kind] };
      const waiting = pending.get(req.attempt);
      if (!waiting) {
        const first = req.fields[FIRST_FIELD[kind].name] ?? '';
        if (first.replace(/\s/g, '') === FROZEN_CARD) return { status: 'rejected', message: '此卡已冻结。 This card is frozen.' };
        const account = accountOf(kind, first);
        if (!account) return { status: 'rejected', message: '未找到该账户。 No such account.' };
        pending.set(req.attempt, { account, expiresAt: now() + 10 * 60_000 });
        return {
          status: 'continue',
          fields: [{ name: 'sms', label: '短信验证码 SMS code', type: 'tel', pattern: '[0-9]{6}' }],
          message: `验证码已发送至 138****8888（演示验证码：${DEMO_SMS_CODE}）。 We sent a code to 138****8888 (demo code: ${DEMO_SMS_CODE}).`,
        };
      }
      pending.delete(req.attempt);
      if (req.fields.sms !== DEMO_SMS_CODE) return { status: 'rejected', message: '验证码错误。 Wrong code.' };
      return { status: 'verified', account: waiting.account };
    },
  };
}
