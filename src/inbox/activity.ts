/**
 * What the admin timeline may know of a push (issue 8: messages as metadata only): its
 * kind, its time, and the intent it was routed to, never its content. `withActivity` wraps
 * the dispatcher so the record is made after the push was accepted, as a background task
 * that never delays WeChat's acknowledgement.
 */
import type { OfficialAccountConfig } from '../config/index.ts';
import type { InboundMessage } from '../wechat/messages.ts';
import type { Dispatcher } from './dispatch.ts';
import type { IntentRouter, Route } from './routing.ts';
import type { Tasks } from './tasks.ts';

export interface Activity {
  appId: string;
  openid: string;
  kind: string;
  intent: string | null;
  merchantId: string | null;
  at: Date;
}

export type OnActivity = (a: Activity) => Promise<void>;

/** Location reports (every few seconds while a page is open) and delivery receipts are not user activity. */
const SKIPPED = new Set(['event.LOCATION', 'event.TEMPLATESENDJOBFINISH', 'event.unknown']);

function routeOf(router: IntentRouter, account: OfficialAccountConfig, msg: InboundMessage): Route {
  switch (msg.kind) {
    case 'message.text':
      return router.byText(account.id, msg.Content);
    case 'message.voice':
      return msg.Recognition?.trim() ? router.byText(account.id, msg.Recognition) : { kind: 'none' };
    case 'event.CLICK':
    case 'event.VIEW':
      return router.byMenuKey(account.id, msg.EventKey);
    default:
      return { kind: 'none' };
  }
}

export function activityOf(router: IntentRouter, account: OfficialAccountConfig, msg: InboundMessage): Activity | null {
  if (SKIPPED.has(msg.kind)) return null;
  const route = routeOf(router, account, msg);
  return {
    appId: account.appId,
    openid: msg.FromUserName,
    kind: msg.kind,
    intent: route.kind === 'intent' ? route.intent : route.kind === 'builtin' ? route.name : null,
    merchantId: route.kind === 'none' ? null : (route.merchant?.id ?? null),
    at: new Date(msg.CreateTime * 1000),
  };
}

export function withActivity(inner: Dispatcher, o: { router: IntentRouter; tasks: Tasks; record?: OnActivity | undefined }): Dispatcher {
  const { record } = o;
  if (!record) return inner;
  return {
    async accept(account, msg, dedupeKey) {
      const plan = await inner.accept(account, msg, dedupeKey);
      const a = activityOf(o.router, account, msg);
      if (a) o.tasks.run('record activity', () => record(a));
      return plan;
    },
  };
}
