import { describe, expect, it } from 'vitest';
import { describeDetail, mergePage, type TimelineEvent } from './timeline.ts';

const ev = (ms: number, title = `e${ms}`): TimelineEvent => ({ at: new Date(ms), kind: 'other', title, detail: '', merchantId: null });

/** Walks every page from `before` on; returns the titles in the order shown. */
function walk(sources: TimelineEvent[][], limit: number): string[] {
  const seen: string[] = [];
  let before: Date | null = new Date(1e13);
  for (let i = 0; before && i < 100; i++) {
    const page = mergePage(sources, before, limit);
    seen.push(...page.events.map((e) => e.title));
    before = page.next;
  }
  return seen;
}

describe('timeline paging', () => {
  it('When sources interleave, then one page holds the newest events of all of them, newest first', () => {
    const page = mergePage([[ev(1), ev(5)], [ev(3), ev(9)], [ev(7)]], new Date(100), 3);
    expect(page.events.map((e) => e.at.getTime())).toEqual([9, 7, 5]);
    expect(page.next).toEqual(new Date(5));
  });

  it('When a page boundary falls inside events of the same millisecond, then the group moves whole to the next page and nothing is lost or shown twice', () => {
    const sources = [[ev(10, 'a'), ev(9, 'b'), ev(9, 'c'), ev(9, 'd'), ev(8, 'e')], [ev(9, 'f'), ev(1, 'g')]];
    const first = mergePage(sources, new Date(100), 3);
    expect(first.events.map((e) => e.title)).toEqual(['a']);
    expect(first.next).toEqual(new Date(10));
    const titles = walk(sources, 3);
    expect(titles.sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it('When the last page is reached, then there is no next cursor', () => {
    expect(mergePage([[ev(2), ev(1)]], new Date(100), 5)).toMatchObject({ next: null });
    expect(mergePage([[ev(2), ev(1)]], new Date(2), 5).events.map((e) => e.title)).toEqual(['e1']);
  });
});

describe('timeline detail', () => {
  it('When an audit row carries before/after values, then they read as changes, without ids, notes or empty values', () => {
    const text = describeDetail({ noticeDelivery: 'd-1', note: 'free text', duplicateRiskAccepted: true, 'before.status': 'unknown', 'after.status': 'queued', 'before.errcode': null, 'before.attempts': 3, 'after.attempts': 0, 'before.error': 'transport:timeout' });
    expect(text).toBe('duplicateRiskAccepted: true · status: unknown → queued · attempts: 3 → 0 · error was transport:timeout');
  });
});
