/**
 * WeChat → developer push (wechat-protocol.md §5.3–§5.7, §6; §10 item 7).
 *
 * Signs every request (`signature`, `timestamp`, `nonce`, `openid`), adds
 * `encrypt_type=aes&msg_signature` and the `Encrypt` element in compatible/safe mode,
 * waits 5 s per attempt and retries on timeout, network error or 5xx (3 attempts in total
 * by default, §13.2 — a receiver must de-duplicate). The reply is then judged as WeChat
 * would: `success` or an empty body means "no reply"; a valid reply XML (encrypted and
 * signed in safe mode) is shown to the user; anything else shows the user
 * "该公众号暂时无法提供服务，请稍后再试".
 */
import { randomInt } from 'node:crypto';
import { createMessageCipher, sha1Sorted, verifyMsgSignature } from '../wechat/crypto.ts';
import { buildWeChatXml, parseWeChatXml } from '../wechat/xml.ts';
import type { SandboxDeps } from './deps.ts';
import type { PushOutcome, PushResult, Relation, SandboxApp } from './state.ts';
import { appendCapped } from './housekeeping.ts';
import { nextSeq } from './state.ts';
import { checkPassiveReply } from './reply-check.ts';

export const SERVICE_UNAVAILABLE = '该公众号暂时无法提供服务，请稍后再试';

export interface PusherOptions {
  fetch: typeof fetch;
  timeoutMs: number;
  attempts: number;
  retryDelayMs: number;
}

export interface UrlVerification {
  ok: boolean;
  echostr: string;
  status?: number;
  body?: string;
  detail?: string;
}

export interface Pusher {
  /** `fields` must already hold ToUserName, FromUserName and CreateTime. */
  deliver(app: SandboxApp, rel: Relation, fields: Record<string, unknown>): Promise<PushResult>;
  /**
   * What the MP console does when the server URL is saved (§5.2): a signed GET with a plain
   * `echostr` (plain in every mode), which must come back verbatim as the body.
   */
  verifyUrl(app: SandboxApp): Promise<UrlVerification>;
}

/** Events the user is not looking at: their replies are never shown, failures not noticed. */
const BACKGROUND_EVENTS = new Set([
  'unsubscribe',
  'VIEW',
  'LOCATION',
  'TEMPLATESENDJOBFINISH',
  'MASSSENDJOBFINISH',
  'subscribe_msg_popup_event',
  'subscribe_msg_change_event',
  'subscribe_msg_sent_event',
]);

export function isUserFacing(fields: Record<string, unknown>): boolean {
  return fields.MsgType !== 'event' || !BACKGROUND_EVENTS.has(String(fields.Event));
}

