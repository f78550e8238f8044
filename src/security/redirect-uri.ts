/**
 * What a registered redirect URI may be (RFC 6749 §3.1.2; RFC 9700 §2.1, §4.1): an absolute
 * URL without a fragment (a MUST of §3.1.2) and without credentials (which would be sent to
 * whoever answers it). `requireHttps`: only https, or http on the loopback host (the admin
 * UI's rule; the config file is the operator's and keeps plain http for test deployments).
 */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function redirectUriProblem(uri: string, o: { requireHttps: boolean }): string | null {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be https';
  if (o.requireHttps && url.protocol !== 'https:' && !LOOPBACK.has(url.hostname)) return 'must be https';
  if (url.hash || uri.includes('#') || url.username || url.password) return 'no fragment or credentials allowed';
  return null;
}
