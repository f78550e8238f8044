/**
 * Followers and CRM (issue 6): the follower sync pages through user/get and
 * user/info/batchget into identities' subscribe state and resumes after a crash from its
 * Postgres cursor (wechat-protocol.md §7.2, §7.3); merchant tags on identities through
 * `PUT /api/v1/identities/:sub/tags` (scope tags:write), kept apart per merchant and usable
 * to pick the audience of a notice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIdentitiesByTags, setIdentityTags } from '../../src/inbox/index.ts';
import { follower, linkUser, startHarness, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ options: { workerEveryMs: 50 } });
});
afterAll(async () => {
  await h?.stop();
});

async function subscribedOf(appId: string): Promise<Map<string, boolean | null>> {
  const r = await h.deps.db.query<{ openid: string; subscribed: boolean | null }>(`SELECT openid, subscribed FROM identities WHERE app_id = $1`, [appId]);
  return new Map(r.rows.map((x) => [x.openid, x.subscribed]));
}

describe('follower sync (§7.2, §7.3)', () => {
  it('When the sync crashes mid-list, then the next run resumes from the Postgres cursor without re-fetching finished pages', async () => {
    const account = h.accounts.plain;
    h.sandbox.setLimits({ userGetPageSize: 3 });
    const fans = Array.from({ length: 7 }, () => follower(h, 'plain').openid);
    // Held as subscribed here, but no longer in WeChat's list: the user left while we were not looking.
    await h.deps.db.query(`INSERT INTO identities (app_id, openid, subscribed, tags) VALUES ($1, 'oGoneFan', true, '{card-plain:vip}')`, [account.appId]);
    h.sandbox.inject({ path: '/cgi-bin/user/info/batchget', appId: account.appId, errcode: 48001, nth: 2 });

    await expect(h.inbox.followerSync.runOnce(account, { force: true })).rejects.toThrow();
    const afterCrash = await subscribedOf(account.appId);
    expect(fans.slice(0, 3).every((o) => afterCrash.get(o) === true)).toBe(true);
    expect(fans.slice(3).some((o) => afterCrash.get(o) === true)).toBe(false);

    const report = await h.inbox.followerSync.runOnce(account);
    expect(report).toEqual({ status: 'done', synced: 7, unsubscribed: 1 });
    const done = await subscribedOf(account.appId);
    expect(fans.every((o) => done.get(o) === true)).toBe(true);
    expect(done.get('oGoneFan')).toBe(false);
    const gone = await h.deps.db.query<{ tags: string[] }>(`SELECT tags FROM identities WHERE app_id = $1 AND openid = 'oGoneFan'`, [account.appId]);
    expect(gone.rows[0]?.tags).toEqual([]);
    // Pages: 1, 2 (crash), then 2 again, 3 and the empty end page — page 1 was never fetched twice.
    const userGets = h.sandbox.calls('/cgi-bin/user/get').filter((c) => c.appId === account.appId);
    expect(userGets).toHaveLength(5);
    expect(await h.inbox.followerSync.runOnce(account)).toMatchObject({ status: 'not_due' });
  });

  it('When a user unfollowed through a push, then a later sync keeps them unsubscribed', async () => {
    const account = h.accounts.compat;
    const { userId } = h.sandbox.createUser();
    await h.sandbox.act(account.appId, userId, { type: 'follow' });
    await h.sandbox.act(account.appId, userId, { type: 'unfollow' });
    const openid = h.sandbox.openid(account.appId, userId);
    await h.inbox.followerSync.runOnce(account, { force: true });
    expect((await subscribedOf(account.appId)).get(openid)).toBe(false);
  });
});

describe('the inbox worker', () => {
  it('When the worker runs, then every account gets its follower sync and day-old Postgres claims are pruned', async () => {
    await h.deps.db.query(
      `INSERT INTO inbox_claims (app_id, dedupe_key, state, started_at, created_at) VALUES ($1, 'old', 'done', 0, now() - interval '2 days')`,
      [h.accounts.safe.appId],
    );
    h.inbox.startWorkers?.();
    const finished = async () =>
      (await h.deps.db.query(`SELECT app_id FROM follower_syncs WHERE last_finished_at IS NOT NULL AND run_started_at IS NULL`)).rows.length === 3 &&
      (await h.deps.db.query(`SELECT 1 FROM inbox_claims WHERE dedupe_key = 'old'`)).rows.length === 0;
    const until = Date.now() + 10_000;
    while (!(await finished()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await finished()).toBe(true);
    await h.inbox.stop?.();
  });
});

describe('merchant tags (PUT /api/v1/identities/:sub/tags)', () => {
  async function tagged() {
    const u = follower(h, 'safe');
    // A message makes the user known as a follower.
    await h.sandbox.act(u.appId, u.userId, { type: 'text', content: '你好' });
    const { identityId } = await linkUser(h, 'safe', u.openid, { id: `tag-${u.openid.slice(-6)}`, display: 'x' });
    await h.inbox.idle();
    const sub = await h.linking.subjectFor(identityId, 'card-safe');
    return { ...u, identityId, sub };
  }
  const put = (sub: string, body: unknown, merchant?: string) =>
    fetch(`${h.baseUrl}/api/v1/identities/${encodeURIComponent(sub)}/tags`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(merchant ? { 'x-test-merchant': merchant } : {}) },
      body: JSON.stringify(body),
    });

  it('When the merchant sets tags on its user, then they are stored under its name and pick the notice audience', async () => {
    const u = await tagged();
    await setIdentityTags(h.deps.db, { identityId: u.identityId, merchantId: 'card-other', tags: ['keep'] });
    const r = await put(u.sub, { tags: ['vip', '金卡'] }, 'card-safe');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ sub: u.sub, tags: ['vip', '金卡'] });
    const stored = await h.deps.db.query<{ tags: string[] }>(`SELECT tags FROM identities WHERE id = $1`, [u.identityId]);
    expect(stored.rows[0]?.tags.sort()).toEqual(['card-other:keep', 'card-safe:vip', 'card-safe:金卡'].sort());
    const audience = await findIdentitiesByTags(h.deps.db, { appId: u.appId, merchantId: 'card-safe', tags: ['vip'] });
    expect(audience.map((a) => a.openid)).toContain(u.openid);
    expect(await findIdentitiesByTags(h.deps.db, { appId: u.appId, merchantId: 'card-other', tags: ['vip'] })).toEqual([]);
  });

  it('When another merchant, no credentials or a bad body are used, then the tags are not touched', async () => {
    const u = await tagged();
    expect((await put(u.sub, { tags: ['x'] })).status).toBe(401);
    expect((await put(u.sub, { tags: ['x'] }, 'card-plain')).status).toBe(404);
    expect((await put(u.sub, { tags: ['no spaces'] }, 'card-safe')).status).toBe(400);
    expect((await put(u.sub, { tags: ['a'], extra: 1 }, 'card-safe')).status).toBe(400);
    const stored = await h.deps.db.query<{ tags: string[] }>(`SELECT tags FROM identities WHERE id = $1`, [u.identityId]);
    expect(stored.rows[0]?.tags).toEqual([]);
  });
});
