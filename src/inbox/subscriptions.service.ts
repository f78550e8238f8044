/**
 * Follow and unfollow (wechat-protocol.md §5.5): the subscribe state on the identity and the
 * `identity.subscribed` / `identity.unsubscribed` webhooks to the merchants holding a binding
 * of it, in one transaction, so the event exists exactly when the change does (SECURITY.md
 * D1/D2). This is the one write the push waits for before acknowledging: WeChat does not
 * resend an acknowledged push.
 *
 * Pushes can arrive out of order (a retry of an older one): a change older than the latest
 * one applied is ignored. Webhooks go out only when the state really changes.
 */
import type { Db, Queryable } from '../store/db.ts';
import { enqueueWebhookEvent } from '../webhooks/events.ts';
import { lockIdentity, markSubscribed, markUnsubscribed, webhookTargets } from './identities.queries.ts';

export interface SubscriptionChange {
  identityId: string;
  changed: boolean;
}

export interface Subscriptions {
  set(p: { appId: string; openid: string; subscribed: boolean; at: Date }): Promise<SubscriptionChange>;
}

export function createSubscriptions(o: { db: Db }): Subscriptions {
  return {
    set({ appId, openid, subscribed, at }) {
      return o.db.transaction(async (tx) => {
        const row = await lockIdentity(tx, appId, openid);
        const latest = Math.max(row.subscribed_at?.getTime() ?? -Infinity, row.unsubscribed_at?.getTime() ?? -Infinity);
        if (at.getTime() < latest) return { identityId: row.id, changed: false };
        if (subscribed) await markSubscribed(tx, row.id, at);
        else await markUnsubscribed(tx, row.id, at);
        const changed = row.subscribed !== subscribed;
        if (changed) await enqueueSubscriptionWebhooks(tx, { identityId: row.id, subscribed, at });
        return { identityId: row.id, changed };
      });
    },
  };
}

/**
 * The `identity.subscribed` / `identity.unsubscribed` webhooks of one change of subscribe
 * state, one per merchant holding an active binding. Call it with the transaction that makes
 * the change, and only when the state really changed (the follower sync calls it too).
 */
export async function enqueueSubscriptionWebhooks(tx: Queryable, p: { identityId: string; subscribed: boolean; at: Date }): Promise<void> {
  const type = p.subscribed ? 'identity.subscribed' : 'identity.unsubscribed';
  for (const t of await webhookTargets(tx, p.identityId)) {
    await enqueueWebhookEvent(tx, {
      merchantId: t.merchantId,
      type,
      data: { ...(t.sub ? { sub: t.sub } : {}), bindings: t.bindings, subscribed: p.subscribed, at: p.at.toISOString() },
    });
  }
}
