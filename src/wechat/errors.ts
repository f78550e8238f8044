/**
 * WeChat error families (wechat-protocol.md §0, §8; SECURITY.md D4).
 *
 * - `WeChatApiError`: WeChat answered with a non-zero `errcode`. Classified by errcode only —
 *   `errmsg` carries a `rid:` suffix and changes wording, so it is kept for logs, never matched.
 * - `WeChatTransportError`: we got no usable answer (timeout, network, HTTP status, non-JSON,
 *   a body that breaks the schema). `ambiguous` says whether WeChat may have acted on the
 *   request anyway: true only for non-idempotent calls (sends, code exchange) whose request may
 *   have reached WeChat. A caller must not blindly retry an ambiguous failure.
 *
 * Messages name the endpoint path only: query strings carry secrets, codes and tokens.
 */

export type WeChatErrorKind =
  | 'code_spent'
  | 'token_invalid'
  | 'busy'
  | 'quota_daily'
  | 'quota_minute'
  | 'window_closed'
  | 'not_subscribed'
  | 'user_refused'
  | 'refresh_invalid'
  | 'unauthorized'
  | 'config'
  | 'bad_request'
  | 'unknown';

/**
 * §8 policy legend. RT: refresh the account token via its owner, retry once. RA: the user must
 * re-authorize. BO: back off and retry. NR: do not retry. Q: daily quota, pause the API for the
 * day. W: customer-service window closed, fall back to a template/subscription message.
 */
export type WeChatErrorPolicy = 'RT' | 'RA' | 'BO' | 'NR' | 'Q' | 'W';

const kindByCode: ReadonlyMap<number, WeChatErrorKind> = new Map<number, WeChatErrorKind>([
  [40029, 'code_spent'],
  [40163, 'code_spent'],
  [42003, 'code_spent'],
  [40001, 'token_invalid'],
  [40014, 'token_invalid'],
  [42001, 'token_invalid'],
  [-1, 'busy'],
  [45009, 'quota_daily'],
  [45011, 'quota_minute'],
  [45015, 'window_closed'],
  [45047, 'window_closed'],
  [43004, 'not_subscribed'],
  [43019, 'user_refused'],
  [48002, 'user_refused'],
  [43101, 'user_refused'],
  [40030, 'refresh_invalid'],
  [42002, 'refresh_invalid'],
  [42007, 'refresh_invalid'],
  [48001, 'unauthorized'],
  ...[40013, 40125, 40164, 40243, 40036, 40037, 89501, 89503, 89506, 89507, 40002, 41001, 41002, 41004].map(
    (c): [number, WeChatErrorKind] => [c, 'config'],
  ),
  // 41008 missing code, 40032 openid list length, 40033 \uXXXX in body, 43001/43002 wrong
  // method, 44002 empty body: all bugs on our side, like the brief's bad_request set.
  ...[40003, 47001, 47003, 45008, 45002, 44004, 40008, 40007, 41008, 40032, 40033, 43001, 43002, 44002].map(
    (c): [number, WeChatErrorKind] => [c, 'bad_request'],
  ),
]);

const policyByKind: Record<WeChatErrorKind, WeChatErrorPolicy> = {
  code_spent: 'RA',
  token_invalid: 'RT',
  busy: 'BO',
  quota_daily: 'Q',
  quota_minute: 'BO',
  window_closed: 'W',
  not_subscribed: 'NR',
  user_refused: 'NR',
  refresh_invalid: 'RA',
  unauthorized: 'NR',
  config: 'NR',
  bad_request: 'NR',
  unknown: 'NR',
};

/** Endpoints that mint account tokens: there 40001 means a wrong AppSecret (§2.5, §8 row 40001). */
const TOKEN_ENDPOINTS: ReadonlySet<string> = new Set(['/cgi-bin/token', '/cgi-bin/stable_token']);

/** Whether `endpoint` is where access tokens are fetched (its errors are the token owner's, not the caller's API's). */
export const isTokenEndpoint = (endpoint: string): boolean => TOKEN_ENDPOINTS.has(endpoint);

export interface WeChatErrorClass {
  kind: WeChatErrorKind;
  policy: WeChatErrorPolicy;
  /** A later identical request may succeed without a human (after waiting or a token refresh). */
  retryable: boolean;
}

/** Classifies an errcode, adjusted for the endpoint where §8 says the meaning differs. */
export function classifyErrcode(errcode: number, endpoint: string): WeChatErrorClass {
  let kind = kindByCode.get(errcode) ?? 'unknown';
  let policy = policyByKind[kind];
  if (kind === 'token_invalid' && TOKEN_ENDPOINTS.has(endpoint)) {
    // Fetching a token cannot fail for a stale token; 40001 here is a wrong AppSecret.
    kind = 'config';
    policy = 'NR';
  } else if (kind === 'token_invalid' && endpoint.startsWith('/sns/')) {
    // A user (web-auth) token: no account-token refresh helps; use the refresh_token or
    // send the user through authorization again.
    policy = 'RA';
  } else if (errcode === 40003 && endpoint === '/sns/auth') {
    policy = 'RA';
  }
  const retryable = policy === 'BO' || policy === 'RT';
  return { kind, policy, retryable };
}

export class WeChatApiError extends Error {
  readonly kind: WeChatErrorKind;
  readonly policy: WeChatErrorPolicy;
  readonly retryable: boolean;
  constructor(
    readonly errcode: number,
    /** As WeChat sent it (with its `rid:`), minus any secret of ours it echoed. */
    readonly errmsg: string,
    /** Path only, e.g. `/cgi-bin/message/custom/send`; never a query string. */
    readonly endpoint: string,
  ) {
    super(`WeChat ${endpoint} errcode ${errcode}: ${errmsg}`);
    this.name = 'WeChatApiError';
    const c = classifyErrcode(errcode, endpoint);
    this.kind = c.kind;
    this.policy = c.policy;
    this.retryable = c.retryable;
  }
}

export type WeChatTransportReason = 'timeout' | 'network' | 'http_status' | 'non_json' | 'invalid_payload';

export class WeChatTransportError extends Error {
  constructor(
    readonly reason: WeChatTransportReason,
    readonly endpoint: string,
    /** True when WeChat may have acted on a non-idempotent request: do not retry blindly. */
    readonly ambiguous: boolean,
    opts: { status?: number; detail?: string; cause?: unknown } = {},
  ) {
    super(
      `WeChat ${endpoint} ${reason}${opts.status !== undefined ? ` (HTTP ${opts.status})` : ''}` +
        `${opts.detail ? `: ${opts.detail}` : ''}${ambiguous ? ' [outcome unknown]' : ''}`,
      { cause: opts.cause },
    );
    this.name = 'WeChatTransportError';
    this.status = opts.status;
  }
  readonly status: number | undefined;
}

export const isWeChatApiError = (e: unknown, kind?: WeChatErrorKind): e is WeChatApiError =>
  e instanceof WeChatApiError && (kind === undefined || e.kind === kind);
