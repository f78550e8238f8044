/**
 * Server-rendered SVG charts for the dashboard: no chart library, no script, and no
 * style attributes (CSP style-src 'self'): colours come from classes in admin.css.
 * Every text in the markup is escaped here, because the page embeds it unescaped.
 */

export interface Series {
  name: string;
  values: number[];
}

export interface ChartInput {
  /** One label per x position (days: `MM-DD`). */
  labels: string[];
  series: Series[];
  title: string;
}

const W = 560;
const H = 200;
const PAD = { left: 40, right: 8, top: 12, bottom: 28 };

export const escapeXml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** A "nice" tick step for about four intervals: 1, 2, 2.5 or 5 × 10^n, and whole numbers only (the data are counts). */
export function niceStep(max: number): number {
  const raw = Math.max(max, 1) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= raw) ?? 10 * p;
  return Math.max(1, Math.ceil(step));
}

/** The axis top: the smallest whole number of steps that holds `max`. */
export function niceMax(max: number): number {
  const step = niceStep(max);
  return Math.max(step, Math.ceil(max / step) * step);
}

function frame(c: ChartInput, max: number): string[] {
  const innerH = H - PAD.top - PAD.bottom;
  const parts: string[] = [];
  const step = niceStep(max);
  for (let v = 0; v <= max; v += step) {
    const y = PAD.top + innerH - (innerH * v) / max;
    parts.push(`<line class="grid-line" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`);
    parts.push(`<text class="label" x="${PAD.left - 6}" y="${(y + 3).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  const xStep = (W - PAD.left - PAD.right) / Math.max(c.labels.length, 1);
  // At most ~7 x labels, so they never overlap on a phone.
  const every = Math.max(1, Math.ceil(c.labels.length / 7));
  c.labels.forEach((l, i) => {
    if (i % every === 0) parts.push(`<text class="label" x="${(PAD.left + xStep * i + xStep / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${escapeXml(l)}</text>`);
  });
  parts.push(`<line class="axis" x1="${PAD.left}" x2="${W - PAD.right}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom}"/>`);
  return parts;
}

const open = (c: ChartInput) =>
  `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(c.title)}" xmlns="http://www.w3.org/2000/svg"><title>${escapeXml(c.title)}</title>`;

/** Grouped bars: one group per label, one bar per series. */
export function barChart(c: ChartInput): string {
  const max = niceMax(Math.max(0, ...c.series.flatMap((s) => s.values)));
  const innerH = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(c.labels.length, 1);
  const barW = Math.max(1, (step * 0.78) / Math.max(c.series.length, 1));
  const bars: string[] = [];
  c.series.forEach((s, si) =>
    s.values.forEach((v, i) => {
      if (v <= 0) return;
      const h = (innerH * v) / max;
      const x = PAD.left + step * i + step * 0.11 + barW * si;
      bars.push(`<rect class="bar-${si % 5}" x="${x.toFixed(1)}" y="${(PAD.top + innerH - h).toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" rx="1.5"><title>${escapeXml(`${s.name} ${c.labels[i] ?? ''}: ${v}`)}</title></rect>`);
    }),
  );
  return `${open(c)}${frame(c, max).join('')}${bars.join('')}</svg>`;
}

/** Lines with a dot per point. */
export function lineChart(c: ChartInput): string {
  const max = niceMax(Math.max(0, ...c.series.flatMap((s) => s.values)));
  const innerH = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(c.labels.length, 1);
  const out: string[] = [];
  c.series.forEach((s, si) => {
    const pts = s.values.map((v, i) => [PAD.left + step * i + step / 2, PAD.top + innerH - (innerH * v) / max] as const);
    out.push(`<polyline class="line line-${si % 4}" points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
    pts.forEach(([x, y], i) => out.push(`<circle class="dot dot-${si % 4}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5"><title>${escapeXml(`${s.name} ${c.labels[i] ?? ''}: ${s.values[i]}`)}</title></circle>`));
  });
  return `${open(c)}${frame(c, max).join('')}${out.join('')}</svg>`;
}

/** `days` labels ending today (UTC), oldest first, and the index of each ISO day. */
export function dayAxis(nowMs: number, days: number): { labels: string[]; index: Map<string, number>; from: Date } {
  const today = Date.UTC(new Date(nowMs).getUTCFullYear(), new Date(nowMs).getUTCMonth(), new Date(nowMs).getUTCDate());
  const labels: string[] = [];
  const index = new Map<string, number>();
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(today - i * 86_400_000).toISOString().slice(0, 10);
    index.set(d, labels.length);
    labels.push(d.slice(5));
  }
  return { labels, index, from: new Date(today - (days - 1) * 86_400_000) };
}

/** Spreads `{day, key, n}` rows into one series per key over the day axis. */
export function toSeries(rows: { day: string; key: string; n: number }[], keys: { key: string; name: string }[], axis: { labels: string[]; index: Map<string, number> }): Series[] {
  return keys.map(({ key, name }) => {
    const values = axis.labels.map(() => 0);
    for (const r of rows) {
      const i = axis.index.get(r.day);
      if (r.key === key && i !== undefined) values[i] = (values[i] ?? 0) + r.n;
    }
    return { name, values };
  });
}
