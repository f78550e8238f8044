/**
 * The `binding-code` proof (DESIGN.md "Linking protocols"): the merchant backend makes a
 * single-use, short-lived code bound to one of its accounts; the user opens it as a link
 * (or scans its parametric QR code, which the message handler redeems) and is linked.
 * Codes are stored as an HMAC only; the QR ticket is made before the row is written, so no
 * transaction waits on WeChat.
 */
import { randomBytes } from 'node:crypto';
import type { AppConfig, MerchantConfig } from '../config/index.ts';
import { AppError, DependencyUnavailableError } from '../http/errors.ts';
import { hmacSha256, randomAlnum } from '../security/secrets.ts';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import type { QrCodeApi } from '../wechat/index.ts';
import { MAX_QR_EXPIRE_SECONDS, WeChatApiError, WeChatTransportError } from '../wechat/index.ts';
import { attemptCounter, reserveAttempt } from './attempt-limit.ts';
import * as C from './binding-codes.queries.ts';
import { findIdentityById } from './identities.queries.ts';
import type { BindingsService } from './bindings.service.ts';
import type { RedeemResult } from './types.ts';

// No 0/O, 1/I/L: codes may be read aloud or typed from a letter.
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 12;
/** Wrong codes one user may try in an hour: ~59-bit codes stay out of reach of guessing. */
const MAX_FAILED_REDEEMS = 10;
/** How long a try may wait while the user's counter is full of tries still in flight. */
const TURN_WAIT_MS = 5_000;

export interface BindingCodesDeps {
  db: Db;
  config: Pick<AppConfig, 'publicUrl' | 'officialAccounts'>;
  merchant: (id: string) => MerchantConfig | undefined;
  bindings: BindingsService;
  qr: QrCodeApi;
  /** HMAC key of stored codes (a sub-key of the master key). */
  codeKey: Buffer;
  kv: Kv;
  now: () => number;
}

export interface CreateBindingCodeInput {
  merchantId: string;
  account: string;
  display: string | null;
  expiresIn?: number;
  qr?: boolean;
  actor: string;
}

export interface CreatedBindingCode {
  code: string;
  url: string;
  qrUrl?: string;
  expiresAt: string;
}

export interface RedeemInput {
  by: { code: string } | { qrScene: string };
  identityId: string;
  /** When given, a code of another merchant is refused as unknown. */
  merchantId?: string;
  actor: string;
  source: string;
}

export interface BindingCodesService {
  createBindingCode(input: CreateBindingCodeInput): Promise<CreatedBindingCode>;
  /** What a valid code would link (for the confirmation page); a miss counts as a failed try. */
  peekBindingCode(p: { code: string; merchantId: string; identityId: string }): Promise<{ accountDisplay: string | null } | null>;
  redeemBindingCode(input: RedeemInput): Promise<RedeemResult>;
}

function newCode(): string {
  let out = '';
  while (out.length < CODE_LENGTH) {
    for (const b of randomBytes(CODE_LENGTH * 2)) {
      // 31 symbols: drop bytes ≥ 248 (8·31) so every symbol is equally likely.
      if (b < 248 && out.length < CODE_LENGTH) out += CODE_ALPHABET[b % CODE_ALPHABET.length];
    }
  }
  return out;
}

/** What a person may type: any case, spaces or dashes between groups. */
export function normalizeCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}

export const isCodeShaped = (code: string): boolean => code.length === CODE_LENGTH && [...code].every((c) => CODE_ALPHABET.includes(c));

