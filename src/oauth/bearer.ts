/** RFC 6750 §2.1: `Authorization: Bearer <b64token>`; the scheme is case-insensitive. */
const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i;

export function bearerToken(header: string | undefined): string | null {
  return (header && BEARER.exec(header)?.[1]) || null;
}
