/**
 * zod pieces for reading rows back (STYLE.md rule 3: a column drifting from its type is a
 * bug to catch). pg returns timestamptz as Date and int8 as number; PGlite may give strings.
 */
import { z } from 'zod';

export const date = z.union([z.date(), z.string()]).transform((v) => (v instanceof Date ? v : new Date(v)));
export const int = z.union([z.number(), z.string()]).transform(Number);
/** A JSONB column: an object, whether the driver parsed it or not. */
export const jsonObject = z.preprocess((v) => (typeof v === 'string' ? JSON.parse(v) : v), z.record(z.string(), z.unknown()));

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids from URLs are checked before they reach SQL, so a malformed one is "not found", not a 500. */
export const isUuid = (v: string): boolean => UUID_RE.test(v);
