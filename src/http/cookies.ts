/**
 * Cookie names and attributes in one place. On https deployments cookies use the
 * `__Host-` prefix (Secure, Path=/, no Domain: ASVS 3.3). Plain-http localhost demo runs
 * cannot set Secure cookies through Koa, so there the prefix is dropped; nothing else
 * changes. SameSite is chosen per cookie: the login-flow cookie must be Lax because the
 * WeChat callback is a cross-site top-level navigation (SECURITY.md A7).
 */
export interface CookiePolicy {
  name(base: string): string;
  options(opts: { sameSite: 'lax' | 'strict'; maxAgeMs?: number; httpOnly?: boolean }): {
    httpOnly: boolean;
    secure: boolean;
    sameSite: 'lax' | 'strict';
    path: string;
    maxAge?: number;
    signed: boolean;
    overwrite: boolean;
  };
}

export function createCookiePolicy(publicUrl: string): CookiePolicy {
  const secure = publicUrl.startsWith('https://');
  return {
    name: (base) => (secure ? `__Host-${base}` : base),
    options: ({ sameSite, maxAgeMs, httpOnly = true }) => ({
      httpOnly,
      secure,
      sameSite,
      path: '/',
      ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}),
      signed: true,
      overwrite: true,
    }),
  };
}
