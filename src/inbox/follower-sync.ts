/**
 * The follower sync (wechat-protocol.md §7.2, §7.3): pages through `user/get` (≤ 10,000
 * openids a page, 500 calls a day), fetches each 100 with `user/info/batchget`, and writes the
 * subscribe state (and unionid, when one appears) onto identities. Followers we hold as
 * subscribed that a complete run did not see have unfollowed. Each change of subscribe state
 * it makes on a linked identity is announced as the push path does (`identity.subscribed` /
 * `identity.unsubscribed`, DESIGN.md "Webhooks"), in the transaction that makes it.
 *
 * Resumable after a crash: the cursor lives in Postgres (`follower_syncs`) and advances in the
 * same transaction as each batch it covers, so a new run continues after the last batch
 * written — it never re-fetches a page it finished nor skips a follower. Followers who left
 * while the run waited can move the list under the cursor: the page, or (when the cursor's
 * own follower left) the whole list, is then written again, never skipped. No transaction
 * spans a WeChat call. One instance syncs an account at a time (Kv lock, extended per batch).
 */
import type { Logger } from 'pino';
import type { OfficialAccountConfig } from '../config/index.ts';
import type { Db } from '../store/db.ts';
import { keyspace } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { BATCH_LIMIT } from '../wechat/api-users.ts';
import { WeChatApiError } from '../wechat/errors.ts';
import type { InboxWeChat } from './cs-send.ts';
import { finishRun, loadCursor, markMissingUnsubscribed, saveProgress, startRun, upsertFollowers, type SyncCursor } from './follower-sync.queries.ts';
import { enqueueSubscriptionWebhooks } from './subscriptions.service.ts';

export type SyncStatus = 'done' | 'not_due' | 'busy' | 'lost_lock' | 'stopped';

export interface SyncReport {
  status: SyncStatus;
  synced: number;
  unsubscribed: number;
}

export interface FollowerSync {
  /** One run for one account: resumes an unfinished run, or starts one when due (or `force`). */
  runOnce(account: OfficialAccountConfig, opts?: { force?: boolean; stopped?: () => boolean }): Promise<SyncReport>;
}

export interface FollowerSyncDeps {
  db: Db;
  kv: Kv;
  wechat: Pick<InboxWeChat, 'getFollowers' | 'batchGetUserInfo'>;
  log: Logger;
  now: () => number;
  /** A new run starts this long after the last one finished (default 24 h). */
  intervalMs?: number;
  leaseMs?: number;
}

