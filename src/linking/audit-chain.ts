/**
 * The audit log's hash chain (issue 4): each row's hash covers the previous row's hash and
 * the row's own content, so editing, deleting or reordering any row breaks every hash after
 * it. Pure functions; the SQL that appends and re-reads rows is in `audit.queries.ts`.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditContent {
  at: string;
  actor: string;
  action: string;
  merchantId: string | null;
  identityId: string | null;
  bindingId: string | null;
  source: string | null;
  detail: Record<string, unknown>;
}

/** JSON with object keys sorted at every depth: JSONB re-orders keys, so hashes must not depend on order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function auditHash(prevHash: string, content: AuditContent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(content)).digest('hex');
}
