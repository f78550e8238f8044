import { describe, expect, it } from 'vitest';
import { classifyErrcode, WeChatApiError, WeChatTransportError, type WeChatErrorKind } from './errors.ts';

// wechat-protocol.md §8: errcode → kind and policy.
const table: [number, WeChatErrorKind, string][] = [
  [40029, 'code_spent', 'RA'],
  [40163, 'code_spent', 'RA'],
  [42003, 'code_spent', 'RA'],
  [40001, 'token_invalid', 'RT'],
  [40014, 'token_invalid', 'RT'],
  [42001, 'token_invalid', 'RT'],
  [-1, 'busy', 'BO'],
  [45009, 'quota_daily', 'Q'],
  [45011, 'quota_minute', 'BO'],
  [45015, 'window_closed', 'W'],
  [45047, 'window_closed', 'W'],
  [43004, 'not_subscribed', 'NR'],
  [43019, 'user_refused', 'NR'],
  [48002, 'user_refused', 'NR'],
  [43101, 'user_refused', 'NR'],
  [40030, 'refresh_invalid', 'RA'],
  [42002, 'refresh_invalid', 'RA'],
  [42007, 'refresh_invalid', 'RA'],
  [48001, 'unauthorized', 'NR'],
  ...[40013, 40125, 40164, 40243, 40036, 40037, 89501, 89503, 89506, 89507, 40002, 41001, 41002, 41004].map(
    (c): [number, WeChatErrorKind, string] => [c, 'config', 'NR'],
  ),
  ...[40003, 47001, 47003, 45008, 45002, 44004, 40008, 40007].map(
    (c): [number, WeChatErrorKind, string] => [c, 'bad_request', 'NR'],
  ),
  [45080, 'unknown', 'NR'],
  [99999, 'unknown', 'NR'],
];

describe('WeChat errcode classification (§8)', () => {
  it.each(table)('When WeChat answers errcode %i on a cgi-bin API, then it is %s with policy %s', (code, kind, policy) => {
    const e = new WeChatApiError(code, 'x rid: 1', '/cgi-bin/message/custom/send');
    expect(e.kind).toBe(kind);
    expect(e.policy).toBe(policy);
    expect(e.retryable).toBe(policy === 'BO' || policy === 'RT');
  });

  it('When a token endpoint answers 40001, then it is a config error (wrong AppSecret), not a stale token', () => {
    for (const ep of ['/cgi-bin/token', '/cgi-bin/stable_token']) {
      expect(classifyErrcode(40001, ep)).toEqual({ kind: 'config', policy: 'NR', retryable: false });
    }
  });

  it('When a user-token (sns) endpoint rejects the token, then the user must re-authorize rather than refresh the account token', () => {
    expect(classifyErrcode(42001, '/sns/userinfo')).toEqual({ kind: 'token_invalid', policy: 'RA', retryable: false });
    expect(classifyErrcode(40003, '/sns/auth').policy).toBe('RA');
  });

  it('When errmsg wording differs, then only errcode decides', () => {
    const a = new WeChatApiError(40001, 'something else entirely', '/cgi-bin/user/info');
    expect(a.kind).toBe('token_invalid');
    expect(a.errmsg).toBe('something else entirely');
    expect(a.message).toContain('/cgi-bin/user/info');
  });

  it('When a transport error is ambiguous, then the message says the outcome is unknown', () => {
    const e = new WeChatTransportError('timeout', '/cgi-bin/message/custom/send', true);
    expect(e.ambiguous).toBe(true);
    expect(e.message).toMatch(/outcome unknown/);
    expect(new WeChatTransportError('http_status', '/x', false, { status: 502 }).status).toBe(502);
  });
});
