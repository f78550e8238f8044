/**
 * Bulk import of bindings from CSV (`merchant_id,openid,account_id,account_display`).
 * Every row is checked before anything is written and every bad row is reported with its
 * line; a file with any bad row changes nothing. Good rows are linked one by one through
 * linking's service with proof `import`, so limits, exclusivity, webhooks and audit rows
 * are exactly those of any other link.
 */
import type { MerchantConfig, OfficialAccountConfig } from '../config/index.ts';
import type { LinkRequest, LinkResult } from '../linking/types.ts';
import type { Queryable } from '../store/db.ts';
import { stripControl } from './audit.service.ts';
import { parseCsv } from './csv.ts';
import { inScope, type Scope } from './policy.ts';

export const IMPORT_HEADER = ['merchant_id', 'openid', 'account_id', 'account_display'] as const;
export const MAX_IMPORT_ROWS = 5000;

export interface ImportRow {
  line: number;
  merchantId: string;
  openid: string;
  identityId: string;
  accountId: string;
  display: string | null;
  /** What a run would do, as far as can be known without writing. */
  expect: 'link' | 'already_linked';
}

export interface ImportCheck {
  rows: ImportRow[];
  errors: { line: number; message: string }[];
}

export interface ImportDeps {
  merchants: readonly MerchantConfig[];
  officialAccounts: readonly OfficialAccountConfig[];
}

export async function checkImport(q: Queryable, scope: Scope, text: string, deps: ImportDeps): Promise<ImportCheck> {
  const parsed = parseCsv(text);
  if (parsed.error) return { rows: [], errors: [parsed.error] };
  const [head, ...body] = parsed.rows;
  if (!head || head.cells.map((c) => c.trim().toLowerCase()).join(',') !== IMPORT_HEADER.join(','))
    return { rows: [], errors: [{ line: head?.line ?? 1, message: `the first line must be the header ${IMPORT_HEADER.join(',')}` }] };
  if (body.length > MAX_IMPORT_ROWS) return { rows: [], errors: [{ line: body[MAX_IMPORT_ROWS]!.line, message: `at most ${MAX_IMPORT_ROWS} rows per file` }] };
  const errors: ImportCheck['errors'] = [];
  const rows: ImportRow[] = [];
  const seen = new Map<string, number>();
  for (const { line, cells } of body) {
    const bad = (message: string) => errors.push({ line, message });
    if (cells.length !== IMPORT_HEADER.length) {
      bad(`${cells.length} cells; expected ${IMPORT_HEADER.length}`);
      continue;
    }
    const [merchantId, openid, accountId, display] = cells.map((c) => c.trim()) as [string, string, string, string];
    const merchant = deps.merchants.find((m) => m.id === merchantId);
    // Another merchant's rows read as unknown to a scoped account: nothing leaks about it.
    if (!merchant || !inScope(scope, merchantId)) {
      bad(`unknown merchant '${merchantId.slice(0, 40)}'`);
      continue;
    }
    if (!openid || openid.length > 64) {
      bad('openid is missing or too long');
      continue;
    }
    if (!accountId || accountId.length > 128 || stripControl(accountId) !== accountId) {
      bad('account_id must be 1–128 printable characters');
      continue;
    }
    if (display.length > 64) {
      bad('account_display is longer than 64 characters');
      continue;
    }
    const key = `${merchantId}\u0000${openid}\u0000${accountId}`;
    if (seen.has(key)) {
      bad(`the same link as line ${seen.get(key)}`);
      continue;
    }
    seen.set(key, line);
    const appId = deps.officialAccounts.find((a) => a.id === merchant.officialAccount)?.appId ?? '';
    const found = await q.query<{ id: string; linked: boolean; taken: boolean }>(
      `SELECT i.id,
          EXISTS (SELECT 1 FROM bindings b WHERE b.identity_id = i.id AND b.merchant_id = $3 AND b.account_id = $4 AND b.status = 'active') AS linked,
          EXISTS (SELECT 1 FROM bindings b WHERE b.identity_id <> i.id AND b.merchant_id = $3 AND b.account_id = $4 AND b.status = 'active' AND b.exclusive) AS taken
        FROM identities i WHERE i.app_id = $1 AND i.openid = $2`,
      [appId, openid, merchantId, accountId],
    );
    const id = found.rows[0];
    if (!id) {
      bad(`no WeChat user with openid ${openid.slice(0, 64)} on official account '${merchant.officialAccount}'`);
      continue;
    }
    if (id.taken) {
      bad('this account is linked to another WeChat user (the merchant is exclusive)');
      continue;
    }
    rows.push({ line, merchantId, openid, identityId: id.id, accountId, display: display || null, expect: id.linked ? 'already_linked' : 'link' });
  }
  return { rows, errors };
}

export interface ImportOutcome {
  line: number;
  result: 'linked' | 'already_linked' | 'conflict' | 'limit_reached';
}

export async function applyImport(link: (req: LinkRequest) => Promise<LinkResult>, rows: ImportRow[], who: { actor: string; source: string }): Promise<ImportOutcome[]> {
  const out: ImportOutcome[] = [];
  for (const r of rows) {
    const res = await link({ merchantId: r.merchantId, identityId: r.identityId, account: { id: r.accountId, display: r.display }, proof: 'import', actor: who.actor, source: who.source });
    out.push({ line: r.line, result: res.ok ? (res.created ? 'linked' : 'already_linked') : res.reason });
  }
  return out;
}
