/**
 * Process entry: config → deps → app → listen. ROLE=web serves HTTP, ROLE=worker runs
 * the background workers (notices, webhooks) with only the ops endpoints, `all` both.
 * A configuration or dependency problem at start prints one clear message and exits
 * non-zero; SIGTERM/SIGINT drain (readiness goes 503), close the server, stop workers
 * and close the stores.
 */
import type { Server } from 'node:http';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type AppConfig } from './config/index.ts';
import { createDeps, type Deps } from './deps.ts';
import { StoreStartError } from './store/index.ts';

export interface Running {
  server: Server;
  deps: Deps;
  url: string;
  stop(): Promise<void>;
}

export async function start(config: AppConfig, overrides: Parameters<typeof createDeps>[1] = {}): Promise<Running> {
  const deps = await createDeps(config, overrides);
  let draining = false;
  const app = createApp(deps, { isDraining: () => draining });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, () => resolve(s));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 30_000;
  if (config.role !== 'web') for (const f of deps.features) await f.startWorkers?.();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  let stopped: Promise<void> | undefined;
  return {
    server,
    deps,
    url: `http://127.0.0.1:${port}`,
    stop() {
      stopped ??= (async () => {
        draining = true;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        });
        await deps.close();
      })();
      return stopped;
    },
  };
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  let running: Running;
  try {
    running = await start(config);
  } catch (err) {
    if (err instanceof StoreStartError) {
      console.error(`wxbridge cannot start: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const { deps } = running;
  deps.log.info({ mode: config.mode, role: config.role, port: config.port, db: deps.db.kind, kv: deps.kv.kind }, 'wxbridge started');
  if (config.mode === 'demo') printDemoBanner(config, deps.banner);
  const shutdown = (signal: string) => {
    deps.log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        deps.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

function printDemoBanner(config: AppConfig, extra: readonly string[] = []): void {
  const u = config.publicUrl;
  const lines = [
    '',
    '  wxbridge is running in demo mode (embedded Postgres + in-process store, WeChat sandbox).',
    '',
    `  Open ${u}/ in a desktop browser to walk the whole journey.`,
    `    WeChat sandbox ........ ${u}/sandbox/`,
    `    OpenID configuration .. ${u}/.well-known/openid-configuration`,
    `    Health ................ ${u}/readyz`,
    ...extra,
    `  Data is kept in ${config.dataDir}.`,
    '',
  ];
  console.log(lines.join('\n'));
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) void main();
