/**
 * Official accounts made and edited in the admin UI, and "back to the file's version" for
 * both kinds (config-overlay.service.ts). Official accounts are shared by merchants, so
 * only an unscoped admin may change them ('accounts.write'). The AppSecret, token and
 * EncodingAESKey are write-only: the form says "set" or "not set", an empty field keeps
 * the current value. Every form needs a fresh password + TOTP check.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { OfficialAccountConfig } from '../config/index.ts';
import type { ConfigSync } from '../config/overlay.sync.ts';
import type { OverlayKind } from '../config/overlay.ts';
import { AppError } from '../http/errors.ts';
import { accountDoc, accountForm, accountView } from './config-overlay.forms.ts';
import type { ConfigOverlayService } from './config-overlay.service.ts';
import { auth, formSchema, fresh, principal, readForm, renderAdmin, see, who } from './guard.routes.ts';
import { assertCan, assertMerchant } from './policy.ts';
import type { AdminWeb } from './web.ts';

export interface ConfigPages {
  overlay: ConfigOverlayService;
  inFile(kind: OverlayKind, id: string): boolean;
  /** Where each item of the effective config comes from, for the pages. */
  sources(): Promise<(kind: OverlayKind, id: string) => { label: string; updatedAt: Date | null }>;
}

export function createConfigPages(overlay: ConfigOverlayService, sync: ConfigSync): ConfigPages {
  const inFile = (kind: OverlayKind, id: string) => (kind === 'merchant' ? sync.live.file.merchants : sync.live.file.officialAccounts).some((x) => x.id === id);
  return {
    overlay,
    inFile,
    async sources() {
      const rows = await overlay.list();
      return (kind, id) => {
        const row = rows.find((o) => o.kind === kind && o.id === id);
        const label = !row ? 'config file' : inFile(kind, id) ? 'config file, edited here' : 'made here';
        return { label, updatedAt: row?.updatedAt ?? null };
      };
    },
  };
}

/** The message a form shows again for a refused save; anything else is not the form's to handle. */
export function formProblem(err: unknown): string {
  if (err instanceof AppError && (err.code === 'request.invalid' || err.code === 'request.conflict')) return err.publicMessage ?? err.code;
  throw err;
}

const revertForm = formSchema({ version: z.coerce.number().int().min(1) });

export function configOverlayRoutes(r: Router, web: AdminWeb, pages: ConfigPages): void {
  const accountOf = (ctx: Context): OfficialAccountConfig => {
    const a = web.config.officialAccounts.find((x) => x.id === ctx.params.id);
    if (!a) throw new AppError('request.not_found');
    return a;
  };
  const form = (ctx: Context, model: { title: string; isNew: boolean; a: ReturnType<typeof accountView>; version: number; [k: string]: unknown }, status = 200) =>
    renderAdmin(ctx, web, 'account-form', { usedBy: web.config.merchants.filter((m) => m.officialAccount === model.a.id).map((m) => m.id), ...model }, status);

  r.get('/official-accounts/new', auth(web, 'accounts.write'), fresh('/admin/official-accounts/new'), (ctx) => {
    form(ctx, { title: 'New official account', isNew: true, a: accountView(undefined), version: 0 });
  });

  r.post('/official-accounts', auth(web, 'accounts.write'), fresh('/admin/official-accounts/new'), async (ctx) => {
    const f = await readForm(ctx, web, accountForm);
    try {
      await pages.overlay.save({ kind: 'official_account', id: f.id, doc: accountDoc(f, undefined), expectedVersion: null, who: who(ctx) });
    } catch (err) {
      const error = formProblem(err);
      // What was typed comes back, except the secrets: they are never echoed into a page.
      return form(ctx, { title: 'New official account', isNew: true, a: { ...accountView(undefined), id: f.id, appId: f.appId, originalId: f.originalId, tokenMethod: f.tokenMethod }, version: 0, error }, (err as AppError).status);
    }
    see(ctx, '/admin/merchants', `Official account ${f.id} created.`);
  });

  r.get('/official-accounts/:id', auth(web, 'accounts.write'), fresh((ctx) => `/admin/official-accounts/${ctx.params.id ?? ''}`), async (ctx) => {
    const a = accountOf(ctx);
    const row = await pages.overlay.find('official_account', a.id);
    form(ctx, { title: `Official account ${a.id}`, isNew: false, a: accountView(a), version: row?.version ?? 0, fromFile: pages.inFile('official_account', a.id), edited: !!row });
  });

  r.post('/official-accounts/:id', auth(web, 'accounts.write'), fresh((ctx) => `/admin/official-accounts/${ctx.params.id ?? ''}`), async (ctx) => {
    const a = accountOf(ctx);
    const f = await readForm(ctx, web, accountForm);
    try {
      await pages.overlay.save({ kind: 'official_account', id: a.id, doc: accountDoc(f, a), expectedVersion: f.version, who: who(ctx) });
    } catch (err) {
      const error = formProblem(err);
      return form(ctx, { title: `Official account ${a.id}`, isNew: false, a: { ...accountView(a), originalId: f.originalId, tokenMethod: f.tokenMethod }, version: f.version, fromFile: pages.inFile('official_account', a.id), error }, (err as AppError).status);
    }
    see(ctx, '/admin/merchants', `Official account ${a.id} saved.`);
  });

  // Back to the config file's version of a merchant or an official account.
  r.post('/config/:kind/:id/revert', auth(web, 'merchants.write'), fresh('/admin/merchants'), async (ctx) => {
    const kind = z.enum(['merchant', 'official_account']).safeParse(ctx.params.kind);
    if (!kind.success) throw new AppError('request.not_found');
    const id = ctx.params.id ?? '';
    if (kind.data === 'merchant') assertMerchant(principal(ctx), id);
    else assertCan(principal(ctx), 'accounts.write');
    const f = await readForm(ctx, web, revertForm);
    await pages.overlay.revert({ kind: kind.data, id, expectedVersion: f.version, who: who(ctx) });
    see(ctx, kind.data === 'merchant' ? `/admin/merchants/${id}` : '/admin/merchants', `${id} is back to the config file’s version.`);
  });
}
