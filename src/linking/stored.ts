/**
 * Values read back from the Kv are a trust boundary too (STYLE.md rule 3): a record that
 * is not valid JSON or breaks its schema reads as absent, never as a crash or a guess.
 */
import type { z } from 'zod';

export function parseStored<S extends z.ZodType>(schema: S, raw: string | null): z.infer<S> | null {
  if (raw === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  const r = schema.safeParse(value);
  return r.success ? r.data : null;
}
