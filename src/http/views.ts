/**
 * Server-rendered pages with Eta (auto-escaping: `<%= %>` escapes, `<%~ %>` is only for
 * markup we built ourselves). Every page has a typed view model; layouts and partials
 * live in views/. No inline script, so the CSP holds.
 */
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';
import type { Locale } from './i18n.ts';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export interface PageModel {
  title: string;
  lang?: Locale;
  [key: string]: unknown;
}

export interface Views {
  render(template: string, model: PageModel): string;
}

export function createViews(opts: { dir?: string; cache?: boolean } = {}): Views {
  const eta = new Eta({ views: opts.dir ?? VIEWS_DIR, autoEscape: true, cache: opts.cache ?? true, autoTrim: false });
  return {
    render: (template, model) => eta.render(template, model),
  };
}

export function renderPage(ctx: Context, views: Views, template: string, model: PageModel, status = 200): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = views.render(template, { lang: ctx.state.locale, requestId: ctx.state.requestId, ...model });
}
