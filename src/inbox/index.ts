/**
 * The inbox feature (DESIGN.md "Inside": WeChat push — verify, decrypt, de-duplicate,
 * dispatch events and intents, reply), its follower sync worker and the tags API.
 *
 * Everything arrives through `createInboxFeature(deps)`. What other features provide is
 * optional, so the inbox runs before they land and tests can inject fakes:
 * - `linking`: identities/bindings/subjects (without it every account intent gets the link
 *   prompt and the tags API is not mounted);
 * - `redeemBindingCode`: binding codes by QR scene (without it scans only open the window);
 * - `onTemplateJobFinished`: delivery receipts for notices;
 * - `requireScope`: merchant API authentication (without it the tags API is not mounted).
 */
import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.ts';
import type { Feature } from '../http/feature.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import { MAX_PUSH_BYTES } from '../wechat/xml.ts';
import { createAnswers, type InboxLinking } from './answers.service.ts';
import { createClaimStore } from './claims.ts';
import { createCsDelivery, type InboxWeChat } from './cs-send.ts';
import { createCsWindow, quotasFromConfig, type CsWindow } from './cs-window.ts';
import { withActivity, type OnActivity } from './activity.ts';
import { createDispatcher, type OnTemplateJobFinished, type RedeemBindingCodeByScene } from './dispatch.ts';
import { createFollowerSync, startFollowerSyncLoop, type FollowerSync } from './follower-sync.ts';
import { createIntentsClient } from './intents-client.ts';
import { createPushRoutes } from './push.routes.ts';
import { createPushService } from './push.service.ts';
import { createReplayGuard } from './replay-guard.ts';
import { createPushVerifier } from './push-verify.ts';
import { createIntentRouter } from './routing.ts';
import { createSubscriptions } from './subscriptions.service.ts';
import { createTagRoutes, type RequireScope } from './tags.routes.ts';
import { createTasks } from './tasks.ts';

export type { CsWindow, CsWindowStatus, CsQuotas, InteractionKind } from './cs-window.ts';
export { createCsWindow } from './cs-window.ts';
export type { OnTemplateJobFinished, RedeemBindingCodeByScene } from './dispatch.ts';
export type { InboxLinking } from './answers.service.ts';
export type { Reply } from './reply.ts';
export { findIdentitiesByTags, getIdentityTags, setIdentityTags } from './tags.service.ts';

export interface InboxOptions {
  /** From arrival to the passive reply; beyond it WeChat gets `success` and the answer goes by CS message. */
  replyBudgetMs: number;
  /** How often a retry waiting on another instance re-reads the push claim. */
  claimPollMs: number;
  /** A claim pending this long has lost its owner and may be taken over by a retry. */
  claimStaleMs: number;
  /** How often the worker looks for a due follower sync (and prunes old claims). */
  workerEveryMs: number;
  /** Time between two complete follower syncs of an account. */
  followerSyncIntervalMs: number;
}

export const defaultInboxOptions: InboxOptions = {
  replyBudgetMs: 3000,
  claimPollMs: 50,
  claimStaleMs: 10_000,
  workerEveryMs: 60_000,
  followerSyncIntervalMs: 24 * 3_600_000,
};

export interface InboxDeps {
  config: AppConfig;
  log: Logger;
  db: Db;
  kv: Kv;
  now: () => number;
  fetch: typeof fetch;
  metrics?: Metrics;
  /** The server API (`deps.wechat.api`): late replies, typing, the follower list. */
  wechat: InboxWeChat;
  linking?: InboxLinking;
  redeemBindingCode?: RedeemBindingCodeByScene;
  onTemplateJobFinished?: OnTemplateJobFinished;
  /** [admin] Each accepted push as metadata (kind, time, intent), for the identity timeline. */
  onActivity?: OnActivity;
  requireScope?: RequireScope;
  options?: Partial<InboxOptions>;
}

export interface InboxFeature extends Feature {
  /** The one customer-service window of the process: the notices feature spends from it too. */
  readonly csWindow: CsWindow;
  readonly followerSync: FollowerSync;
  /** Resolves when late replies and after-ack writes have settled (tests, shutdown). */
  idle(): Promise<void>;
}

export function createInboxFeature(deps: InboxDeps): InboxFeature {
  const opts = { ...defaultInboxOptions, ...deps.options };
  const log = deps.log.child({ feature: 'inbox' });
  const accounts = deps.config.officialAccounts;
  const { wechat } = deps;
  const csWindow = createCsWindow({ kv: deps.kv, now: deps.now, quotas: quotasFromConfig(accounts) });
  const tasks = createTasks(log);
  const claims = createClaimStore({ kv: deps.kv, db: deps.db, now: deps.now, log });
  const replay = createReplayGuard({ kv: deps.kv, db: deps.db, now: deps.now, log });
  const router = createIntentRouter(deps.config.merchants);
  const merchantNames = new Map(deps.config.merchants.map((m) => [m.id, m.name]));
  const answers = createAnswers({
    router,
    intents: createIntentsClient({ fetch: deps.fetch, now: deps.now }),
    linking: deps.linking,
    publicUrl: deps.config.publicUrl,
    log,
  });
  const dispatcher = withActivity(createDispatcher({
    db: deps.db,
    log,
    now: deps.now,
    window: csWindow,
    answers,
    subscriptions: createSubscriptions({ db: deps.db }),
    tasks,
    merchantName: (id) => merchantNames.get(id) ?? id,
    redeemBindingCode: deps.redeemBindingCode,
    onTemplateJobFinished: deps.onTemplateJobFinished,
  }), { router, tasks, record: deps.onActivity });
  const push = createPushService({
    verifier: createPushVerifier({ now: deps.now }),
    replay,
    claims,
    dispatcher,
    cs: createCsDelivery({ wechat, window: csWindow, log }),
    tasks,
    log,
    now: deps.now,
    metrics: deps.metrics,
    budgetMs: opts.replyBudgetMs,
    pollMs: opts.claimPollMs,
    staleMs: opts.claimStaleMs,
  });
  const followerSync = createFollowerSync({ db: deps.db, kv: deps.kv, wechat, log, now: deps.now, intervalMs: opts.followerSyncIntervalMs });

  const routes: Router = createPushRoutes({ accounts, push, maxBodyBytes: MAX_PUSH_BYTES });
  if (deps.requireScope && deps.linking) {
    const tags = createTagRoutes({ db: deps.db, linking: deps.linking, requireScope: deps.requireScope });
    routes.use(tags.routes(), tags.allowedMethods());
  }

  let loop: { stop(): Promise<void> } | undefined;
  return {
    name: 'inbox',
    routes,
    csWindow,
    followerSync,
    idle: () => tasks.idle(),
    startWorkers() {
      loop ??= startFollowerSyncLoop({
        sync: followerSync,
        accounts,
        everyMs: opts.workerEveryMs,
        log,
        housekeeping: async () => (await claims.prune(24 * 3_600_000)) + (await replay.prune()),
      });
    },
    async stop() {
      await loop?.stop();
      await tasks.idle(5_000);
    },
  };
}
