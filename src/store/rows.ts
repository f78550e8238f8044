/**
 * zod pieces for reading values back from the stores (STYLE.md rule 3: a column or a Kv
 * record drifting from its type is a bug to catch, never a crash or a guess). `pg` returns
 * timestamptz as Date and int8 as number; PGlite may give strings; JSONB may arrive parsed
 * or as text depending on the adapter.
 */
import { z } from 'zod';

export const date = z.union([z.date(), z.string()]).transform((v) => (v instanceof Date ? v : new Date(v)));
export const int = z.union([z.number(), z.string()]).transform(Number);
/** A JSONB column read with `schema`, whether the driver parsed it or not. */
export const json = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' ? JSON.parse(v) : v), schema);
/** A JSONB column: an object, whether the driver parsed it or not. */
export const jsonObject = json(z.record(z.string(), z.unknown()));

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids from URLs are checked before they reach SQL, so a malformed one is "not found", not a 500. */
export const isUuid = (v: string): boolean => UUID_RE.test(v);

/** A Kv record: not valid JSON, or breaking its schema, reads as absent. */
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
