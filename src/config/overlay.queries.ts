/**
 * SQL of admin_config_items (migration 602). Secrets go in and come out through the
 * secret box only: sealed with the row's kind and id as AAD, so a sealed value copied to
 * another row does not open (security/secret-box.ts).
 */
import { z } from 'zod';
import type { SecretBox } from '../security/secret-box.ts';
import type { Queryable } from '../store/db.ts';
import { joinSecrets, splitSecrets, type OverlayItem, type OverlayKind } from './overlay.ts';

const row = z.object({
  kind: z.enum(['merchant', 'official_account']),
  id: z.string(),
  doc: z.record(z.string(), z.unknown()),
  secrets_sealed: z.string(),
  version: z.coerce.number().int(),
  created_by: z.string(),
  created_at: z.coerce.date(),
  updated_by: z.string(),
  updated_at: z.coerce.date(),
});

const sealContext = (kind: OverlayKind, id: string) => `config-overlay:${kind}:${id}`;
const secretsSchema = z.record(z.string(), z.string());

const COLUMNS = 'kind, id, doc, secrets_sealed, version, created_by, created_at, updated_by, updated_at';

function open(box: SecretBox, raw: unknown): OverlayItem & { createdBy: string; createdAt: Date } {
  const r = row.parse(raw);
  const secrets = secretsSchema.parse(JSON.parse(box.open(r.secrets_sealed, sealContext(r.kind, r.id))));
  return { kind: r.kind, id: r.id, doc: joinSecrets(r.kind, r.doc, secrets), version: r.version, updatedBy: r.updated_by, updatedAt: r.updated_at, createdBy: r.created_by, createdAt: r.created_at };
}

export async function listOverlayItems(q: Queryable, box: SecretBox): Promise<OverlayItem[]> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_config_items ORDER BY kind, id`);
  return r.rows.map((x) => open(box, x));
}

export async function findOverlayItem(q: Queryable, box: SecretBox, kind: OverlayKind, id: string, forUpdate = false): Promise<OverlayItem | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_config_items WHERE kind = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`, [kind, id]);
  return r.rows[0] ? open(box, r.rows[0]) : null;
}

/**
 * Writes the whole document. `expectedVersion` null: the row must not exist yet; a number:
 * the row must still be at that version (two admins editing at once: the second is told).
 * False when that expectation failed.
 */
export async function saveOverlayItem(
  q: Queryable,
  box: SecretBox,
  p: { kind: OverlayKind; id: string; doc: Record<string, unknown>; expectedVersion: number | null; actor: string; at: Date },
): Promise<boolean> {
  const { plain, secrets } = splitSecrets(p.kind, p.doc);
  const sealed = box.seal(JSON.stringify(secrets), sealContext(p.kind, p.id));
  const args = [p.kind, p.id, JSON.stringify(plain), sealed, p.actor, p.at.toISOString()];
  const r =
    p.expectedVersion === null
      ? await q.query(
          `INSERT INTO admin_config_items (kind, id, doc, secrets_sealed, created_by, created_at, updated_by, updated_at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $5, $6) ON CONFLICT (kind, id) DO NOTHING`,
          args,
        )
      : await q.query(
          `UPDATE admin_config_items SET doc = $3::jsonb, secrets_sealed = $4, updated_by = $5, updated_at = $6, version = version + 1
           WHERE kind = $1 AND id = $2 AND version = $7`,
          [...args, p.expectedVersion],
        );
  return r.rowCount > 0;
}

export async function deleteOverlayItem(q: Queryable, kind: OverlayKind, id: string, expectedVersion: number): Promise<boolean> {
  const r = await q.query('DELETE FROM admin_config_items WHERE kind = $1 AND id = $2 AND version = $3', [kind, id, expectedVersion]);
  return r.rowCount > 0;
}

/** Changes whenever any row is written or removed: what every instance polls. */
export async function overlayFingerprint(q: Queryable): Promise<string> {
  const r = await q.query<{ f: string | null }>(
    `SELECT md5(string_agg(kind || ':' || id || ':' || version::text || ':' || updated_at::text, ',' ORDER BY kind, id)) AS f FROM admin_config_items`,
  );
  return r.rows[0]?.f ?? 'empty';
}