export function createBindingCodesService(deps: BindingCodesDeps): BindingCodesService {
  const hash = (code: string) => hmacSha256(deps.codeKey, `binding-code:${code}`);
  const reserve = (identityId: string) => reserveAttempt(deps.kv, [attemptCounter('code-user', identityId)], MAX_FAILED_REDEEMS, TURN_WAIT_MS);

  function methodOf(m: MerchantConfig) {
    const method = m.linking.find((l) => l.type === 'binding-code');
    if (!method || method.type !== 'binding-code') throw new AppError('request.forbidden', 'binding codes are not enabled for this merchant');
    return method;
  }

  return {
    async createBindingCode(input) {
      const m = deps.merchant(input.merchantId);
      if (!m) throw new AppError('linking.not_found', 'unknown merchant');
      const method = methodOf(m);
      const expiresIn = input.expiresIn ?? method.ttlSeconds;
      if (expiresIn < 60 || expiresIn > MAX_QR_EXPIRE_SECONDS) throw new AppError('request.invalid', `expiresIn must be 60..${MAX_QR_EXPIRE_SECONDS} seconds`);
      const code = newCode();
      const expiresAt = new Date(deps.now() + expiresIn * 1000);
      let qr: { scene: string; ticket: string; imageUrl: string } | undefined;
      if (input.qr) {
        const appId = deps.config.officialAccounts.find((a) => a.id === m.officialAccount)?.appId;
        if (!appId) throw new AppError('internal');
        // The scene is as secret as the code: whoever scans it is linked.
        const scene = `bc_${randomAlnum(24)}`;
        const made = await deps.qr.createQrCode(appId, { scene, expireSeconds: expiresIn }).catch((err: unknown) => {
          // WeChat refused or did not answer: nothing was stored; the merchant retries (503).
          throw err instanceof WeChatApiError || err instanceof WeChatTransportError ? new DependencyUnavailableError('wechat', err) : err;
        });
        qr = { scene, ticket: made.ticket, imageUrl: made.imageUrl };
      }
      await C.insertBindingCode(deps.db, {
        codeHash: hash(code),
        merchantId: m.id,
        accountId: input.account,
        accountDisplay: input.display,
        qrScene: qr?.scene ?? null,
        qrTicket: qr?.ticket ?? null,
        expiresAt,
        createdBy: input.actor,
      });
      return {
        code,
        url: `${deps.config.publicUrl}/link/${encodeURIComponent(m.id)}/code?c=${code}`,
        ...(qr ? { qrUrl: qr.imageUrl } : {}),
        expiresAt: expiresAt.toISOString(),
      };
    },

    async peekBindingCode(p) {
      // Reserve the try before looking the code up (attempt-limit.ts): parallel guesses must not
      // all pass a read of the counter. A miss keeps it; a hit or an outage gives it back.
      const reservation = await reserve(p.identityId);
      if (!reservation) return null;
      const row = await C.findRedeemableCode(deps.db, hash(normalizeCode(p.code)), new Date(deps.now())).catch(async (err: unknown) => {
        await reservation.giveBack(); // an outage says nothing about the code
        throw err;
      });
      if (row?.merchantId !== p.merchantId) {
        await reservation.keep();
        return null;
      }
      await reservation.giveBack();
      return { accountDisplay: row.accountDisplay };
    },

    async redeemBindingCode(input) {
      const now = new Date(deps.now());
      const reservation = await reserve(input.identityId);
      if (!reservation) return { ok: false, reason: 'too_many' };
      const by = 'code' in input.by ? { codeHash: hash(normalizeCode(input.by.code)) } : { qrScene: input.by.qrScene };
      const outcome = await deps.db.transaction(async (tx) => {
        const row = await C.lockRedeemableCode(tx, by, now);
        if (!row || (input.merchantId !== undefined && row.merchantId !== input.merchantId)) return { ok: false as const, reason: 'invalid_code' as const };
        const identity = await findIdentityById(tx, input.identityId);
        const m = deps.merchant(row.merchantId);
        const appId = deps.config.officialAccounts.find((a) => a.id === m?.officialAccount)?.appId;
        // A code belongs to one official account's users (its QR ticket does too).
        if (!identity || !m || identity.appId !== appId) return { ok: false as const, reason: 'invalid_code' as const };
        const linked = await deps.bindings.link(
          { merchantId: row.merchantId, identityId: input.identityId, account: { id: row.accountId, display: row.accountDisplay }, proof: 'binding-code', actor: input.actor, source: input.source },
          tx,
        );
        if (!linked.ok) return linked;
        // A conflict leaves the code unused: the merchant may resolve it and the user retry.
        await C.markCodeUsed(tx, { id: row.id, identityId: input.identityId, bindingId: linked.binding.id, at: now });
        return { ok: true as const, binding: linked.binding, created: linked.created, merchantId: row.merchantId };
      }).catch(async (err: unknown) => {
        await reservation.giveBack(); // an outage says nothing about the code
        throw err;
      });
      // A bad code is a failed proof (its try stays counted); a refused link (conflict, limit)
      // is no change at all.
      if (outcome.ok || outcome.reason !== 'invalid_code') await reservation.giveBack();
      else {
        await reservation.keep();
        await deps.bindings.audit({
          actor: input.actor,
          action: 'proof.failed',
          merchantId: input.merchantId ?? null,
          identityId: input.identityId,
          source: input.source,
          detail: { proof: 'binding-code', reason: outcome.reason },
        });
      }
      return outcome;
    },
  };
}
