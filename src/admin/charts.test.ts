import { describe, expect, it } from 'vitest';
import { barChart, dayAxis, lineChart, niceMax, niceStep, toSeries } from './charts.ts';

describe('charts', () => {
  it('When counts are small or large, then the axis steps are whole, round numbers', () => {
    expect([niceStep(0), niceStep(4), niceStep(5), niceStep(37), niceStep(1234)]).toEqual([1, 1, 2, 10, 500]);
    expect([niceMax(0), niceMax(5), niceMax(37), niceMax(1234)]).toEqual([1, 6, 40, 1500]);
  });

  it('When rows are spread over a day axis, then each series has one value per day, oldest first', () => {
    const axis = dayAxis(Date.UTC(2026, 0, 10, 15), 3);
    expect(axis.labels).toEqual(['01-08', '01-09', '01-10']);
    const s = toSeries([{ day: '2026-01-09', key: 'a', n: 2 }, { day: '2026-01-10', key: 'a', n: 1 }, { day: '2025-12-01', key: 'a', n: 9 }], [{ key: 'a', name: 'A' }], axis);
    expect(s).toEqual([{ name: 'A', values: [0, 2, 1] }]);
  });

  it('When a label or series name holds markup, then the SVG escapes it and carries no style attribute (CSP)', () => {
    const input = { title: '<script>', labels: ['<b>', 'x'], series: [{ name: '"&', values: [1, 3] }] };
    for (const svg of [barChart(input), lineChart(input)]) {
      expect(svg).not.toContain('<script>');
      expect(svg).not.toContain('<b>');
      expect(svg).toContain('&lt;script&gt;');
      expect(svg).not.toMatch(/style=/);
    }
  });
});
