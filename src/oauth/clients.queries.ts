/**
 * The registry's read of admin_clients (migration 601): OAuth clients made in the admin UI.
 * Only the token endpoint's secret check needs `secret_hash` (a scrypt hash, never the secret).
 */
import { z } from 'zod';
import type { Queryable } from '../store/db.ts';

const row = z.object({
  client_id: z.string(),
  merchant_id: z.string(),
  secret_hash: z.string(),
  grant_types: z.array(z.string()),
  redirect_uris: z.array(z.string()),
  scopes: z.array(z.string()),
  access_token_ttl: z.coerce.number().int(),
  disabled: z.boolean(),
});
export type UiClientRecord = z.infer<typeof row>;

export async function findUiClientForAuth(q: Queryable, clientId: string): Promise<UiClientRecord | null> {
  const r = await q.query(
    `SELECT client_id, merchant_id, secret_hash, grant_types, redirect_uris, scopes, access_token_ttl, disabled_at IS NOT NULL AS disabled
       FROM admin_clients WHERE client_id = $1`,
    [clientId],
  );
  return r.rows[0] ? row.parse(r.rows[0]) : null;
}
