/**
 * The audit log: filter, export as CSV, and "verify chain", which re-computes the hash
 * chain with linking's verifier and names the first row that does not verify (someone
 * edited, deleted or reordered rows in the table).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { parseInput } from '../http/validate.ts';
import { auditActions, auditPages, listAudit, type AuditFilter } from './audit.queries.ts';
import { csvLine } from './csv.ts';
import { actorNames, auth, formSchema, principal, readForm, renderAdmin, stripEmpty, visibleMerchants, who } from './guard.routes.ts';
import { can, scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

const PAGE = 100;
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).or(z.literal(''));
const auditQuery = z
  .object({
    merchant: z.string().max(40).optional(),
    actor: z.string().max(120).optional(),
    action: z.string().max(60).optional(),
    identity: z.string().max(40).optional(),
    binding: z.string().max(40).optional(),
    from: day.optional(),
    to: day.optional(),
    before: z.string().regex(/^\d{1,15}$/).optional(),
    done: z.string().optional(),
  })
  .strict();
type AuditQuery = z.infer<typeof auditQuery>;

function filterOf(v: AuditQuery): Omit<AuditFilter, 'limit'> {
  return {
    merchantId: v.merchant || undefined,
    actor: v.actor?.trim() || undefined,
    action: v.action || undefined,
    identityId: v.identity?.trim() || undefined,
    bindingId: v.binding?.trim() || undefined,
    from: v.from ? new Date(`${v.from}T00:00:00Z`) : undefined,
    // "to" is inclusive of that whole day.
    to: v.to ? new Date(new Date(`${v.to}T00:00:00Z`).getTime() + 86_400_000) : undefined,
    beforeId: v.before ? Number(v.before) : undefined,
  };
}

export function auditRoutes(r: Router, web: AdminWeb): void {
  async function show(ctx: Context, verify?: { ok: boolean; checked: number; brokenAt?: number }): Promise<void> {
    const v = parseInput(auditQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    const rows = await listAudit(web.db, scope, { ...filterOf(v), limit: PAGE + 1 });
    const last = rows.length > PAGE ? rows[PAGE - 1] : undefined;
    renderAdmin(ctx, web, 'audit', {
      title: 'Audit log',
      rows: rows.slice(0, PAGE).map((row) => ({ ...row, detailText: Object.entries(row.detail).map(([k, x]) => `${k}=${String(x)}`).join('  ') })),
      f: v,
      actions: await auditActions(web.db, scope),
      merchants: visibleMerchants(ctx, web),
      nextQs: last ? new URLSearchParams({ ...stripEmpty(v), before: String(last.id) }).toString() : '',
      exportQs: new URLSearchParams(stripEmpty({ ...v, before: undefined, done: undefined })).toString(),
      canVerify: can(principal(ctx), 'audit.verify'),
      verify,
      actors: await actorNames(web),
    });
  }

  r.get('/audit', auth(web, 'view'), (ctx) => show(ctx));

  r.post('/audit/verify', auth(web, 'audit.verify'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    const report = await web.audit.verifyChain();
    await web.audit.record(who(ctx), { action: 'audit.verified', detail: { ok: report.ok, checked: report.checked, brokenAt: report.brokenAt ?? null } });
    ctx.query = {};
    await show(ctx, report);
  });

  r.get('/audit/export.csv', auth(web, 'export'), async (ctx) => {
    const v = parseInput(auditQuery, ctx.query);
    const scope = scopeOf(principal(ctx));
    const f = filterOf(v);
    await web.audit.record(who(ctx), { action: 'audit.exported', merchantId: principal(ctx).merchantId, detail: { filter: new URLSearchParams(stripEmpty(v)).toString().slice(0, 300) } });
    let out = csvLine(['id', 'at', 'actor', 'action', 'merchant_id', 'identity_id', 'binding_id', 'source', 'detail', 'hash']);
    const { beforeId: _ignored, ...all } = f;
    for await (const page of auditPages(web.db, scope, all))
      for (const a of page) out += csvLine([a.id, a.at, a.actor, a.action, a.merchant_id, a.identity_id, a.binding_id, a.source, JSON.stringify(a.detail), a.hash]);
    ctx.type = 'text/csv; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="audit-${new Date(web.now()).toISOString().slice(0, 10)}.csv"`);
    ctx.body = out;
  });
}
