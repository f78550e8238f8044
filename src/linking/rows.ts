/**
 * Shapes of values read back from Postgres by the linking queries (STYLE.md rule 3: rows are
 * checked too). `pg` returns timestamptz as Date and PGlite may return strings; JSONB may
 * arrive parsed or as text depending on the adapter.
 */
import { z } from 'zod';

export const date = z.union([z.date(), z.string()]).transform((v) => (v instanceof Date ? v : new Date(v)));

export const json = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (typeof v === 'string' ? JSON.parse(v) : v), schema);

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids from URLs are checked before they reach SQL, so a malformed one is "not found", not a 500. */
export const isUuid = (v: string): boolean => UUID_RE.test(v);