export function createFollowerSync(d: FollowerSyncDeps): FollowerSync {
  const intervalMs = d.intervalMs ?? 24 * 3_600_000;
  const leaseMs = d.leaseMs ?? 60_000;
  const log = d.log.child({ component: 'inbox.follower-sync' });

  /**
   * Where to continue inside a page, and the run's count of followers written before there:
   * after the last follower written, while they are still on the page. When they left since,
   * the page shifted left under the saved offset, and resuming at it would skip the follower
   * who moved into it (whom the end of the run would then take for gone): the page is written
   * again from its start instead, which the idempotent upserts allow.
   */
  function resumeAt(c: SyncCursor, openids: string[]): { from: number; synced: number } {
    if (!c.done_through) return { from: 0, synced: c.synced };
    const i = openids.indexOf(c.done_through);
    return i >= 0 ? { from: i + 1, synced: c.synced } : { from: 0, synced: c.synced - c.page_offset };
  }

  return {
    async runOnce(account, opts = {}) {
      const appId = account.appId;
      const lock = await d.kv.tryLock(keyspace.inbox.followerSyncLock(appId), leaseMs);
      if (!lock) return { status: 'busy', synced: 0, unsubscribed: 0 };
      try {
        let c = await loadCursor(d.db, appId);
        if (!c?.run_started_at) {
          const last = c?.last_finished_at?.getTime();
          if (!opts.force && last !== undefined && d.now() - last < intervalMs) return { status: 'not_due', synced: 0, unsubscribed: 0 };
          c = await startRun(d.db, appId, new Date(d.now()));
        }
        const runStartedAt = c.run_started_at as Date;
        let restarted = false;
        for (;;) {
          let page;
          try {
            page = await d.wechat.getFollowers(appId, c.page_cursor || undefined);
          } catch (err) {
            // The saved next_openid is the last follower of the page before; once they unfollow,
            // the sandbox answers 40003 (invalid openid) to it, and so would every later run.
            // wechat-protocol.md §7.3 does not say what real WeChat answers then. List again from
            // the start in this same run (same runStartedAt): the upserts are idempotent. Once
            // per call, so a cursor that keeps failing cannot spend the daily quota in a loop.
            if (restarted || !c.page_cursor || !(err instanceof WeChatApiError) || err.errcode !== 40003) throw err;
            restarted = true;
            log.warn({ appId, errcode: err.errcode }, 'follower sync cursor refused; listing again from the start');
            c = await saveProgress(d.db, appId, { page_cursor: '', done_through: null, page_offset: 0, synced: 0, total: null });
            continue;
          }
          const resume = resumeAt(c, page.openids);
          c = { ...c, synced: resume.synced };
          for (let i = resume.from; i < page.openids.length; i += BATCH_LIMIT) {
            const chunk = page.openids.slice(i, i + BATCH_LIMIT);
            const fetchedAt = new Date(d.now());
            const infos = await d.wechat.batchGetUserInfo(appId, chunk);
            const before: SyncCursor = c;
            c = await d.db.transaction(async (tx) => {
              const subscribed = await upsertFollowers(tx, { appId, runStartedAt, fetchedAt, infos });
              for (const s of subscribed) await enqueueSubscriptionWebhooks(tx, { identityId: s.identityId, subscribed: true, at: s.at });
              return saveProgress(tx, appId, {
                page_cursor: before.page_cursor,
                done_through: chunk[chunk.length - 1] ?? null,
                page_offset: i + chunk.length,
                synced: before.synced + chunk.length,
                total: page.total,
              });
            });
            if (!(await lock.extend(leaseMs))) return { status: 'lost_lock', synced: c.synced, unsubscribed: 0 };
            // Shutting down: the cursor already covers this batch, so the next run picks up here.
            if (opts.stopped?.()) return { status: 'stopped', synced: c.synced, unsubscribed: 0 };
          }
          // WeChat ends the list with an empty page and an empty next_openid (§7.3).
          if (page.count === 0 || !page.nextOpenid || page.nextOpenid === c.page_cursor) break;
          c = await saveProgress(d.db, appId, { page_cursor: page.nextOpenid, done_through: null, page_offset: 0, synced: c.synced, total: page.total });
        }
        const synced = c.synced;
        const unsubscribed = await d.db.transaction(async (tx) => {
          const gone = await markMissingUnsubscribed(tx, { appId, runStartedAt, at: new Date(d.now()) });
          // The push path's rule (subscriptions.service.ts): the event exists exactly when the change does.
          for (const g of gone.linked) await enqueueSubscriptionWebhooks(tx, { identityId: g.identityId, subscribed: false, at: g.at });
          await finishRun(tx, appId, new Date(d.now()));
          return gone.count;
        });
        log.info({ appId, synced, unsubscribed }, 'follower sync finished');
        return { status: 'done', synced, unsubscribed };
      } finally {
        await lock.release().catch(() => undefined);
      }
    },
  };
}

/**
 * The background loop (ROLE=worker|all): every `everyMs`, each account in turn, then
 * housekeeping. The first round waits one period: a sync is due once a day at most, and a
 * process that just started has better things to do (and tests no stray WeChat calls).
 */
export function startFollowerSyncLoop(o: {
  sync: FollowerSync;
  accounts: readonly OfficialAccountConfig[];
  everyMs: number;
  log: Logger;
  housekeeping?: () => Promise<unknown>;
}): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (const account of o.accounts) {
      if (stopped) return;
      await o.sync.runOnce(account, { stopped: () => stopped }).catch((err: unknown) => o.log.warn({ err, appId: account.appId }, 'follower sync failed; will resume'));
    }
    await o.housekeeping?.().catch((err: unknown) => o.log.warn({ err }, 'inbox housekeeping failed'));
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = tick().finally(schedule);
    }, o.everyMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current.catch(() => undefined);
    },
  };
}
