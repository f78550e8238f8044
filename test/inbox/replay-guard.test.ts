/**
 * The plaintext replay guard through Kv outages (issue 6: "replay refusal"; SECURITY.md A9,
 * D1). In plaintext mode `signature` covers only token, timestamp and nonce, not the body or
 * the `openid` query, so the guard that binds a signature to the first body seen is the only
 * thing stopping a captured URL (from an access log, say) from carrying a body of the
 * attacker's choosing for 300 s, and receiving the named user's answer. It used to be
 * skipped while the Kv was down; now Postgres holds it, and a replay after the Kv comes back
 * is still caught.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { follower, linkUser, startHarness, type Harness } from './harness.ts';
import { post, signedPush, textPush } from './pushes.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

type Push = { url: string; body: string };
let msgIds = 9_100_000_000_000_000_001n;
let victims = 0;

/** Someone's genuine plaintext push, and a linked victim whose account an attacker wants to read. */
async function scene(): Promise<{ genuine: Push; forged: Push }> {
  const someone = follower(h, 'plain');
  const victim = follower(h, 'plain');
  await linkUser(h, 'plain', victim.openid, { id: `victim-acct-${++victims}`, display: '**** 9999' });
  const genuine = signedPush(h, 'plain', textPush(h, 'plain', someone.openid, '帮助', msgIds++));
  // The captured URL (signature, timestamp, nonce) with another openid and a body of the attacker's choosing.
  const url = new URL(genuine.url);
  url.searchParams.set('openid', victim.openid);
  const body = signedPush(h, 'plain', textPush(h, 'plain', victim.openid, '余额', msgIds++)).body;
  return { genuine, forged: { url: url.toString(), body } };
}

describe('the plaintext replay guard through Kv outages (A9, D1)', () => {
  it('When the Kv is down and a captured plaintext signature comes back with another user and body, then it is refused', async () => {
    const { genuine, forged } = await scene();
    h.kvSwitch.down = true;
    try {
      expect((await post(genuine)).status).toBe(200);
      const r = await post(forged);
      expect(await r.text()).not.toContain('victim-acct-');
      expect(r.status).toBe(403);
      // WeChat's own retry of the genuine push (same body) still gets through.
      expect((await post(genuine)).status).toBe(200);
    } finally {
      h.kvSwitch.down = false;
    }
  });

  it('When a signature was first seen during a Kv outage and is replayed after the Kv is back, then it is still refused', async () => {
    const { genuine, forged } = await scene();
    h.kvSwitch.down = true;
    try {
      expect((await post(genuine)).status).toBe(200);
    } finally {
      h.kvSwitch.down = false;
    }
    const r = await post(forged);
    expect(await r.text()).not.toContain('victim-acct-');
    expect(r.status).toBe(403);
  });

  it('When both the Kv and Postgres are down, then a plaintext push gets 503 and nothing is acted on (WeChat retries)', async () => {
    const { genuine } = await scene();
    h.kvSwitch.down = true;
    h.dbSwitch.down = true;
    try {
      expect((await post(genuine)).status).toBe(503);
    } finally {
      h.kvSwitch.down = false;
      h.dbSwitch.down = false;
    }
    expect((await post(genuine)).status).toBe(200);
  });
});
