/**
 * The authorization endpoint's decisions (RFC 6749 §4.1.1–4.1.2, RFC 7636, OIDC Core
 * §3.1.2), transport-free. Checks run in two phases, as node-oidc-provider does: first
 * the client and its exact redirect_uri (RFC 9700 §2.1, §4.1.3: simple string equality),
 * whose failures are never redirected; then everything else, whose failures go back to
 * that verified redirect_uri with `state` and `iss` (RFC 9207). A valid request is kept in
 * Kv, bound to the browser, while the user logs in with WeChat, links an account or picks
 * one; the code is issued for exactly one active binding.
 */
import { z } from 'zod';
import type { OfficialAccountConfig } from '../config/index.ts';
import type { FormBody } from '../http/body.ts';
import type { Binding, EndUserSession, LinkingService } from '../linking/types.ts';
import { randomId } from '../security/secrets.ts';
import { digest, keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { userScopes, type Client, type ClientRegistry } from './clients.ts';
import type { CodesService } from './codes.service.ts';
import { InvalidRedirectUri, InvalidRequest, InvalidScope, LoginRequired, RequestNotSupported, UnauthorizedClient, UnsupportedResponseType } from './errors.ts';
import { pickParams } from './params.ts';

export const authorizeParams = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'response_mode',
  'prompt',
  'max_age',
  'id_token_hint',
  // Read only to be refused (OIDC Core §6): never ignored.
  'request',
  'request_uri',
] as const;

const requestSchema = z.object({
  clientId: z.string(),
  merchantId: z.string(),
  redirectUri: z.string(),
  scopes: z.array(z.string()),
  state: z.string().optional(),
  nonce: z.string().optional(),
  codeChallenge: z.string(),
  prompt: z.enum(['none', 'select_account']).optional(),
  /** prompt=login: the user must authenticate again during this request (OIDC Core §3.1.2.1). */
  login: z.boolean().optional(),
  /** max_age in seconds: an older authentication must be redone (OIDC Core §3.1.2.1). */
  maxAge: z.number().int().nonnegative().optional(),
  /** When the request was saved (epoch seconds): a login at or after it is fresh for it. */
  createdAt: z.number().int().optional(),
  /** The `sub` of a valid id_token_hint: the user the client expects (OIDC Core §3.1.2.1). */
  hintSub: z.string().optional(),
  browser: z.string(),
});
export type AuthorizationRequest = z.infer<typeof requestSchema>;

/** Where the request may be answered, once client and redirect_uri are verified. */
export interface VerifiedTarget {
  client: Client;
  redirectUri: string;
  state: string | undefined;
}

export type Decision =
  /** `fresh`: the current session is too old for this request; log in again regardless. */
  | { kind: 'login'; merchantId: string; next: string; fresh?: boolean }
  | { kind: 'link'; merchantId: string; next: string }
  | { kind: 'choose'; bindings: Binding[]; merchantName: string }
  | { kind: 'code'; binding: Binding };

const CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;
const MAX_VALUE = 512;

export const continuePath = (id: string) => `/oauth2/authorize/continue?req=${encodeURIComponent(id)}`;

/** The authorization response URL: the registered URI kept byte for byte, our parameters appended (RFC 6749 §3.1.2). */
export function responseUrl(redirectUri: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return `${redirectUri}${redirectUri.includes('?') ? '&' : '?'}${q.toString()}`;
}

export interface AuthorizeDeps {
  issuer: string;
  clients: ClientRegistry;
  codes: CodesService;
  kv: Kv;
  linking: () => LinkingService;
  officialAccounts: readonly OfficialAccountConfig[];
  /** The `sub` of an ID token of ours for this client, or null (TokensService.idTokenHintSubject). */
  idTokenHintSubject: (token: string, clientId: string) => Promise<string | null>;
  now?: () => number;
}

const MAX_AGE = /^\d{1,9}$/;

