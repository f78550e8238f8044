/**
 * Return targets (`next`) are same-origin relative paths only (RFC 9700 §4.11, open
 * redirectors): one leading `/`, never `//` or `/\` (protocol-relative to another host),
 * no backslash anywhere (browsers read it as `/`), no control characters or whitespace
 * (stripped by URL parsers, so `/\t/evil` would become `//evil`), no `@`-tricks beyond
 * the path, and bounded in length. Anything else is refused, not "fixed".
 */
const MAX_LENGTH = 1024;

export function safeNextPath(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) return null;
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return null;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\\\u0000-\u0020\u007f-\u009f\u2028\u2029]/.test(value)) return null;
  let parsed: URL;
  try {
    parsed = new URL(value, 'https://wxbridge.invalid');
  } catch {
    return null;
  }
  // Whatever a parser makes of it must still be this origin, with no fragment games.
  if (parsed.origin !== 'https://wxbridge.invalid' || parsed.hash !== '') return null;
  // Dot segments can fold into `//` (`/.//evil` → `//evil`): once a browser or a proxy
  // normalises the path, that is protocol-relative again (found by test/fuzz/next-path).
  if (parsed.pathname.startsWith('//')) return null;
  // Percent-encoded slashes or backslashes right after the first `/` are refused too: some
  // proxies decode before routing, turning `/%2F%2Fevil` into `//evil`.
  if (/^\/(%2f|%5c)/i.test(value)) return null;
  return value;
}
