/**
 * The error families of wxbridge. Features throw these; only `error-handler.ts` turns
 * them into responses (RFC JSON for protocol endpoints, a rendered page for browsers),
 * and nothing internal (stack, SQL, upstream bodies) is ever exposed.
 */

/** Stable application error codes: `feature.snake_case` → HTTP status. One table. */
export const appErrorCodes = {
  'request.invalid': 400,
  'request.body_too_large': 413,
  'request.unsupported_media_type': 415,
  'request.not_found': 404,
  'request.method_not_allowed': 405,
  'request.forbidden': 403,
  'request.unauthenticated': 401,
  'request.csrf': 403,
  'request.conflict': 409,
  'request.rate_limited': 429,
  'dependency.unavailable': 503,
  'upstream.failed': 502,
  'flow.expired': 400,
  'flow.invalid_state': 400,
  'flow.declined': 400,
  'flow.code_spent': 400,
  'flow.snapshot_user': 400,
  'flow.wechat_busy': 503,
  'linking.conflict': 409,
  'linking.limit_reached': 409,
  'linking.rejected': 400,
  'linking.too_many_attempts': 429,
  'linking.not_found': 404,
  'notices.idempotency_conflict': 409,
  'notices.no_recipients': 422,
  'internal': 500,
} as const satisfies Record<string, number>;

export type AppErrorCode = keyof typeof appErrorCodes;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: AppErrorCode,
    /** Safe to show to the caller. */
    readonly publicMessage?: string,
    /** For logs only; never sent. */
    readonly detail?: Record<string, unknown>,
  ) {
    super(publicMessage ?? code);
    this.name = 'AppError';
    this.status = appErrorCodes[code];
  }
}

/** Throws `AppError(code)` unless `cond` holds. */
export function assertThat(cond: unknown, code: AppErrorCode, publicMessage?: string): asserts cond {
  if (!cond) throw new AppError(code, publicMessage);
}

/** RFC 6749 / 6750 / 7009 / 7662 and OIDC Core §3.1.2.6 error codes. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'unsupported_token_type'
  | 'login_required'
  | 'consent_required'
  | 'request_not_supported'
  | 'request_uri_not_supported';

const oauthStatus: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  invalid_scope: 400,
  access_denied: 403,
  server_error: 500,
  temporarily_unavailable: 503,
  invalid_token: 401,
  insufficient_scope: 403,
  unsupported_token_type: 400,
  login_required: 400,
  consent_required: 400,
  request_not_supported: 400,
  request_uri_not_supported: 400,
};

export class OAuthError extends Error {
  readonly status: number;
  constructor(
    readonly error: OAuthErrorCode,
    readonly description?: string,
    opts: { status?: number; detail?: Record<string, unknown>; wwwAuthenticate?: string } = {},
  ) {
    super(description ?? error);
    this.name = 'OAuthError';
    this.status = opts.status ?? oauthStatus[error];
    this.detail = opts.detail;
    this.wwwAuthenticate = opts.wwwAuthenticate;
  }
  readonly detail: Record<string, unknown> | undefined;
  readonly wwwAuthenticate: string | undefined;
}

/** A dependency (db, kv) is down or too slow: 503 fast, never a hang. */
export class DependencyUnavailableError extends Error {
  readonly status = 503;
  constructor(
    readonly dependency: 'db' | 'kv' | 'wechat' | 'merchant',
    cause?: unknown,
  ) {
    super(`${dependency} unavailable`, { cause });
    this.name = 'DependencyUnavailableError';
  }
}
