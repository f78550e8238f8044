/**
 * SQL of admin_clients (migration 601): OAuth clients made in the admin UI. The secret
 * hash never leaves this file except to the registry that checks secrets.
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';
import { date, int } from '../store/rows.ts';
import { scopeSql, type Scope } from './policy.ts';

const clientRow = z.object({
  client_id: z.string(),
  merchant_id: z.string(),
  grant_types: z.array(z.string()),
  redirect_uris: z.array(z.string()),
  scopes: z.array(z.string()),
  access_token_ttl: int,
  disabled_at: date.nullable(),
  created_by: z.string(),
  created_at: date,
  secret_rotated_at: date,
});
export type UiClientRow = z.infer<typeof clientRow>;

const COLUMNS = 'client_id, merchant_id, grant_types, redirect_uris, scopes, access_token_ttl, disabled_at, created_by, created_at, secret_rotated_at';

export interface ClientFields {
  grantTypes: string[];
  redirectUris: string[];
  scopes: string[];
  accessTokenTtl: number;
}

export async function listUiClients(q: Queryable, scope: Scope, merchantId?: string): Promise<UiClientRow[]> {
  const params: unknown[] = [];
  const w = [scopeSql(scope, 'merchant_id', params)];
  if (merchantId) w.push(`merchant_id = $${params.push(merchantId)}`);
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_clients WHERE ${w.join(' AND ')} ORDER BY client_id`, params);
  return r.rows.map((row) => clientRow.parse(row));
}

/** Unscoped: the route checks the merchant (403) before showing or changing it. */
export async function findUiClient(q: Queryable, clientId: string): Promise<UiClientRow | null> {
  const r = await q.query(`SELECT ${COLUMNS} FROM admin_clients WHERE client_id = $1`, [clientId]);
  return r.rows[0] ? clientRow.parse(r.rows[0]) : null;
}

/** False when the id is taken. */
export async function insertUiClient(q: Queryable, c: ClientFields & { clientId: string; merchantId: string; secretHash: string; createdBy: string; at: Date }): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO admin_clients (client_id, merchant_id, secret_hash, grant_types, redirect_uris, scopes, access_token_ttl, created_by, created_at, updated_at, secret_rotated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9) ON CONFLICT (client_id) DO NOTHING`,
    [c.clientId, c.merchantId, c.secretHash, c.grantTypes, c.redirectUris, c.scopes, c.accessTokenTtl, c.createdBy, c.at.toISOString()],
  );
  return r.rowCount > 0;
}

export async function updateUiClient(q: Queryable, clientId: string, c: ClientFields & { disabled: boolean; at: Date }): Promise<void> {
  await q.query(
    `UPDATE admin_clients SET grant_types = $2, redirect_uris = $3, scopes = $4, access_token_ttl = $5,
        disabled_at = CASE WHEN $6 THEN COALESCE(disabled_at, $7::timestamptz) END, updated_at = $7 WHERE client_id = $1`,
    [clientId, c.grantTypes, c.redirectUris, c.scopes, c.accessTokenTtl, c.disabled, c.at.toISOString()],
  );
}

export async function setUiClientSecret(q: Queryable, clientId: string, secretHash: string, at: Date): Promise<void> {
  await q.query('UPDATE admin_clients SET secret_hash = $2, secret_rotated_at = $3, updated_at = $3 WHERE client_id = $1', [clientId, secretHash, at.toISOString()]);
}
