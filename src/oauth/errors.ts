/**
 * One error class per RFC error code (after node-oidc-provider's helpers/errors): the
 * code, its status, a public description, and whether the authorization endpoint may
 * send it back to the client's redirect_uri. An error raised before the client and its
 * redirect_uri are verified is never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
 */
import { OAuthError } from '../http/errors.ts';

type Detail = Record<string, unknown> | undefined;

export class InvalidRequest extends OAuthError {
  readonly allowRedirect: boolean;
  constructor(description: string, detail?: Detail, opts: { redirect?: boolean } = {}) {
    super('invalid_request', description, { detail });
    this.allowRedirect = opts.redirect ?? true;
  }
}

/** The redirect_uri is missing, unregistered or not an exact match: shown, never followed. */
export class InvalidRedirectUri extends InvalidRequest {
  constructor(detail?: Detail) {
    super('redirect_uri is missing or does not exactly match a registered redirect URI', detail, { redirect: false });
  }
}

export class InvalidClient extends OAuthError {
  readonly allowRedirect = false;
  constructor(description = 'client authentication failed', detail?: Detail) {
    super('invalid_client', description, { detail });
  }
}

export class InvalidGrant extends OAuthError {
  constructor(description = 'the grant is invalid, expired, revoked or was issued to another client', detail?: Detail) {
    super('invalid_grant', description, { detail });
  }
}

export class UnauthorizedClient extends OAuthError {
  readonly allowRedirect = true;
  constructor(description: string, detail?: Detail) {
    super('unauthorized_client', description, { detail });
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor(description = 'unsupported grant_type') {
    super('unsupported_grant_type', description);
  }
}

export class UnsupportedResponseType extends OAuthError {
  readonly allowRedirect = true;
  constructor(description = 'only response_type=code is supported') {
    super('unsupported_response_type', description);
  }
}

export class InvalidScope extends OAuthError {
  readonly allowRedirect = true;
  constructor(description: string) {
    super('invalid_scope', description);
  }
}

export class AccessDenied extends OAuthError {
  readonly allowRedirect = true;
  constructor(description: string, detail?: Detail) {
    super('access_denied', description, { detail, status: 400 });
  }
}

/**
 * OIDC Core §6.1, §6.2: an OP that does not take request objects (discovery says
 * `request_parameter_supported: false`) answers their use with these, rather than ignoring
 * the parameter and running a request other than the one the client signed.
 */
export class RequestNotSupported extends OAuthError {
  readonly allowRedirect = true;
  constructor(param: 'request' | 'request_uri') {
    super(param === 'request' ? 'request_not_supported' : 'request_uri_not_supported', `the ${param} parameter is not supported`);
  }
}

export class LoginRequired extends OAuthError {
  readonly allowRedirect = true;
  constructor(description = 'the user must log in or choose an account') {
    super('login_required', description);
  }
}

export class UnsupportedTokenType extends OAuthError {
  constructor(description = 'unsupported token_type_hint') {
    super('unsupported_token_type', description);
  }
}

/**
 * RFC 6750 §3.1. A request with no credentials at all gets a bare challenge (no error
 * code in WWW-Authenticate), as the RFC asks; anything presented and refused says why.
 */
export class InvalidToken extends OAuthError {
  constructor(description = 'the access token is invalid, expired or revoked', opts: { bare?: boolean; detail?: Detail } = {}) {
    super('invalid_token', description, {
      detail: opts.detail,
      wwwAuthenticate: opts.bare ? 'Bearer realm="wxbridge"' : `Bearer realm="wxbridge", error="invalid_token", error_description="${quoteSafe(description)}"`,
    });
  }
}

/**
 * RFC 6750 §3.1 invalid_request at a protected resource (userinfo, the merchant API), e.g.
 * a token sent in the URL: 400, and, as RFC 6750 §3 and OIDC Core §5.3.3 describe the error
 * response, the Bearer challenge naming the error.
 */
export class InvalidBearerRequest extends OAuthError {
  constructor(description: string) {
    super('invalid_request', description, {
      wwwAuthenticate: `Bearer realm="wxbridge", error="invalid_request", error_description="${quoteSafe(description)}"`,
    });
  }
}

export class InsufficientScope extends OAuthError {
  constructor(scope: string) {
    super('insufficient_scope', `this call needs the scope ${scope}`, {
      wwwAuthenticate: `Bearer realm="wxbridge", error="insufficient_scope", scope="${quoteSafe(scope)}"`,
    });
  }
}

/** Only fixed text goes into a header; this keeps a stray quote from breaking it. */
const quoteSafe = (s: string): string => s.replace(/["\\\r\n]/g, '');
