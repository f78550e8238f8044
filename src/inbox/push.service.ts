/**
 * One push from WeChat, end to end (wechat-protocol.md §5.3–§5.7, §6.3; SECURITY.md D1, D5):
 * verify → replay guard → claim → act → answer.
 *
 * The 5-second rule: the answer is raced against a budget well under WeChat's 5 s (default
 * 3 s from arrival). Ready in time, it is the passive reply (encrypted with the key the push
 * came with). Not ready, WeChat gets `success` now and the user gets the answer later as a
 * customer-service message.
 *
 * Duplicates: the claim is taken before anything is acted on. A retry of a push that is
 * still being worked on waits (in-process: on the owner's promise; across instances: polling
 * the claim) for the owner's reply, and sends the same one. If the owner failed (claim
 * released), the retry does the work; if the owner died (claim pending far past any budget),
 * one retry takes it over; a live owner renews its claim, however long its durable step
 * takes. A durable step that fails gives the claim back and answers 5xx, so WeChat retries.
 */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { OfficialAccountConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import type { Metrics } from '../http/metrics.ts';
import { encryptedEnvelope } from '../wechat/crypto.ts';
import { dedupeKey, type InboundMessage } from '../wechat/messages.ts';
import { SUCCESS_REPLY } from '../wechat/replies.ts';
import type { ClaimOwner, ClaimResult, ClaimStore, ClaimView } from './claims.ts';
import type { CsDelivery } from './cs-send.ts';
import type { Dispatcher } from './dispatch.ts';
import type { PushVerifier, VerifiedPush } from './push-verify.ts';
import type { ReplayGuard } from './replay-guard.ts';
import { replyXml, text, type Reply } from './reply.ts';
import type { Tasks } from './tasks.ts';
import { texts } from './texts.ts';

export interface PushResponse {
  body: string;
  type: 'text/plain' | 'application/xml';
}

export interface PushService {
  verifyUrl(account: OfficialAccountConfig, query: unknown): string;
  receive(account: OfficialAccountConfig, query: unknown, body: Buffer): Promise<PushResponse>;
}

export interface PushServiceDeps {
  verifier: PushVerifier;
  /** Plaintext pushes: binds each signature to the first body seen with it (A9). */
  replay: ReplayGuard;
  claims: ClaimStore;
  dispatcher: Dispatcher;
  cs: CsDelivery;
  tasks: Tasks;
  log: Logger;
  now: () => number;
  metrics?: Metrics;
  /** Time from arrival within which the answer must be ready to go as the passive reply. */
  budgetMs: number;
  /** How often a retry on another instance re-reads the claim it waits for. */
  pollMs: number;
  /** A claim pending longer than this has lost its owner (budget + the longest durable step). */
  staleMs: number;
}

const SUCCESS: PushResponse = { body: SUCCESS_REPLY, type: 'text/plain' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Timed<T> = { settled: true; value: T } | { settled: false };

async function within<T>(p: Promise<T>, deadline: number): Promise<Timed<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Timed<T>>((r) => (timer = setTimeout(() => r({ settled: false }), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([p.then((value): Timed<T> => ({ settled: true, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createPushService(d: PushServiceDeps): PushService {
  /** In-process owners: a retry landing on the same instance waits on the promise, not the Kv. */
  const inflight = new Map<string, Promise<ClaimView | null>>();
  const outcomes = d.metrics?.counter('wxbridge_inbox_pushes_total', 'WeChat pushes by outcome', ['outcome']);

  function render(account: OfficialAccountConfig, v: VerifiedPush, reply: Reply | null): PushResponse {
    if (!reply) return SUCCESS;
    const createTime = Math.floor(d.now() / 1000);
    const xml = replyXml(reply, { toUser: v.message.FromUserName, fromUser: v.message.ToUserName, createTime });
    if (!v.encryption) return { body: xml, type: 'application/xml' };
    const encrypt = v.encryption.cipher.encrypt(xml, { keyIndex: v.encryption.keyIndex });
    const nonce = String(randomInt(100_000_000, 2_000_000_000));
    return { body: encryptedEnvelope({ encrypt, token: account.token, timestamp: String(createTime), nonce }), type: 'application/xml' };
  }

  /** Waits for another owner's answer until the deadline; returns a claim of our own if it failed or died. */
  async function waitForOwner(appId: string, key: string, first: ClaimView, deadline: number): Promise<ClaimResult | null> {
    const local = inflight.get(`${appId}|${key}`);
    if (local) {
      const r = await within(local, deadline);
      if (!r.settled) return null;
      return r.value ?? d.claims.claim(appId, key);
    }
    let view: ClaimView | null = first;
    while (view?.kind === 'pending') {
      if (d.now() - view.startedAt > d.staleMs) {
        const mine = await d.claims.takeOver(appId, key, view);
        if (mine) return mine;
      }
      if (Date.now() + d.pollMs > deadline) return null;
      await sleep(d.pollMs);
      view = await d.claims.read(appId, key);
    }
    return view ?? d.claims.claim(appId, key);
  }

  /**
   * Renews the claim every third of the stale limit while its owner works (the durable step
   * has no deadline of its own: a slow database must not let a retry act a second time).
   * `stop` waits for a renewal in flight, so none lands after the claim is completed.
   */
  function heartbeat(owner: ClaimOwner): { stop(): Promise<void> } {
    let last: Promise<void> = Promise.resolve();
    const timer = setInterval(() => (last = last.then(() => owner.renew()).catch(() => undefined)), Math.max(1, Math.floor(d.staleMs / 3)));
    timer.unref();
    return {
      stop() {
        clearInterval(timer);
        return last;
      },
    };
  }

  async function act(account: OfficialAccountConfig, v: VerifiedPush, key: string, owner: ClaimOwner, deadline: number): Promise<PushResponse> {
    const { appId } = account;
    const msg: InboundMessage = v.message;
    let settle!: (view: ClaimView | null) => void;
    const localKey = `${appId}|${key}`;
    inflight.set(localKey, new Promise((r) => (settle = r)));
    const alive = heartbeat(owner);
    const complete = async (reply: Reply | null) => {
      await alive.stop();
      await owner.complete(reply).catch((err: unknown) => d.log.warn({ err, appId }, 'push claim not completed'));
      settle({ kind: 'done', reply });
    };
    try {
      let plan;
      try {
        plan = await d.dispatcher.accept(account, msg, key);
      } catch (err) {
        await alive.stop();
        await owner.release();
        settle(null);
        throw err;
      }
      const reply = plan.reply.catch((err: unknown): Reply => {
        d.log.error({ err, appId, kind: msg.kind }, 'reply failed');
        return text(texts.busy);
      });
      const ready = await within(reply, deadline);
      if (ready.settled) {
        // Rendered before the claim keeps it: a reply that cannot be rendered would fail every retry.
        let sent = ready.value;
        let response: PushResponse;
        try {
          response = render(account, v, sent);
        } catch (err) {
          d.log.error({ err, appId, kind: msg.kind }, 'reply not renderable');
          sent = text(texts.busy);
          response = render(account, v, sent);
        }
        await complete(sent);
        outcomes?.inc({ outcome: sent ? 'replied' : 'acked' });
        return response;
      }
      // Not ready in time: acknowledge, and send the answer when it comes (§5.7).
      await complete(null);
      outcomes?.inc({ outcome: 'deferred' });
      d.tasks.run('late reply', async () => {
        void d.cs.typing(appId, msg.FromUserName);
        const late = await reply;
        if (late) await d.cs.send(appId, msg.FromUserName, late);
      });
      return SUCCESS;
    } finally {
      await alive.stop();
      inflight.delete(localKey);
    }
  }

  return {
    verifyUrl: (account, query) => d.verifier.verifyUrl(account, query),

    async receive(account, query, body) {
      const deadline = Date.now() + d.budgetMs;
      let v: VerifiedPush;
      try {
        v = d.verifier.verifyPush(account, query, body);
        if (v.replayGuard) await d.replay.check(account.appId, v.replayGuard.signature, v.replayGuard.bodyHash);
      } catch (err) {
        outcomes?.inc({ outcome: 'refused' });
        throw err;
      }
      const key = dedupeKey(v.message);
      let claim: ClaimResult | null = await d.claims.claim(account.appId, key);
      if (claim.kind !== 'owner') {
        outcomes?.inc({ outcome: 'duplicate' });
        if (claim.kind === 'pending') claim = await waitForOwner(account.appId, key, claim, deadline);
        // Still being worked on elsewhere at our deadline: no ack, so WeChat keeps the push (D1).
        if (claim === null) throw new AppError('dependency.unavailable', 'push still in progress');
        if (claim.kind === 'done') return render(account, v, claim.reply);
        if (claim.kind === 'pending') throw new AppError('dependency.unavailable', 'push still in progress');
      }
      return act(account, v, key, claim, deadline);
    },
  };
}
