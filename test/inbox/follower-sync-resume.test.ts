/**
 * The follower sync when the list moves under it, and what it tells merchants (issue 6;
 * wechat-protocol.md §7.2, §7.3; DESIGN.md "Webhooks"). The sync promises it "never
 * re-fetches a page it finished nor skips a follower". Followers keep following and
 * unfollowing while a crashed run waits to be resumed: the first two tests unfollow exactly
 * the user the saved cursor points at. The others check that a change of subscribe state
 * found by the sync reaches merchants as the push path's does (identity.unsubscribed /
 * identity.subscribed), once per change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, startHarness, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

async function row(appId: string, openid: string) {
  const r = await h.deps.db.query<{ subscribed: boolean | null; tags: string[] }>(`SELECT subscribed, tags FROM identities WHERE app_id = $1 AND openid = $2`, [appId, openid]);
  return r.rows[0];
}

/** A user we hold in `identities` (as `subscribed`), bound at `merchantId`. */
async function boundIdentity(appId: string, openid: string, merchantId: string, subscribed: boolean): Promise<{ identityId: string; bindingId: string }> {
  const i = await h.deps.db.query<{ id: string }>(
    `INSERT INTO identities (app_id, openid, subscribed, unsubscribed_at) VALUES ($1, $2, $3, CASE WHEN $3 THEN NULL ELSE now() - interval '1 day' END) RETURNING id`,
    [appId, openid, subscribed],
  );
  const identityId = i.rows[0]!.id;
  const b = await h.deps.db.query<{ id: string }>(
    `INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) VALUES ($1, $2, $3, false, 'import', 'test') RETURNING id`,
    [merchantId, identityId, `acct-${openid.slice(-8)}`],
  );
  return { identityId, bindingId: b.rows[0]!.id };
}

/** The identity webhooks of `type` queued for `merchantId` that name `bindingId`. */
async function hooksFor(merchantId: string, type: string, bindingId: string) {
  const r = await h.deps.db.query<{ data: unknown }>(`SELECT data FROM webhook_events WHERE merchant_id = $1 AND type = $2`, [merchantId, type]);
  return r.rows
    .map((x) => (typeof x.data === 'string' ? JSON.parse(x.data) : x.data) as { bindings: { id: string }[]; subscribed: boolean; at: string })
    .filter((d) => d.bindings.some((b) => b.id === bindingId));
}

describe('follower sync: resuming over a list that moved (§7.2, §7.3)', () => {
  it('When the last follower written before a crash unfollows, then the resumed run still visits the next follower instead of marking it unsubscribed', async () => {
    const account = h.accounts.plain;
    // 150 followers on one user/get page: two batchget calls of 100 and 50.
    const fans = Array.from({ length: 150 }, () => follower(h, 'plain'));
    const next = fans[100]!;
    // fans[100] is a follower we already know, with a merchant tag on it.
    await h.deps.db.query(`INSERT INTO identities (app_id, openid, subscribed, tags) VALUES ($1, $2, true, '{card-plain:vip}')`, [account.appId, next.openid]);
    h.sandbox.inject({ path: '/cgi-bin/user/info/batchget', appId: account.appId, errcode: 48001, nth: 2 });
    await expect(h.inbox.followerSync.runOnce(account, { force: true })).rejects.toThrow();
    // The cursor now says "done through fans[99]". That user leaves before the run resumes.
    const gone = fans[99]!;
    expect((await h.sandbox.act(account.appId, gone.userId, { type: 'unfollow' })).outcome).toBe('success');

    const report = await h.inbox.followerSync.runOnce(account);
    expect(report.status).toBe('done');
    // fans[100] never stopped following: it must still be subscribed, its tags intact.
    expect(await row(account.appId, next.openid)).toEqual({ subscribed: true, tags: ['card-plain:vip'] });
    expect(report.unsubscribed).toBe(0);
    // The page was written again from its start: the 149 followers are counted once each.
    expect(report.synced).toBe(149);
  });

  it('When the follower named by the saved next_openid unfollows before the resume, then the sync can still finish', async () => {
    const account = h.accounts.compat;
    h.sandbox.setLimits({ userGetPageSize: 3 });
    const fans = Array.from({ length: 5 }, () => follower(h, 'compat'));
    // Page 1 (fans 0-2) is written, the cursor moves to next_openid = fans[2], page 2's batch fails.
    h.sandbox.inject({ path: '/cgi-bin/user/info/batchget', appId: account.appId, errcode: 48001, nth: 2 });
    await expect(h.inbox.followerSync.runOnce(account, { force: true })).rejects.toThrow();
    expect((await h.sandbox.act(account.appId, fans[2]!.userId, { type: 'unfollow' })).outcome).toBe('success');

    // Every later run starts from the stored cursor; one of the next two must complete.
    const first = await h.inbox.followerSync.runOnce(account).catch((err: unknown) => err);
    const second = await h.inbox.followerSync.runOnce(account).catch((err: unknown) => err);
    expect([first, second].some((r) => (r as { status?: string }).status === 'done')).toBe(true);
    expect((await row(account.appId, fans[4]!.openid))?.subscribed).toBe(true);
    // The unfollow came through the push too; the run that listed again agrees.
    expect((await row(account.appId, fans[2]!.openid))?.subscribed).toBe(false);
  });
});

describe('follower sync: changes it finds reach merchants (DESIGN.md "Webhooks")', () => {
  it('When a complete run finds that a linked user left while we missed the unsubscribe push, then the merchant holding the binding gets identity.unsubscribed', async () => {
    const account = h.accounts.safe;
    const openid = `oMissedUnfollow${Date.now()}`;
    const { bindingId } = await boundIdentity(account.appId, openid, 'card-safe', true);
    const report = await h.inbox.followerSync.runOnce(account, { force: true });
    expect(report).toMatchObject({ status: 'done', unsubscribed: 1 });
    expect((await row(account.appId, openid))?.subscribed).toBe(false);
    // subscriptions.service.ts: "the event exists exactly when the change does".
    expect(await hooksFor('card-safe', 'identity.unsubscribed', bindingId)).toMatchObject([{ subscribed: false }]);

    // The next complete run changes nothing, so it tells nobody anything again.
    expect(await h.inbox.followerSync.runOnce(account, { force: true })).toMatchObject({ status: 'done', unsubscribed: 0 });
    expect(await hooksFor('card-safe', 'identity.unsubscribed', bindingId)).toHaveLength(1);
  });

  it('When a run finds following a linked user we held as unsubscribed, then the merchant gets identity.subscribed once, and followers we already held as following cause none', async () => {
    const account = h.accounts.safe;
    const back = follower(h, 'safe');
    const { bindingId } = await boundIdentity(account.appId, back.openid, 'card-safe', false);
    const steady = follower(h, 'safe');
    const kept = await boundIdentity(account.appId, steady.openid, 'card-safe', true);

    expect(await h.inbox.followerSync.runOnce(account, { force: true })).toMatchObject({ status: 'done' });
    expect((await row(account.appId, back.openid))?.subscribed).toBe(true);
    expect(await hooksFor('card-safe', 'identity.subscribed', bindingId)).toMatchObject([{ subscribed: true }]);
    expect(await hooksFor('card-safe', 'identity.subscribed', kept.bindingId)).toEqual([]);

    // Seen again by the next run: still following, no second event.
    expect(await h.inbox.followerSync.runOnce(account, { force: true })).toMatchObject({ status: 'done' });
    expect(await hooksFor('card-safe', 'identity.subscribed', bindingId)).toHaveLength(1);
  });
});