interface Attempt {
  outcome: PushOutcome;
  status?: number;
  body?: string;
  detail?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createPusher(deps: SandboxDeps, opts: PusherOptions): Pusher {
  async function attemptOnce(url: string, body: string): Promise<Attempt> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), opts.timeoutMs);
    try {
      const res = await opts.fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'text/xml; charset=utf-8', 'User-Agent': 'Mozilla/4.0' },
        body,
        signal: ac.signal,
      });
      const text = await res.text();
      if (res.status !== 200) return { outcome: 'http_error', status: res.status, body: text };
      return { outcome: 'reply', status: 200, body: text };
    } catch (err) {
      if (ac.signal.aborted) return { outcome: 'timeout', detail: `no answer within ${opts.timeoutMs} ms` };
      return { outcome: 'network_error', detail: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async verifyUrl(app) {
      const echostr = String(randomInt(1_000_000_000, 2_000_000_000)) + String(randomInt(100_000_000, 999_999_999));
      if (!app.pushUrl) return { ok: false, echostr, detail: 'no push URL configured' };
      const timestamp = String(Math.floor(deps.now() / 1000));
      const nonce = String(randomInt(100_000_000, 2_000_000_000));
      const query = new URLSearchParams({ signature: sha1Sorted(app.token, timestamp, nonce), echostr, timestamp, nonce });
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), opts.timeoutMs);
      try {
        const res = await opts.fetch(`${app.pushUrl}${app.pushUrl.includes('?') ? '&' : '?'}${query.toString()}`, { signal: ac.signal });
        const body = await res.text();
        const ok = res.status === 200 && body === echostr;
        return { ok, echostr, status: res.status, body, detail: ok ? undefined : 'the body must be the echostr, verbatim' };
      } catch (err) {
        return { ok: false, echostr, detail: ac.signal.aborted ? 'timeout' : err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
    },

    async deliver(app, rel, fields) {
      const xml = buildWeChatXml(fields);
      const base = {
        // Numbered when the person acts, so their message sorts before any answer to it.
        seq: nextSeq(deps.state),
        appId: app.appId,
        userId: rel.userId,
        openid: rel.openid,
        xml,
        fields,
        at: deps.now(),
      };
      const finish = (r: Omit<PushResult, keyof typeof base | 'ok' | 'userNotice'>): PushResult => {
        const ok = r.outcome === 'success' || r.outcome === 'empty' || r.outcome === 'reply';
        const failedVisibly = !ok && r.outcome !== 'no_push_url' && isUserFacing(fields);
        const result: PushResult = { ...base, ...r, ok, userNotice: failedVisibly ? SERVICE_UNAVAILABLE : undefined };
        appendCapped(deps.state.pushes, result, deps.state.limits.logCap);
        if (!ok) deps.logger.warn({ appId: app.appId, outcome: r.outcome, detail: r.detail }, 'sandbox push not accepted');
        return result;
      };
      if (!app.pushUrl) return finish({ outcome: 'no_push_url', attempts: 0 });

      const timestamp = String(Math.floor(deps.now() / 1000));
      const nonce = String(randomInt(100_000_000, 2_000_000_000));
      const query = new URLSearchParams({
        signature: sha1Sorted(app.token, timestamp, nonce),
        timestamp,
        nonce,
        openid: rel.openid,
      });
      let body = xml;
      if (app.mode !== 'plain' && app.encodingAesKey) {
        const cipher = createMessageCipher({ appId: app.appId, encodingAesKeys: [app.encodingAesKey] });
        const encrypt = cipher.encrypt(xml);
        query.set('encrypt_type', 'aes');
        query.set('msg_signature', sha1Sorted(app.token, timestamp, nonce, encrypt));
        // §6.1: compatible mode carries the plaintext fields and Encrypt; safe mode only Encrypt.
        body = app.mode === 'compat'
          ? buildWeChatXml({ ...fields, Encrypt: encrypt })
          : buildWeChatXml({ ToUserName: fields.ToUserName, Encrypt: encrypt });
      }
      const url = `${app.pushUrl}${app.pushUrl.includes('?') ? '&' : '?'}${query.toString()}`;

      let last: Attempt = { outcome: 'network_error' };
      let attempts = 0;
      while (attempts < opts.attempts) {
        attempts += 1;
        last = await attemptOnce(url, body);
        const retry = last.outcome === 'timeout' || last.outcome === 'network_error' || (last.status ?? 0) >= 500;
        if (!retry) break;
        if (attempts < opts.attempts && opts.retryDelayMs > 0) await sleep(opts.retryDelayMs);
      }
      if (last.outcome !== 'reply') return finish({ outcome: last.outcome, attempts, status: last.status, replyRaw: last.body, detail: last.detail });

      const raw = last.body ?? '';
      if (raw === '') return finish({ outcome: 'empty', attempts, status: 200, replyRaw: raw });
      // Lenient about surrounding whitespace: frameworks append newlines.
      if (raw.trim() === 'success') return finish({ outcome: 'success', attempts, status: 200, replyRaw: raw });

      const judged = judgeReply(app, rel, raw);
      if (!judged.ok) return finish({ outcome: 'invalid_reply', attempts, status: 200, replyRaw: raw, replyXml: judged.xml, detail: judged.detail });
      const result = finish({ outcome: 'reply', attempts, status: 200, replyRaw: raw, replyXml: judged.xml, reply: judged.reply });
      if (isUserFacing(fields) && judged.reply.MsgType !== 'transfer_customer_service') {
        appendCapped(deps.state.messages, {
          seq: nextSeq(deps.state),
          at: deps.now(),
          kind: 'passive',
          appId: app.appId,
          userId: rel.userId,
          openid: rel.openid,
          msgType: String(judged.reply.MsgType),
          payload: judged.reply,
        }, deps.state.limits.logCap);
      }
      return result;
    },
  };
}

type Judged = { ok: true; xml: string; reply: Record<string, unknown> } | { ok: false; xml?: string; detail: string };

/** Decrypts (when encrypted) and validates a passive reply the way WeChat would. */
function judgeReply(app: SandboxApp, rel: Relation, raw: string): Judged {
  let outer: Record<string, unknown>;
  try {
    outer = parseWeChatXml(raw);
  } catch (err) {
    return { ok: false, detail: `not reply XML: ${err instanceof Error ? err.message : 'parse error'}` };
  }
  let xml = raw;
  let reply = outer;
  if (typeof outer.Encrypt === 'string') {
    if (app.mode === 'plain' || !app.encodingAesKey) return { ok: false, detail: 'encrypted reply from a plaintext-mode account' };
    const { Encrypt, MsgSignature, TimeStamp, Nonce } = outer;
    if (typeof MsgSignature !== 'string' || typeof TimeStamp !== 'string' || typeof Nonce !== 'string') {
      return { ok: false, detail: 'encrypted reply lacks MsgSignature, TimeStamp or Nonce' };
    }
    if (!verifyMsgSignature({ token: app.token, timestamp: TimeStamp, nonce: Nonce, encrypt: Encrypt, msgSignature: MsgSignature })) {
      return { ok: false, detail: 'MsgSignature does not match' };
    }
    try {
      xml = createMessageCipher({ appId: app.appId, encodingAesKeys: [app.encodingAesKey] }).decrypt(Encrypt).xml;
      reply = parseWeChatXml(xml);
    } catch (err) {
      return { ok: false, detail: `cannot decrypt reply: ${err instanceof Error ? err.message : 'error'}` };
    }
  } else if (app.mode === 'safe') {
    return { ok: false, xml, detail: 'safe mode requires an encrypted reply' };
  }
  const problem = checkPassiveReply(reply, { openid: rel.openid, originalId: app.originalId });
  return problem ? { ok: false, xml, detail: problem } : { ok: true, xml, reply };
}
