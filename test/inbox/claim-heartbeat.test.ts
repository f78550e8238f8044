/**
 * A live owner keeps its push (issue 6: "a retry of a message still in progress … gets the
 * same reply"; SECURITY.md D5). A claim pending longer than `claimStaleMs` is taken over by
 * a retry on another instance, as a dead owner's must be. It used to be taken over whether
 * or not its owner was alive: nothing renewed the claim while the owner worked, and the
 * durable step before the ack (subscribe state and webhooks, binding-code redemption,
 * delivery receipts) has no deadline; with the default (10 s) that is when WeChat's third
 * attempt lands (§5.7). The limit is shortened here (300 ms); the race is the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, startHarness, type Harness } from './harness.ts';
import { post, signedPush } from './pushes.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ options: { claimStaleMs: 300, replyBudgetMs: 1500 } });
});
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a live owner past the stale limit', () => {
  it('When the owner is still inside its durable step and a retry reaches another instance, then the push is still acted on once', async () => {
    const u = follower(h, 'safe');
    const other = await h.otherInstance();
    const before = h.receipts.length;
    h.receiptDelayMs.value = 1200;
    try {
      const push = signedPush(h, 'safe', {
        ToUserName: h.accounts.safe.originalId,
        FromUserName: u.openid,
        CreateTime: Math.floor(Date.now() / 1000),
        MsgType: 'event',
        Event: 'TEMPLATESENDJOBFINISH',
        MsgID: 3487542469355618777n,
        Status: 'success',
      });
      const first = post(push);
      await sleep(500); // the owner is alive, recording the receipt
      const retry = post({ ...push, url: push.url.replace(h.baseUrl, other) });
      await Promise.all([first, retry]);
      await sleep(1500);
    } finally {
      h.receiptDelayMs.value = 0;
    }
    expect(h.receipts.length - before).toBe(1);
  });
});