export function createAuthorizeService(deps: AuthorizeDeps) {
  const seconds = () => Math.floor((deps.now ?? Date.now)() / 1000);
  const appIdOf = (merchantId: string) => {
    const m = deps.clients.merchant(merchantId);
    return deps.officialAccounts.find((a) => a.id === m?.officialAccount)?.appId;
  };

  /** Phase 1: nothing here is ever redirected (RFC 6749 §4.1.2.1). */
  async function verifyTarget(form: FormBody): Promise<VerifiedTarget> {
    const p = pickParams(form, ['client_id', 'redirect_uri'], { redirect: false });
    const client = p.client_id ? await deps.clients.get(p.client_id) : undefined;
    if (!client) throw new InvalidRequest('client_id is missing or unknown', undefined, { redirect: false });
    if (!p.redirect_uri || !client.redirectUris.includes(p.redirect_uri)) throw new InvalidRedirectUri({ clientId: client.clientId });
    // A repeated state would make the response ambiguous; answer without one.
    const state = typeof form.state === 'string' ? form.state : undefined;
    return { client, redirectUri: p.redirect_uri, state };
  }

  /**
   * Phase 1 again for a pending request, before it is answered: its client must still exist
   * with that exact redirect_uri. An admin who removes a URI or disables the client stops the
   * journeys under way too (node-oidc-provider re-checks both on resume). Never redirected.
   */
  async function recheckTarget(r: Pick<AuthorizationRequest, 'clientId' | 'redirectUri'>): Promise<void> {
    const client = await deps.clients.get(r.clientId);
    if (!client) throw new InvalidRequest('client_id is missing or unknown', undefined, { redirect: false });
    if (!client.redirectUris.includes(r.redirectUri)) throw new InvalidRedirectUri({ clientId: client.clientId });
  }

  /** Phase 2: errors from here on are redirected to the verified target. */
  function validate(form: FormBody, t: VerifiedTarget): Omit<AuthorizationRequest, 'browser'> {
    const p = pickParams(form, authorizeParams);
    if (!p.response_type) throw new InvalidRequest('response_type is required');
    if (p.response_type !== 'code') throw new UnsupportedResponseType();
    if (p.request !== undefined) throw new RequestNotSupported('request');
    if (p.request_uri !== undefined) throw new RequestNotSupported('request_uri');
    if (!t.client.grantTypes.includes('authorization_code')) throw new UnauthorizedClient('this client may not use the authorization code grant');
    if (p.response_mode !== undefined && p.response_mode !== 'query') throw new InvalidRequest('only response_mode=query is supported');
    // RFC 9700 §2.1.1, ASVS 10.4.6: PKCE is required, and only S256.
    if (!p.code_challenge) throw new InvalidRequest('code_challenge is required (PKCE)');
    if (p.code_challenge_method !== 'S256') throw new InvalidRequest('code_challenge_method must be S256');
    if (!CHALLENGE.test(p.code_challenge)) throw new InvalidRequest('code_challenge is malformed');
    for (const k of ['state', 'nonce'] as const) if ((p[k]?.length ?? 0) > MAX_VALUE) throw new InvalidRequest(`${k} is too long`);
    const scopes = [...new Set((p.scope ?? '').split(' ').filter(Boolean))];
    const refused = scopes.filter((s) => !(userScopes as readonly string[]).includes(s) || !t.client.scopes.includes(s));
    if (refused.length) throw new InvalidScope(`not allowed for this client: ${refused.join(' ')}`);
    const prompt = p.prompt?.split(' ').filter(Boolean) ?? [];
    if (prompt.includes('none') && prompt.length > 1) throw new InvalidRequest('prompt=none cannot be combined');
    if (p.max_age !== undefined && !MAX_AGE.test(p.max_age)) throw new InvalidRequest('max_age must be a number of seconds');
    return {
      clientId: t.client.clientId,
      merchantId: t.client.merchantId,
      redirectUri: t.redirectUri,
      scopes,
      state: p.state,
      nonce: p.nonce,
      codeChallenge: p.code_challenge,
      prompt: prompt.includes('none') ? 'none' : prompt.includes('select_account') ? 'select_account' : undefined,
      ...(prompt.includes('login') ? { login: true } : {}),
      ...(p.max_age !== undefined ? { maxAge: Number(p.max_age) } : {}),
    };
  }

  /** Phase 2 with the async checks: an id_token_hint must be an ID token we issued to this client. */
  async function prepare(form: FormBody, t: VerifiedTarget): Promise<Omit<AuthorizationRequest, 'browser'>> {
    const r = validate(form, t);
    const hint = pickParams(form, authorizeParams).id_token_hint;
    if (hint === undefined) return r;
    const sub = hint.length <= 8192 ? await deps.idTokenHintSubject(hint, t.client.clientId) : null;
    if (sub === null) throw new InvalidRequest('id_token_hint is not an ID token issued to this client');
    return { ...r, hintSub: sub };
  }

  async function save(r: Omit<AuthorizationRequest, 'browser'>, browserId: string): Promise<{ id: string; request: AuthorizationRequest }> {
    const id = randomId(16);
    const request: AuthorizationRequest = { ...r, createdAt: seconds(), browser: digest(browserId) };
    await deps.kv.set(keyspace.oauth.authzRequest(id), JSON.stringify(request), ttl.authzRequest);
    return { id, request };
  }

  /** The pending request, only for the browser that started it (ASVS 10.1.2). */
  async function load(id: string, browserId: string | undefined, opts: { consume?: boolean } = {}): Promise<AuthorizationRequest | null> {
    const key = keyspace.oauth.authzRequest(id);
    const raw = opts.consume ? await deps.kv.getDel(key) : await deps.kv.get(key);
    if (raw === null || !browserId) return null;
    let r: z.ZodSafeParseResult<AuthorizationRequest>;
    try {
      r = requestSchema.safeParse(JSON.parse(raw));
    } catch {
      return null;
    }
    return r.success && r.data.browser === digest(browserId) ? r.data : null;
  }

  /** What happens next for this user: log in, link, choose, or get a code. */
  /**
   * prompt=login or an exceeded max_age want an authentication newer than the session's
   * (OIDC Core §3.1.2.1); one made during this request satisfies both, so max_age=0 or a
   * slow login cannot loop.
   */
  const tooOld = (r: AuthorizationRequest, s: EndUserSession): boolean => {
    if (r.createdAt !== undefined && s.authTime >= r.createdAt) return false;
    return r.login === true || (r.maxAge !== undefined && seconds() - s.authTime > r.maxAge);
  };

  async function decide(id: string, r: AuthorizationRequest, session: EndUserSession | null): Promise<Decision> {
    const next = continuePath(id);
    if (!session || session.appId !== appIdOf(r.merchantId) || tooOld(r, session)) {
      // OIDC Core §3.1.2.6: prompt=none never shows a login, it answers login_required.
      if (r.prompt === 'none') throw new LoginRequired();
      return { kind: 'login', merchantId: r.merchantId, next, ...(session ? { fresh: true } : {}) };
    }
    if (r.hintSub !== undefined && (await deps.linking().subjectFor(session.identityId, r.merchantId)) !== r.hintSub) {
      // Someone other than the client expects is logged in (OIDC Core §3.1.2.1): prompt=none
      // answers login_required; otherwise the user logs in again once, and whoever WeChat
      // then says it is goes on (a hint is not a demand).
      if (r.prompt === 'none') throw new LoginRequired('the logged-in user is not the one id_token_hint names');
      if (r.createdAt === undefined || session.authTime < r.createdAt) return { kind: 'login', merchantId: r.merchantId, next, fresh: true };
    }
    const bindings = await deps.linking().listBindings({ merchantId: r.merchantId, identityId: session.identityId, status: 'active' });
    if (r.prompt === 'none') {
      const only = bindings.length === 1 ? bindings[0] : bindings.find((b) => b.isDefault);
      if (!only) throw new LoginRequired();
      return { kind: 'code', binding: only };
    }
    if (bindings.length === 0) return { kind: 'link', merchantId: r.merchantId, next };
    if (bindings.length === 1 && r.prompt !== 'select_account') return { kind: 'code', binding: bindings[0] as Binding };
    return { kind: 'choose', bindings, merchantName: deps.clients.merchant(r.merchantId)?.name ?? r.merchantId };
  }

  /** The binding the user picked, if it is really theirs, at this merchant, and active. */
  async function chosen(r: AuthorizationRequest, session: EndUserSession | null, bindingId: string): Promise<Binding | null> {
    if (!session || session.appId !== appIdOf(r.merchantId)) return null;
    const b = await deps.linking().getBinding(bindingId);
    return b && b.status === 'active' && b.merchantId === r.merchantId && b.identityId === session.identityId ? b : null;
  }

  /** Issues the code and returns the authorization response URL (RFC 6749 §4.1.2, RFC 9207). */
  async function respond(r: AuthorizationRequest, session: EndUserSession, binding: Binding): Promise<string> {
    const code = await deps.codes.issue({
      clientId: r.clientId,
      redirectUri: r.redirectUri,
      codeChallenge: r.codeChallenge,
      scopes: r.scopes,
      nonce: r.nonce,
      identityId: session.identityId,
      bindingId: binding.id,
      authTime: session.authTime,
      amr: [binding.proof],
    });
    return responseUrl(r.redirectUri, { code, state: r.state, iss: deps.issuer });
  }

  const errorUrl = (t: { redirectUri: string; state?: string }, error: string, description?: string) =>
    responseUrl(t.redirectUri, { error, error_description: description, state: t.state, iss: deps.issuer });

  return { verifyTarget, recheckTarget, validate, prepare, save, load, decide, chosen, respond, errorUrl };
}

export type AuthorizeService = ReturnType<typeof createAuthorizeService>;
