/**
 * Time arithmetic of the dispatcher, pure and clock-injected: merchant quiet hours and
 * local days (Intl time zones), WeChat's quota resets (daily quotas reset at midnight
 * Beijing time, per-minute ones at the next minute; wechat-protocol.md §9) and the
 * full-jitter backoff of SECURITY.md D4.
 */

export interface QuietHours {
  /** `HH:MM` local time; the window may wrap midnight (22:00–08:00). */
  start: string;
  end: string;
  timeZone: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

interface LocalTime {
  day: string;
  /** Minutes since local midnight. */
  minute: number;
  second: number;
}

export function localTime(ms: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return {
    day: `${parts.year}-${parts.month}-${parts.day}`,
    minute: Number(parts.hour) * 60 + Number(parts.minute),
    second: Number(parts.second),
  };
}

/** The local calendar day (YYYY-MM-DD) in a time zone: the unit of per-user daily caps. */
export const localDay = (ms: number, timeZone: string): string => localTime(ms, timeZone).day;

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * When quiet hours are on at `ms`, the instant they end; otherwise null. A start equal to
 * its end means no quiet hours. Across a DST change the answer can be an hour early; the
 * dispatcher then finds the window still closed and waits again.
 */
export function quietUntil(ms: number, q: QuietHours | undefined): number | null {
  if (!q) return null;
  const start = minutesOf(q.start);
  const end = minutesOf(q.end);
  if (start === end) return null;
  const t = localTime(ms, q.timeZone);
  const quiet = start < end ? t.minute >= start && t.minute < end : t.minute >= start || t.minute < end;
  if (!quiet) return null;
  const minutesLeft = (end - t.minute + 1440) % 1440;
  const intoMinuteMs = t.second * 1000 + (ms % 1000);
  return ms - intoMinuteMs + minutesLeft * 60_000;
}

const BEIJING_OFFSET_MS = 8 * 3600_000;
const DAY_MS = 86_400_000;

/** WeChat's daily quotas (45009) reset at midnight Beijing time (UTC+8, no DST). */
export function nextQuotaDay(ms: number): number {
  return Math.floor((ms + BEIJING_OFFSET_MS) / DAY_MS) * DAY_MS + DAY_MS - BEIJING_OFFSET_MS;
}

/** 45011 "retry next minute". */
export const nextMinute = (ms: number): number => Math.floor(ms / 60_000) * 60_000 + 60_000;

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/** `random(0, min(cap, base·2^attempt))` (full jitter); `attempt` counts from 0. */
export function fullJitter(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(p.capMs, p.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
