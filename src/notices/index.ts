/**
 * The notices feature (issue 7): the merchant API, the service the inbox calls for
 * TEMPLATESENDJOBFINISH, and the dispatcher that ROLE=worker|all runs.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.ts';
import type { Feature } from '../http/feature.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import { createAnnouncer } from './deliveries.queries.ts';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from './dispatcher.ts';
import { createGovernor } from './governor.ts';
import type { CsWindowPort, NoticeSender, Outcome } from './notices.types.ts';
import { createNoticeRoutes, type RequireScope } from './notices.routes.ts';
import { createNoticesService, type NoticesService } from './notices.service.ts';
import { createMerchantDirectory, type MerchantDirectory } from './policy.ts';
import { createSend, type SendOptions } from './send.ts';

export type { NoticesService, RetryRequest, RetryResult } from './notices.service.ts';
export type { DeliveryBefore } from './retry.queries.ts';
export type { CsWindowPort, NoticeSender } from './notices.types.ts';
export type { RequireScope } from './notices.routes.ts';

export interface NoticesOptions extends DispatcherOptions, SendOptions {
  /** Sends per second per official account, shared by every worker. */
  ratePerSecond: number;
}

export const defaultNoticesOptions: Readonly<NoticesOptions> = Object.freeze({
  batchSize: 100,
  maxInFlight: 400,
  concurrency: 64,
  pollMs: 200,
  leaseMs: 60_000,
  sendTimeoutMs: 5_000,
  maintainEveryMs: 5_000,
  dependencyRetryMs: 1_000,
  reportKeepMs: 24 * 3600_000,
  ratePerSecond: 5_000,
  // D4: outbox retries may take minutes. A WeChat outage (-1 on every call) must not turn
  // queued notices into failed ones within minutes: with full jitter under a 5-minute cap,
  // 300 attempts keep a delivery retrying for about half a day on average (at most a day),
  // inside the 48 h customer-service window.
  backoff: { baseMs: 1_000, capMs: 300_000 },
  maxAttempts: 300,
  // client_msg_id is honoured for 10 minutes (§4.1); keep a minute for the call itself.
  dedupeWindowMs: 9 * 60_000,
});

export interface NoticesFeatureDeps {
  db: Db;
  kv: Kv;
  log: Logger;
  config: Pick<AppConfig, 'merchants' | 'officialAccounts'>;
  wechat: NoticeSender;
  csWindow: CsWindowPort;
  requireScope: RequireScope;
  now?: () => number;
  random?: () => number;
  options?: Partial<NoticesOptions>;
  metrics?: Metrics;
  onOutcome?: (o: Outcome) => void;
  /** [admin] Merchants made or edited in the admin UI while running (config/overlay.ts). */
  onConfigChange?: (listener: () => void) => void;
}

export interface NoticesFeature extends Feature {
  readonly service: NoticesService;
  /** A dispatcher of its own (tests run several, as several processes would). */
  createDispatcher(): Dispatcher;
}

export function createNoticesFeature(deps: NoticesFeatureDeps): NoticesFeature {
  const log = deps.log.child({ feature: 'notices' });
  const now = deps.now ?? Date.now;
  const options: NoticesOptions = { ...defaultNoticesOptions, ...deps.options };
  let directory = createMerchantDirectory(deps.config);
  const merchants: MerchantDirectory = (id) => directory(id);
  const webhookMerchants = deps.config.merchants.filter((m) => m.webhook).map((m) => m.id);
  const knownMerchants = deps.config.merchants.map((m) => m.id);
  // [admin] The lists are shared by reference with the service and every dispatcher: refill them in place.
  deps.onConfigChange?.(() => {
    directory = createMerchantDirectory(deps.config);
    webhookMerchants.splice(0, webhookMerchants.length, ...deps.config.merchants.filter((m) => m.webhook).map((m) => m.id));
    knownMerchants.splice(0, knownMerchants.length, ...deps.config.merchants.map((m) => m.id));
  });
  const governor = createGovernor({ kv: deps.kv, now, ratePerSecond: options.ratePerSecond });
  const outcomes = deps.metrics?.counter('wxbridge_notice_outcomes_total', 'Outcomes of notice deliveries by status and channel', ['status', 'channel']);
  const onOutcome = (o: Outcome) => {
    outcomes?.inc({ status: o.status, channel: 'channel' in o ? (o.channel ?? 'none') : 'none' });
    deps.onOutcome?.(o);
  };

  const makeDispatcher = (): Dispatcher =>
    createDispatcher({
      db: deps.db,
      log,
      now,
      merchants,
      knownMerchants,
      webhookMerchants,
      governor,
      csWindow: deps.csWindow,
      send: createSend({ sender: deps.wechat, governor, now, random: deps.random, options, onPauseError: (err) => log.warn({ err }, 'could not share a pause'), onCall: governor.countCall }),
      options,
      onOutcome,
    });

  let dispatcher: Dispatcher | undefined;
  // Workers of other processes LISTEN (PostgreSQL only); one in this process is woken directly.
  const announce = deps.db.listen ? createAnnouncer(deps.db, (err) => log.debug({ err }, 'could not announce new deliveries; workers find them at their next poll')) : undefined;
  const service = createNoticesService({
    db: deps.db,
    log,
    now,
    merchants,
    webhookMerchants,
    onEnqueued: () => {
      dispatcher?.wake();
      announce?.();
    },
  });

  return {
    name: 'notices',
    routes: createNoticeRoutes({ service, requireScope: deps.requireScope }),
    service,
    createDispatcher: makeDispatcher,
    startWorkers() {
      dispatcher ??= makeDispatcher();
      dispatcher.start();
    },
    async stop() {
      await dispatcher?.stop();
    },
  };
}
