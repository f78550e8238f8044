/**
 * The customer-service window (wechat-protocol.md §3.2) over the in-process Kv with a fake
 * clock: quotas per interaction kind, expiry, replacement by a newer interaction, and
 * `tryConsume` never handing out more slots than the quota under concurrency.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryKv } from '../store/kv-memory.ts';
import { createCsWindow } from './cs-window.ts';

const quotas = { messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 };

function setup() {
  let t = 1_700_000_000_000;
  const now = () => t;
  const kv = createMemoryKv({ now });
  const w = createCsWindow({ kv, now, quotas: () => quotas });
  return { w, advance: (ms: number) => void (t += ms), now };
}

describe('customer-service window (§3.2)', () => {
  it('When nobody has interacted, then the window is closed and nothing can be sent', async () => {
    const { w } = setup();
    expect(await w.status('wxA', 'o1')).toEqual({ open: false, remaining: 0, expiresAt: null });
    expect(await w.tryConsume('wxA', 'o1')).toBe(false);
  });

  it('When the user sends a message, then 5 sends are allowed for 48 hours and the 6th is refused', async () => {
    const { w, now } = setup();
    await w.record('wxA', 'o1', 'message');
    expect(await w.status('wxA', 'o1')).toEqual({ open: true, remaining: 5, expiresAt: now() + 48 * 3_600_000 });
    for (let i = 0; i < 5; i++) expect(await w.tryConsume('wxA', 'o1')).toBe(true);
    expect(await w.tryConsume('wxA', 'o1')).toBe(false);
    expect((await w.status('wxA', 'o1')).remaining).toBe(0);
  });

  it('When a menu click opened the window, then 3 sends are allowed and it closes after one minute', async () => {
    const { w, advance } = setup();
    await w.record('wxA', 'o1', 'event');
    expect((await w.status('wxA', 'o1')).remaining).toBe(3);
    expect(await w.tryConsume('wxA', 'o1')).toBe(true);
    advance(60_001);
    expect(await w.status('wxA', 'o1')).toEqual({ open: false, remaining: 0, expiresAt: null });
    expect(await w.tryConsume('wxA', 'o1')).toBe(false);
  });

  it('When both windows are open, then the one running out first is spent first', async () => {
    const { w } = setup();
    await w.record('wxA', 'o1', 'message');
    await w.record('wxA', 'o1', 'event');
    expect((await w.status('wxA', 'o1')).remaining).toBe(8);
    for (let i = 0; i < 3; i++) await w.tryConsume('wxA', 'o1');
    // The 1-minute grant is used up; the 48-hour one is untouched.
    const s = await w.status('wxA', 'o1');
    expect(s.remaining).toBe(5);
  });

  it('When the user writes again, then the new grant replaces the old one with a fresh quota', async () => {
    const { w, advance } = setup();
    await w.record('wxA', 'o1', 'message');
    for (let i = 0; i < 5; i++) await w.tryConsume('wxA', 'o1');
    advance(1000);
    await w.record('wxA', 'o1', 'message');
    expect((await w.status('wxA', 'o1')).remaining).toBe(5);
  });

  it('When many senders race for the last slots, then exactly the quota is handed out', async () => {
    const { w } = setup();
    await w.record('wxA', 'o1', 'event');
    const results = await Promise.all(Array.from({ length: 20 }, () => w.tryConsume('wxA', 'o1')));
    expect(results.filter(Boolean)).toHaveLength(3);
  });

  it('When the user unfollows, then clear closes the window', async () => {
    const { w } = setup();
    await w.record('wxA', 'o1', 'message');
    await w.clear('wxA', 'o1');
    expect((await w.status('wxA', 'o1')).open).toBe(false);
  });

  it('When accounts or users differ, then their windows are separate', async () => {
    const { w } = setup();
    await w.record('wxA', 'o1', 'message');
    expect((await w.status('wxB', 'o1')).open).toBe(false);
    expect((await w.status('wxA', 'o2')).open).toBe(false);
  });
});
