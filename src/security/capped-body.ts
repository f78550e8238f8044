/**
 * Bounded reads of outbound fetch answers (ASVS 5.0 16.5.2; SECURITY.md D1): a merchant
 * endpoint is configured by an admin and may answer with anything, so its body is read
 * only up to a cap. `res.text()` buffers the whole body before anyone can look at its size:
 * one merchant streaming tens of MB per request would then hold that much of our memory
 * per user in flight. Here a declared Content-Length over the cap is refused before any
 * read, and otherwise the stream is read chunk by chunk and cancelled once past the cap,
 * which closes the connection instead of draining it.
 */

/** The answer was larger than the caller's cap; nothing past the cap was read. */
export class BodyTooLargeError extends Error {
  readonly code = 'body_too_large';
  constructor(readonly limit: number) {
    super(`answer body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** The body as UTF-8 text, at most `limit` bytes of it; throws BodyTooLargeError past that. */
export async function readCappedText(res: Response, limit: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(limit);
  }
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLargeError(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
