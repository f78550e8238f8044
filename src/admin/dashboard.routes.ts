/**
 * The dashboard: totals and two weeks of per-day charts (links, logins, notices, WeChat
 * errcodes, webhooks), all within the viewer's merchant scope.
 */
import type Router from '@koa/router';
import { barChart, dayAxis, lineChart, toSeries } from './charts.ts';
import * as D from './dashboard.queries.ts';
import { auth, principal, renderAdmin } from './guard.routes.ts';
import { scopeOf } from './policy.ts';
import type { AdminWeb } from './web.ts';

const DAYS = 14;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function dashboardRoutes(r: Router, web: AdminWeb): void {
  r.get('/', auth(web, 'view'), async (ctx) => {
    const scope = scopeOf(principal(ctx));
    const axis = dayAxis(web.now(), DAYS);
    const [changes, activity, notices, codes, hooks, totals] = await Promise.all([
      D.bindingChanges(web.db, scope, axis.from),
      D.identityActivity(web.db, scope, axis.from),
      D.noticeOutcomes(web.db, scope, axis.from),
      D.errcodes(web.db, scope, axis.from),
      D.webhookOutcomes(web.db, scope, axis.from),
      D.totals(web.db, scope),
    ]);
    const links = toSeries(changes, [{ key: 'linked', name: 'Links' }, { key: 'unlinked', name: 'Unlinks' }], axis);
    const users = toSeries(activity, [{ key: 'new', name: 'New users' }, { key: 'login', name: 'Logins (latest per user)' }], axis);
    const noticeSeries = toSeries(
      notices.map((n) => ({ ...n, key: n.key === 'sending' || n.key === 'queued' ? 'pending' : n.key })),
      [{ key: 'delivered', name: 'Delivered' }, { key: 'sent', name: 'Sent' }, { key: 'failed', name: 'Failed' }, { key: 'unknown', name: 'Unknown' }],
      axis,
    );
    // The four most frequent errcodes get a line each.
    const byCode = new Map<string, number>();
    for (const c of codes) byCode.set(c.key, (byCode.get(c.key) ?? 0) + c.n);
    const topCodes = [...byCode].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([key]) => ({ key, name: `errcode ${key}` }));
    const hookSeries = toSeries(hooks, [{ key: 'sent', name: 'Sent' }, { key: 'queued', name: 'Retrying' }, { key: 'abandoned', name: 'Abandoned' }], axis);
    const chart = (title: string, series: typeof links, kind: 'bar' | 'line') => ({
      title,
      svg: (kind === 'bar' ? barChart : lineChart)({ title, labels: axis.labels, series }),
      legend: series.map((s) => ({ name: s.name, total: sum(s.values) })),
      empty: series.every((s) => sum(s.values) === 0),
    });
    renderAdmin(ctx, web, 'dashboard', {
      title: 'Dashboard',
      stats: [
        { label: 'WeChat users', value: totals.identities, note: scope.merchantId ? 'with a binding here' : 'all official accounts' },
        { label: 'Active bindings', value: totals.activeBindings, note: 'now' },
        { label: 'Links', value: sum(links[0]?.values ?? []), note: `last ${DAYS} days` },
        { label: 'Notices delivered', value: sum(noticeSeries[0]?.values ?? []), note: `${sum(noticeSeries[2]?.values ?? [])} failed, last ${DAYS} days` },
      ],
      charts: [
        chart('Links and unlinks per day', links, 'bar'),
        chart('WeChat users per day', users, 'line'),
        chart('Notices per day', noticeSeries, 'bar'),
        chart('WeChat errcodes per day', toSeries(codes, topCodes, axis), 'line'),
        chart('Webhooks per day', hookSeries, 'bar'),
      ],
    });
  });
}
