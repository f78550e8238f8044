/**
 * Bindings as CSV: export (the list's filters, within the viewer's scope) and import
 * with a dry run that reports every bad row. A file with bad rows is never applied.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { parseInput } from '../http/validate.ts';
import * as Q from './bindings.queries.ts';
import { filterOf, listQuery } from './bindings.routes.ts';
import { csvLine } from './csv.ts';
import { auth, formSchema, principal, readForm, renderAdmin, stripEmpty, visibleMerchants, who } from './guard.routes.ts';
import { applyImport, checkImport, IMPORT_HEADER, type ImportCheck, type ImportOutcome } from './import.service.ts';
import { scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

const importForm = formSchema({ csv: z.string().max(2_000_000), mode: z.enum(['dry-run', 'apply']) });
const EXPORT_PAGE = 1000;

export function importRoutes(r: Router, web: AdminWeb): void {
  const show = (ctx: Context, m: { csv?: string; check?: ImportCheck; applied?: ImportOutcome[]; error?: string } = {}, status = 200) =>
    renderAdmin(ctx, web, 'import', { title: 'Import bindings', header: IMPORT_HEADER.join(','), merchants: visibleMerchants(ctx, web), script: 'admin-import', csv: m.csv ?? '', ...m }, status);

  r.get('/bindings/export.csv', auth(web, 'export'), async (ctx) => {
    const v = parseInput(listQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    let out = csvLine(['binding_id', 'merchant_id', 'account_id', 'account_display', 'status', 'is_default', 'proof', 'openid', 'unionid', 'sub', 'created_at', 'revoked_at', 'revoke_reason']);
    let filter = { ...filterOf(v, EXPORT_PAGE), before: undefined as Q.BindingFilter['before'] };
    let n = 0;
    for (;;) {
      const rows = await Q.listBindings(web.db, scope, filter);
      for (const b of rows)
        out += csvLine([b.id, b.merchant_id, b.account_id, b.account_display, b.status, b.is_default, b.proof, b.openid, b.unionid, b.sub, b.created_at, b.revoked_at, b.revoke_reason]);
      n += rows.length;
      const last = rows[rows.length - 1];
      if (rows.length < EXPORT_PAGE || !last) break;
      filter = { ...filter, before: { createdAt: last.created_at, id: last.id } };
    }
    await web.audit.record(who(ctx), {
      action: 'bindings.exported',
      merchantId: principal(ctx).merchantId,
      detail: { rows: n, filter: new URLSearchParams(stripEmpty({ ...v, before: undefined, done: undefined })).toString().slice(0, 300) },
    });
    ctx.type = 'text/csv; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="bindings-${new Date(web.now()).toISOString().slice(0, 10)}.csv"`);
    ctx.body = out;
  });

  r.get('/bindings/import', auth(web, 'bindings.write'), (ctx) => show(ctx));

  r.post('/bindings/import', auth(web, 'bindings.write'), async (ctx) => {
    const f = await readForm(ctx, web, importForm, 2_100_000);
    const scope = scopeOf(principal(ctx));
    const check = await checkImport(web.db, scope, f.csv, web.config);
    if (f.mode === 'dry-run' || check.errors.length > 0) {
      const refused = f.mode === 'apply' && check.errors.length > 0;
      return show(ctx, { csv: f.csv, check, error: refused ? 'Nothing was imported: fix the rows below first.' : '' }, refused ? 400 : 200);
    }
    if (!web.ports.linking) return show(ctx, { csv: f.csv, check, error: 'Linking is not available on this deployment yet.' }, 503);
    const w = who(ctx);
    const applied = await applyImport((req) => web.ports.linking!.link(req), check.rows, w);
    const count = (k: ImportOutcome['result']) => applied.filter((a) => a.result === k).length;
    await web.audit.record(w, {
      action: 'bindings.imported',
      merchantId: principal(ctx).merchantId,
      detail: { rows: applied.length, linked: count('linked'), already: count('already_linked'), conflicts: count('conflict'), limits: count('limit_reached') },
    });
    show(ctx, { applied });
  });
}
