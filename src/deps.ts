/**
 * The one wiring point (STYLE.md rule 2): config in, every service built once and
 * passed down explicitly. No module-level singletons; tests build their own Deps with
 * overrides (an in-memory Kv, a silent logger, a fake clock).
 */
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { AppConfig } from './config/index.ts';
import { createHomeFeature } from './home/home.routes.ts';
import { createWeChat, type WeChat } from './wechat/feature.ts';
import { createOutboundFetch } from './security/outbound.ts';
import { createHttpAgentFetch } from './wechat/http-agent.ts';
import { createCookiePolicy, type CookiePolicy } from './http/cookies.ts';
import { createCsrf, type Csrf } from './http/csrf.ts';
import type { Feature } from './http/feature.ts';
import { createLogger } from './http/logger.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createOAuthFeature, type LinkingPort } from './oauth/index.ts';
import { createApiDocsFeature } from './api/openapi.routes.ts';
import { createDemoAppFeature } from './demo/app.routes.ts';
import { createLinkingFeature } from './linking/index.ts';
import { createInboxFeature } from './inbox/index.ts';
import { createNoticesFeature } from './notices/index.ts';
import { createWebhooksFeature } from './webhooks/index.ts';
import { createAdminFeature } from './admin/admin.routes.ts';
import { createActivityRecorder } from './admin/activity.queries.ts';
import type { WebhooksFeature } from './webhooks/index.ts';
import { createViews, type Views } from './http/views.ts';
import { createSecretBox, type SecretBox } from './security/secret-box.ts';
import { createLiveConfig, type ConfigItems } from './config/overlay.ts';
import { createConfigSync } from './config/overlay.sync.ts';
import { openDb, openKv, type Db, type Kv } from './store/index.ts';
import { migrate } from './store/migrate.ts';

export interface CoreDeps {
  readonly config: AppConfig;
  readonly log: Logger;
  readonly db: Db;
  readonly kv: Kv;
  readonly metrics: Metrics;
  readonly secrets: SecretBox;
  readonly views: Views;
  readonly cookies: CookiePolicy;
  readonly csrf: Csrf;
  readonly now: () => number;
  readonly fetch: typeof fetch;
  /**
   * [admin] `config.merchants` / `config.officialAccounts` change in place when an admin edits
   * them in the UI (on every instance within seconds): read them at request time, or rebuild
   * what you derived from them here.
   */
  readonly onConfigChange: (listener: (items: ConfigItems) => void) => void;
}

export interface Deps extends CoreDeps {
  readonly wechat: WeChat;
  readonly features: Feature[];
  /** Koa apps mounted under a prefix (the sandbox at /sandbox). */
  readonly mounts: { prefix: string; app: Koa }[];
  /** [admin] Extra lines for the demo start banner (the first admin's one-time password). */
  readonly banner: string[];
  close(): Promise<void>;
}

export interface DepsOverrides {
  log?: Logger;
  db?: Db;
  kv?: Kv;
  now?: () => number;
  fetch?: typeof fetch;
  /** Embedded database in memory instead of DATA_DIR (tests). */
  inMemoryDb?: boolean;
  skipMigrations?: boolean;
  /** [admin] How often this instance looks for config changes made in the admin UI (default 2 s). */
  configPollMs?: number;
}

