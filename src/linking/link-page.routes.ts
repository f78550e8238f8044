/**
 * Rendering for the end-user pages: the base layout with the linking stylesheet, the
 * locale's translator, and the one outcome page every login and proof error uses.
 * Eta escapes every value, including merchant-supplied labels and WeChat nicknames.
 */
import type { Context } from 'koa';
import { translator } from '../http/i18n.ts';
import { renderPage, type Views } from '../http/views.ts';
import { linkText, type LinkTextKey } from './messages.ts';

export type T = (key: LinkTextKey, vars?: Record<string, string | number>) => string;

export const tr = (ctx: Context): T => translator(linkText, ctx.state.locale ?? 'zh-CN');

export interface Action {
  href: string;
  label: string;
  kind?: 'primary' | 'secondary';
}

export interface OutcomeModel {
  icon: 'ok' | 'warn' | 'err';
  heading: string;
  text: string;
  hint?: string;
  actions: Action[];
}

export function renderLink(ctx: Context, views: Views, template: string, model: { title: string } & Record<string, unknown>, status = 200): void {
  renderPage(ctx, views, `link/${template}`, { css: 'link', bodyClass: 'link', ...model }, status);
}

export function renderOutcome(ctx: Context, views: Views, model: OutcomeModel, status: number): void {
  renderLink(ctx, views, 'outcome', { title: model.heading, ...model }, status);
}

/** `/wechat/login?merchant=…&next=…`: where every "start again" goes. */
export const loginHref = (merchantId: string, next?: string): string =>
  `/wechat/login?merchant=${encodeURIComponent(merchantId)}${next ? `&next=${encodeURIComponent(next)}` : ''}`;
