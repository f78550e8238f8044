/**
 * The two end-user cookies (ASVS 3.3; SECURITY.md A7): both signed, HttpOnly, `__Host-` on
 * https, and SameSite=Lax because the WeChat callback is a cross-site top-level navigation.
 * - `wxb_fb`: a random browser id that login flows are bound to (its digest is in the flow
 *   record), reused for parallel flows of one browser, short-lived.
 * - `wxb_sess`: the end-user session id; a new one at every login, never accepted from a URL.
 */
import type { Context } from 'koa';
import type { CookiePolicy } from '../http/cookies.ts';
import { randomId } from '../security/secrets.ts';
import type { SessionsService } from './sessions.service.ts';
import type { EndUserSession } from './types.ts';

const BROWSER_RE = /^[A-Za-z0-9_-]{32}$/;

export interface WebSession {
  /** The browser id from its cookie; made (and set) when `create` and absent. */
  browserId(ctx: Context, create: true): string;
  browserId(ctx: Context, create?: false): string | undefined;
  read(ctx: Context): Promise<EndUserSession | null>;
  set(ctx: Context, sessionId: string): void;
  clear(ctx: Context): Promise<void>;
}

export function createWebSession(deps: { cookies: CookiePolicy; sessions: SessionsService; sessionMaxAgeMs: number }): WebSession {
  const browserCookie = deps.cookies.name('wxb_fb');
  const sessionCookie = deps.cookies.name('wxb_sess');

  function browserId(ctx: Context, create: true): string;
  function browserId(ctx: Context, create?: false): string | undefined;
  function browserId(ctx: Context, create = false): string | undefined {
    const existing = ctx.cookies.get(browserCookie, { signed: true });
    if (existing && BROWSER_RE.test(existing)) return existing;
    if (!create) return undefined;
    const id = randomId(24);
    ctx.cookies.set(browserCookie, id, deps.cookies.options({ sameSite: 'lax', maxAgeMs: 30 * 60_000 }));
    return id;
  }

  return {
    browserId,
    async read(ctx) {
      const id = ctx.cookies.get(sessionCookie, { signed: true });
      return id ? deps.sessions.get(id) : null;
    },
    set(ctx, sessionId) {
      ctx.cookies.set(sessionCookie, sessionId, deps.cookies.options({ sameSite: 'lax', maxAgeMs: deps.sessionMaxAgeMs }));
    },
    async clear(ctx) {
      const id = ctx.cookies.get(sessionCookie, { signed: true });
      if (id) await deps.sessions.destroy(id);
      ctx.cookies.set(sessionCookie, '', deps.cookies.options({ sameSite: 'lax', maxAgeMs: 0 }));
    },
  };
}