export async function createDeps(config: AppConfig, o: DepsOverrides = {}): Promise<Deps> {
  const log = o.log ?? createLogger(config.logLevel);
  const closers: (() => Promise<void>)[] = [];
  // Kv first: it fails in milliseconds, while the embedded database takes seconds to boot.
  const kv = o.kv ?? (await openKv({ redisUrl: config.redisUrl }));
  if (!o.kv) closers.push(() => kv.close());
  let db: Db;
  try {
    db = o.db ?? (await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, inMemory: o.inMemoryDb }));
  } catch (err) {
    await Promise.allSettled(closers.map((c) => c()));
    throw err;
  }
  if (!o.db) closers.push(() => db.close());
  if (!o.skipMigrations) {
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  }

  const secrets = createSecretBox(config.secretKey);
  const cookies = createCookiePolicy(config.publicUrl);
  // [admin] The file + merchants and official accounts made in the admin UI, applied before
  // any feature reads them, then kept in step with the other instances.
  const live = createLiveConfig(config);
  const configSync = createConfigSync({ db, secrets, log, live, intervalMs: o.configPollMs });
  const problems = await configSync.reload().catch(async (err: unknown) => {
    await Promise.allSettled(closers.map((c) => c()));
    throw err;
  });
  if (problems.length) log.error({ count: problems.length }, 'starting with the config file only: the admin UI overlay does not validate');
  configSync.start();
  closers.push(() => configSync.stop());
  const core: CoreDeps = {
    config: live.config,
    log,
    db,
    kv,
    metrics: createMetrics({ defaultMetrics: true }),
    secrets,
    views: createViews(),
    cookies,
    csrf: createCsrf({ key: secrets.deriveKey('csrf'), cookies, publicUrl: config.publicUrl }),
    now: o.now ?? Date.now,
    fetch: o.fetch ?? globalThis.fetch,
    onConfigChange: (l) => live.onChange(l),
  };

  const features: Feature[] = [];
  const mounts: Deps['mounts'] = [];
  // Requests to merchant-configured URLs (verify API, merchant OIDC, intents, webhooks) go
  // through the outbound policy (SSRF); WeChat, the sandbox and the admin's own IdP do not.
  const outbound = createOutboundFetch(config.outbound, core.fetch);
  closers.push(() => outbound.close());
  const merchantCalls = { fetch: outbound.fetch };

  // --- features: one clearly marked section each, in dependency order ---
  // [home]
  features.push(createHomeFeature(core));

  // [wechat] client (+ the sandbox at /sandbox in demo mode / SANDBOX=1)
  // WeChat's servers over node:http keep-alive, not fetch (issue 7: fetch was half the notice worker's CPU; the login's code exchange too); an injected fetch wins.
  const apiFetch = o.fetch ? undefined : createHttpAgentFetch();
  if (apiFetch) closers.push(async () => apiFetch.close());
  // The sandbox's modules are loaded only when it runs (demo mode, SANDBOX=1).
  const sandboxModule = config.sandbox.enabled ? await import('./sandbox/sandbox.ts') : undefined;
  const wechat = createWeChat({ ...core, ...(apiFetch ? { apiFetch } : {}), ...(sandboxModule ? { createSandbox: sandboxModule.createSandbox } : {}) });
  if (wechat.sandbox) {
    mounts.push({ prefix: '/sandbox', app: wechat.sandbox.app });
    const sb = wechat.sandbox;
    features.push({ name: 'sandbox', stop: () => sb.close() });
  }
  // [oauth] the authorization server (issue 5). It reads `linking` at request time, so the
  // linking feature can be built after it and take `oauth.merchantAuth` for /api/v1.
  const linkingForOAuth: { current?: LinkingPort } = {};
  const oauth = createOAuthFeature({ ...core, linking: () => linkingForOAuth.current });
  features.push(oauth);
  await oauth.ready;
  features.push(createApiDocsFeature(core));
  // The demo merchant H5 app (/demo/app): only with the sandbox, only if a client is registered for it.
  const demoApp = config.sandbox.enabled ? createDemoAppFeature(core) : null;
  if (demoApp) features.push(demoApp);
  // [/oauth]
  // [linking] WeChat login, identities, bindings, link pages, merchant API (issue 4)
  const linking = createLinkingFeature({ ...core, ...merchantCalls, wechat, requireScope: (scope) => oauth.merchantAuth.require(scope) });
  features.push(linking);
  linkingForOAuth.current = linking;
  // [demo] the demo merchant system (verify API, OIDC login) in demo/SANDBOX mode (issue 4)
  if (config.sandbox.enabled) {
    // Loaded only here: production never imports the demo IdP (oidc-provider).
    const { createDemoMerchantFeature, DEMO_IDP_PREFIX } = await import('./demo/index.ts');
    const demo = await createDemoMerchantFeature(core);
    features.push(demo);
    mounts.push({ prefix: DEMO_IDP_PREFIX, app: demo.idp });
  }
  // [/linking]
  // [inbox] WeChat push: events, messages, personalized replies; follower sync; tags (issue 6)
  const inbox = createInboxFeature({
    ...core,
    ...merchantCalls,
    wechat: wechat.api,
    linking: linking.service,
    redeemBindingCode: (input) => linking.service.redeemBindingCode(input),
    requireScope: (scope) => oauth.merchantAuth.require(scope),
    // [notices] TEMPLATESENDJOBFINISH → delivery status (issue 7); `notices` is built just below.
    onTemplateJobFinished: (p) => notices.service.onTemplateJobFinished(p),
    // [admin] messages as metadata (kind, time, intent) for the identity timeline (issue 8).
    onActivity: createActivityRecorder(core),
  });
  features.push(inbox);
  // [/inbox]
  // [notices+webhooks] service notices, signed webhooks (issue 7); their workers run on ROLE=worker|all
  const notices = createNoticesFeature({ ...core, wechat: wechat.api, csWindow: inbox.csWindow, requireScope: (scope) => oauth.merchantAuth.require(scope) });
  features.push(notices, createWebhooksFeature({ ...core, ...merchantCalls }));
  // [/notices+webhooks]
  // [admin] the admin UI (issue 8); its actions go through the owning features' services
  const banner: string[] = [];
  const webhooksFeature = features.find((f): f is WebhooksFeature => f.name === 'webhooks');
  const admin = createAdminFeature(core, { linking: linking.service, keys: oauth.keys, webhooks: webhooksFeature?.service, notices: notices.service }, { sso: config.admin.sso, configSync });
  features.push(admin);
  if (config.mode === 'demo' && config.role !== 'worker') banner.push(...(await admin.demoBanner()));
  // [/admin]

  return {
    ...core,
    wechat,
    features,
    mounts,
    banner,
    async close() {
      for (const f of [...features].reverse()) await f.stop?.().catch((err: unknown) => log.warn({ err, feature: f.name }, 'stop failed'));
      for (const c of closers.reverse()) await c().catch(() => undefined);
    },
  };
}
