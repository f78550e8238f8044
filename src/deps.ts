/**
 * The one wiring point (STYLE.md rule 2): config in, every service built once and
 * passed down explicitly. No module-level singletons; tests build their own Deps with
 * overrides (an in-memory Kv, a silent logger, a fake clock).
 */
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { AppConfig } from './config/index.ts';
import { createHomeFeature } from './home/home.routes.ts';
import { createCookiePolicy, type CookiePolicy } from './http/cookies.ts';
import { createCsrf, type Csrf } from './http/csrf.ts';
import type { Feature } from './http/feature.ts';
import { createLogger } from './http/logger.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createViews, type Views } from './http/views.ts';
import { createSecretBox, type SecretBox } from './security/secret-box.ts';
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
}

export interface Deps extends CoreDeps {
  readonly features: Feature[];
  /** Koa apps mounted under a prefix (the sandbox at /sandbox). */
  readonly mounts: { prefix: string; app: Koa }[];
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
  const core: CoreDeps = {
    config,
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
  };

  const features: Feature[] = [];
  const mounts: Deps['mounts'] = [];

  // --- features: one clearly marked section each, in dependency order ---
  // [home]
  features.push(createHomeFeature(core));

  return {
    ...core,
    features,
    mounts,
    async close() {
      for (const f of [...features].reverse()) await f.stop?.().catch((err: unknown) => log.warn({ err, feature: f.name }, 'stop failed'));
      for (const c of closers.reverse()) await c().catch(() => undefined);
    },
  };
}
