/**
 * Identities and bindings: the transport-free core that routes, the message handler, the
 * OAuth server and the admin UI share (DESIGN.md "Linking"). Every binding change is one
 * transaction that also writes its webhook event and its audit row, so the three exist
 * together or not at all; no transaction here ever waits on the network.
 */
import type { Logger } from 'pino';
import type { MerchantConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import type { Db, Queryable } from '../store/db.ts';
import { enqueueWebhookEvent } from '../webhooks/events.ts';
import { appendAudit, type AuditEntry } from './audit.queries.ts';
import * as B from './bindings.queries.ts';
import * as I from './identities.queries.ts';
import type { Binding, LinkingService, LinkRequest, LinkResult } from './types.ts';

export interface BindingsDeps {
  db: Db;
  log: Logger;
  now: () => number;
  merchant: (id: string) => MerchantConfig | undefined;
}

export interface BindingsService extends LinkingService {
  findIdentityRecord(appId: string, openid: string): Promise<I.IdentityRecord | null>;
  /** The identity on this official account of the person with this unionid. */
  findIdentityByUnionid(appId: string, unionid: string): Promise<I.IdentityRecord | null>;
  /** Web authorization finished: create or refresh the identity (profile only when granted). */
  upsertFromLogin(p: { appId: string; openid: string; unionid?: string; profile?: { nickname: string; avatarUrl: string } | null }): Promise<I.IdentityRecord>;
  /** A pushed event or message from the user (the inbox calls this): subscribe state, last interaction. */
  recordInteraction(p: { appId: string; openid: string; unionid?: string; subscribed?: boolean; at?: Date }): Promise<I.IdentityRecord>;
  /** Links an account after a proof; conflicts and the per-user limit change nothing. */
  link(req: LinkRequest, tx?: Queryable): Promise<LinkResult>;
  setDefault(p: { merchantId: string; identityId: string; bindingId: string; actor: string }): Promise<Binding>;
  /** Audit-only entry (a failed proof, a refused link): its own short transaction. */
  audit(e: AuditEntry): Promise<void>;
  /** Bindings of one merchant joined with their pairwise subjects (merchant API). */
  withSubjects(merchantId: string, bindings: Binding[]): Promise<Array<Binding & { sub: string }>>;
}

export function createBindingsService(deps: BindingsDeps): BindingsService {
  const { db } = deps;
  const at = () => new Date(deps.now());

  function merchantOrThrow(id: string): MerchantConfig {
    const m = deps.merchant(id);
    if (!m) throw new AppError('linking.not_found', 'unknown merchant');
    return m;
  }

  async function upsert(u: I.IdentityUpsert): Promise<I.IdentityRecord> {
    // One atomic statement per login (T14); a transaction only when a unionid must be reconciled.
    if (!u.unionid) return I.upsertIdentity(db, u);
    return db.transaction(async (tx) => {
      const row = await I.upsertIdentity(tx, u);
      if (!row.unionid) return row;
      await I.reconcileUnionid(tx, row.unionid);
      return (await I.findIdentityById(tx, row.id)) ?? row;
    });
  }

  /**
   * A refused link (conflict, limit) changes nothing, the audit log included: it records links,
   * unlinks and failed proofs, and a refused attempt is neither. Racing attempts on one account
   * then never queue on the audit chain's lock. Operators see refusals in the logs.
   */
  function refused(req: LinkRequest, reason: 'conflict' | 'limit_reached'): LinkResult {
    deps.log.info({ merchantId: req.merchantId, identityId: req.identityId, proof: req.proof, source: req.source, reason }, 'link refused');
    return { ok: false, reason };
  }

  async function linkIn(tx: Queryable, req: LinkRequest): Promise<LinkResult> {
    const m = merchantOrThrow(req.merchantId);
    await B.lockUserAtMerchant(tx, req.merchantId, req.identityId);
    const existing = await B.listBindings(tx, { merchantId: req.merchantId, identityId: req.identityId, accountId: req.account.id, status: 'active' });
    if (existing[0]) return { ok: true, binding: existing[0], created: false };
    const counts = await B.countActiveBindings(tx, req.merchantId, req.identityId);
    if (counts.total >= m.binding.maxAccountsPerUser) return refused(req, 'limit_reached');
    const now = at();
    const binding = await B.insertBinding(tx, {
      merchantId: req.merchantId,
      identityId: req.identityId,
      accountId: req.account.id,
      accountDisplay: req.account.display,
      exclusive: m.binding.exclusive,
      isDefault: counts.defaults === 0,
      proof: req.proof,
      createdBy: req.actor,
      at: now,
    });
    // The only other index that can refuse it: exclusive, and another user holds the account.
    if (!binding) return refused(req, 'conflict');
    const sub = await I.ensureSubject(tx, req.merchantId, req.identityId);
    await enqueueWebhookEvent(tx, {
      merchantId: req.merchantId,
      type: 'binding.created',
      data: { bindingId: binding.id, account: binding.accountId, accountDisplay: binding.accountDisplay, sub, proof: binding.proof, createdAt: now.toISOString() },
    });
    await appendAudit(
      tx,
      { actor: req.actor, action: 'binding.linked', merchantId: req.merchantId, identityId: req.identityId, bindingId: binding.id, source: req.source, detail: { proof: req.proof } },
      now,
    );
    return { ok: true, binding, created: true };
  }

  const service: BindingsService = {
    getIdentity: (id) => I.findIdentityById(db, id),
    findIdentity: (appId, openid) => I.findIdentityByOpenid(db, appId, openid),
    findIdentityRecord: (appId, openid) => I.findIdentityByOpenid(db, appId, openid),
    findIdentityByUnionid: (appId, unionid) => I.findIdentityByUnionid(db, appId, unionid),
    subjectFor: (identityId, merchantId) => I.ensureSubject(db, merchantId, identityId),
    findBySubject: (merchantId, sub) => I.findSubject(db, merchantId, sub),
    getBinding: (id) => B.findBindingById(db, id),
    listBindings: (p) => B.listBindings(db, p),

    upsertFromLogin: (p) => upsert({ appId: p.appId, openid: p.openid, unionid: p.unionid ?? null, profile: p.profile ?? null, at: at(), login: true }),
    recordInteraction: (p) => upsert({ appId: p.appId, openid: p.openid, unionid: p.unionid ?? null, subscribed: p.subscribed, at: p.at ?? at() }),

    link: (req, tx) => (tx ? linkIn(tx, req) : db.transaction((t) => linkIn(t, req))),

    async revokeBinding(p) {
      const now = at();
      const out = await db.transaction(async (tx) => {
        // The first read only learns whose binding it is (merchant and identity never change);
        // everything the decision depends on is read again under the per-user lock, because a
        // setDefault or another revoke may commit in between (ASVS 5.0 15.4.2).
        const owner = await B.findBindingById(tx, p.bindingId);
        // Another merchant's binding does not exist for this caller (no IDOR oracle).
        if (!owner || owner.merchantId !== p.merchantId) throw new AppError('linking.not_found', 'no such binding');
        await B.lockUserAtMerchant(tx, owner.merchantId, owner.identityId);
        const revoked = await B.revokeBindingRow(tx, { id: p.bindingId, merchantId: p.merchantId, actor: p.actor, reason: p.reason, at: now });
        if (!revoked) return (await B.findBindingById(tx, p.bindingId)) ?? owner; // already revoked: idempotent
        // Always, not only when the revoked row was the default: whether it was is only known
        // under the lock, and the promotion is a no-op while another active default exists.
        await B.promoteOldestToDefault(tx, revoked.merchantId, revoked.identityId);
        const sub = await I.ensureSubject(tx, revoked.merchantId, revoked.identityId);
        await enqueueWebhookEvent(tx, {
          merchantId: revoked.merchantId,
          type: 'binding.revoked',
          data: { bindingId: revoked.id, account: revoked.accountId, sub, reason: p.reason, revokedAt: now.toISOString() },
        });
        await appendAudit(
          tx,
          { actor: p.actor, action: 'binding.unlinked', merchantId: revoked.merchantId, identityId: revoked.identityId, bindingId: revoked.id, source: p.source ?? null, detail: { reason: p.reason } },
          now,
        );
        return revoked;
      });
      return out;
    },

    async setDefault(p) {
      const now = at();
      return db.transaction(async (tx) => {
        await B.lockUserAtMerchant(tx, p.merchantId, p.identityId);
        const b = await B.setDefaultBinding(tx, p);
        if (!b) throw new AppError('linking.not_found', 'no such binding');
        await appendAudit(tx, { actor: p.actor, action: 'binding.default_changed', merchantId: p.merchantId, identityId: p.identityId, bindingId: b.id, source: 'web' }, now);
        return b;
      });
    },

    async audit(e) {
      await db.transaction((tx) => appendAudit(tx, e, at()));
    },

    async withSubjects(merchantId, bindings) {
      const subs = new Map<string, string>();
      for (const b of bindings) if (!subs.has(b.identityId)) subs.set(b.identityId, await I.ensureSubject(db, merchantId, b.identityId));
      return bindings.map((b) => ({ ...b, sub: subs.get(b.identityId) ?? '' }));
    },
  };
  return service;
}
