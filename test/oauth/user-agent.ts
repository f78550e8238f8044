/**
 * A cookie-keeping HTTP user agent for protocol tests: follows nothing by itself, so each
 * redirect of the authorization journey can be inspected. Also PKCE helpers (RFC 7636).
 */
import { createHash, randomBytes } from 'node:crypto';

export class UserAgent {
  private readonly jar = new Map<string, string>();

  setCookie(name: string, value: string): void {
    this.jar.set(name, value);
  }

  private remember(r: Response): void {
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1));
    }
  }

  private cookieHeader(): Record<string, string> {
    return this.jar.size ? { cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<Response> {
    const r = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html', ...this.cookieHeader(), ...headers } });
    this.remember(r);
    return r;
  }

  async post(url: string, form: Record<string, string> | [string, string][]): Promise<Response> {
    const r = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...this.cookieHeader() },
      body: new URLSearchParams(form),
    });
    this.remember(r);
    return r;
  }
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The value of a hidden input in a rendered form. */
export function hiddenInput(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m?.[1]) throw new Error(`no hidden input ${name}`);
  return m[1];
}
