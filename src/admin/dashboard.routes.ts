/**
 * The dashboard: totals and two weeks of per-day charts (links, logins, notices, WeChat
 * errcodes, webhooks), all within the viewer's merchant scope, and the official accounts'
 * access-token fetches and quota use, counted per quota day (Beijing time, when WeChat's
 * daily quotas reset).
 */
import type Router from '@koa/router';
import type { AppConfig } from '../config/index.ts';
import { barChart, dayAxis, lineChart, toSeries, type Series } from './charts.ts';
import * as D from './dashboard.queries.ts';
import { auth, principal, renderAdmin } from './guard.routes.ts';
import { scopeOf, type Scope } from './policy.ts';
import type { AdminWeb } from './web.ts';

const DAYS = 14;
const QUOTA_SHIFT_MS = 8 * 3600_000;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Daily quotas of the APIs counted (wechat-protocol.md §9): templates 100,000 by default
 * (more with many followers), customer-service 500,000, stable_token 500,000, cgi-bin/token 2,000.
 */
export const dailyLimits = { template: 100_000, custom: 500_000, stableToken: 500_000, classicToken: 2_000 } as const;
const APIS = ['token', 'template', 'custom'] as const;

/**
 * Official accounts whose counts this viewer may see. Accounts are shared by merchants, so
 * a scoped viewer sees an account's counts only when no other merchant sends through it.
 */
export function accountsInView(config: Pick<AppConfig, 'merchants' | 'officialAccounts'>, scope: Scope) {
  return config.officialAccounts.filter((a) => {
    const users = config.merchants.filter((m) => m.officialAccount === a.id).map((m) => m.id);
    return scope.merchantId === null || (users.length === 1 && users[0] === scope.merchantId);
  });
}

function chart(title: string, labels: string[], series: Series[], kind: 'bar' | 'line') {
  return {
    title,
    svg: (kind === 'bar' ? barChart : lineChart)({ title, labels, series }),
    legend: series.map((s) => ({ name: s.name, total: sum(s.values) })),
    empty: series.every((s) => sum(s.values) === 0),
  };
}

const pct = (n: number, of: number) => (of > 0 ? Math.min(100, Math.round((n / of) * 1000) / 10) : 0);

export function dashboardRoutes(r: Router, web: AdminWeb): void {
  r.get('/', auth(web, 'view'), async (ctx) => {
    const scope = scopeOf(principal(ctx));
    const axis = dayAxis(web.now(), DAYS);
    const quotaAxis = dayAxis(web.now() + QUOTA_SHIFT_MS, DAYS);
    const accounts = accountsInView(web.config, scope);
    const [changes, activity, logins, notices, codes, hooks, totals, calls] = await Promise.all([
      D.bindingChanges(web.db, scope, axis.from),
      D.identityActivity(web.db, scope, axis.from),
      D.oauthLogins(web.db, scope, axis.from),
      D.noticeOutcomes(web.db, scope, axis.from),
      D.errcodes(web.db, scope, axis.from),
      D.webhookOutcomes(web.db, scope, axis.from),
      D.totals(web.db, scope),
      D.quotaCounts(web.kv, accounts.map((a) => a.appId), APIS, [...quotaAxis.index.keys()]),
    ]);
    const links = toSeries(changes, [{ key: 'linked', name: 'Links' }, { key: 'unlinked', name: 'Unlinks' }], axis);
    const users = toSeries(
      [...activity, ...logins],
      [{ key: 'oauth', name: 'Sign-ins to merchant apps' }, { key: 'login', name: 'WeChat logins (latest per user)' }, { key: 'new', name: 'New users' }],
      axis,
    );
    const noticeSeries = toSeries(
      notices,
      [{ key: 'delivered', name: 'Delivered' }, { key: 'sent', name: 'Sent' }, { key: 'failed', name: 'Failed' }, { key: 'unknown', name: 'Unknown' }],
      axis,
    );
    // The four most frequent errcodes get a line each.
    const byCode = new Map<string, number>();
    for (const c of codes) byCode.set(c.key, (byCode.get(c.key) ?? 0) + c.n);
    const topCodes = [...byCode].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([key]) => ({ key, name: `errcode ${key}` }));
    const hookSeries = toSeries(hooks, [{ key: 'sent', name: 'Sent' }, { key: 'queued', name: 'Retrying' }, { key: 'abandoned', name: 'Abandoned' }], axis);
    const tokenSeries = toSeries(calls, accounts.slice(0, 4).map((a) => ({ key: `${a.appId}|token`, name: a.id })), quotaAxis);
    const sendSeries = toSeries(
      calls.map((c) => ({ ...c, key: c.key.slice(c.key.indexOf('|') + 1) })),
      [{ key: 'template', name: 'Template' }, { key: 'custom', name: 'Customer service' }],
      quotaAxis,
    );
    const today = [...quotaAxis.index.keys()].at(-1) ?? '';
    const todayOf = (appId: string, api: string) => calls.find((c) => c.day === today && c.key === `${appId}|${api}`)?.n ?? 0;
    const quota = accounts.map((a) => {
      const tokenLimit = a.tokenMethod === 'classic' ? dailyLimits.classicToken : dailyLimits.stableToken;
      const row = (api: string, limit: number) => ({ used: todayOf(a.appId, api), limit, pct: pct(todayOf(a.appId, api), limit) });
      return { id: a.id, appId: a.appId, token: row('token', tokenLimit), template: row('template', dailyLimits.template), custom: row('custom', dailyLimits.custom) };
    });
    renderAdmin(ctx, web, 'dashboard', {
      title: 'Dashboard',
      stats: [
        { label: 'WeChat users', value: totals.identities, note: scope.merchantId ? 'with a binding here' : 'all official accounts' },
        { label: 'Active bindings', value: totals.activeBindings, note: 'now' },
        { label: 'Links', value: sum(links[0]?.values ?? []), note: `last ${DAYS} days` },
        { label: 'Sign-ins', value: sum(users[0]?.values ?? []), note: `to merchant apps, last ${DAYS} days` },
        { label: 'Notices delivered', value: sum(noticeSeries[0]?.values ?? []), note: `${sum(noticeSeries[2]?.values ?? [])} failed, last ${DAYS} days` },
      ],
      charts: [
        chart('Links and unlinks per day', axis.labels, links, 'bar'),
        chart('Logins per day', axis.labels, users, 'line'),
        chart('Notices per day', axis.labels, noticeSeries, 'bar'),
        chart('WeChat errcodes per day', axis.labels, toSeries(codes, topCodes, axis), 'line'),
        chart('Webhooks per day', axis.labels, hookSeries, 'bar'),
      ],
      quotaCharts: accounts.length
        ? [chart('Access-token fetches per quota day', quotaAxis.labels, tokenSeries, 'line'), chart('WeChat send calls per quota day', quotaAxis.labels, sendSeries, 'bar')]
        : [],
      quota,
      quotaDay: today,
    });
  });
}
