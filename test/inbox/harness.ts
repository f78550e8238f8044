/**
 * The real app (real wiring from `createDeps`, real Postgres/Redis when the run has them,
 * PGlite and the in-process Kv otherwise) with three official accounts — plaintext,
 * compatible and safe mode — talking to a standalone sandbox over real HTTP, and a fake
 * merchant intents endpoint that checks the Standard Webhooks signature.
 *
 * The inbox feature the wiring made is swapped for one with test options (a short reply
 * budget, a receipt spy, a fake merchant auth), the rest of the app stays as wired. The Kv
 * and the Db are wrapped so a test can take them "down" (SECURITY.md D1 drills).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp } from '../../src/app.ts';
import { loadConfig, type AppConfig, type OfficialAccountConfig } from '../../src/config/index.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { DependencyUnavailableError } from '../../src/http/errors.ts';
import { createInboxFeature, type InboxFeature, type InboxOptions, type OnTemplateJobFinished } from '../../src/inbox/index.ts';
import type { LinkingFeature } from '../../src/linking/index.ts';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { verifySigned } from '../../src/webhooks/signing.ts';
import type { Db } from '../../src/store/db.ts';
import { openKv, type Kv } from '../../src/store/index.ts';
import { freePort, TEST_SECRET_KEY } from '../helpers/app.ts';
import { createSchemaDb, DATABASE_URL, REDIS_URL } from '../helpers/stores.ts';

export const AES_KEY = 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA';
export const MODES = ['plain', 'compat', 'safe'] as const;
export type Mode = (typeof MODES)[number];
const INTENTS_SECRET = 'intents-secret-0123';

const listen = (s: Server): Promise<string> =>
  new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
const close = (s: Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));
const body = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
};

export interface IntentSeen {
  merchant: string;
  payload: { intent: string; text: string; account: string; binding_id: string; sub: string; location?: unknown };
  signed: boolean;
}

/** The merchant's intents endpoint: answers by intent; fails (500) for accounts named `boom…`. */
export interface FakeMerchant {
  url: string;
  calls: IntentSeen[];
  /** Holds every answer until the returned function is called: "slow" without guessing how slow. */
  hold(): () => void;
}

async function startMerchant(): Promise<FakeMerchant & { server: Server }> {
  let held: Promise<void> | undefined;
  const m = {
    url: '',
    calls: [] as IntentSeen[],
    server: undefined as unknown as Server,
    hold() {
      let release!: () => void;
      held = new Promise<void>((r) => (release = r));
      return () => {
        held = undefined;
        release();
      };
    },
  };
  m.server = createServer((req, res) => {
    void body(req).then(async (raw) => {
      let signed = true;
      try {
        verifySigned(INTENTS_SECRET, raw, req.headers as Record<string, string>);
      } catch {
        signed = false;
      }
      const payload = JSON.parse(raw) as IntentSeen['payload'];
      m.calls.push({ merchant: (req.url ?? '').slice(1), payload, signed });
      if (held) await held;
      if (payload.account.startsWith('boom')) {
        res.statusCode = 500;
        res.end('internal error');
        return;
      }
      const reply =
        payload.intent === 'balance'
          ? { type: 'text', content: `余额 ${payload.account}: ¥100.00` }
          : payload.intent === 'bill'
            ? { type: 'news', title: '本月账单', description: '¥320.00', url: 'https://bank.example/bill' }
            : null;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ reply }));
    });
  });
  m.url = await listen(m.server);
  return m;
}

/** Stores that a test can take down: every call then fails as the real adapters do. */
export interface Switch {
  down: boolean;
}

function switchableKv(kv: Kv, sw: Switch): Kv {
  const guard = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => (...a: A): Promise<R> => (sw.down ? Promise.reject(new DependencyUnavailableError('kv')) : fn(...a));
  return { ...kv, kind: kv.kind, get: guard(kv.get), set: guard(kv.set), setIfAbsent: guard(kv.setIfAbsent), getDel: guard(kv.getDel), del: guard(kv.del), incr: guard(kv.incr), pttl: guard(kv.pttl), tryLock: guard(kv.tryLock), ping: guard(kv.ping), close: () => kv.close() };
}

function switchableDb(db: Db, sw: Switch): Db {
  const down = () => Promise.reject(new DependencyUnavailableError('db'));
  return {
    kind: db.kind,
    query: (sql, params) => (sw.down ? down() : db.query(sql, params)),
    transaction: (fn) => (sw.down ? down() : db.transaction(fn)),
    exec: (sql) => db.exec(sql),
    ping: () => (sw.down ? down() : db.ping()),
    close: () => db.close(),
  } as Db;
}

export interface Harness {
  baseUrl: string;
  /** Another app instance on the same stores (only the inbox mounted): where a retry may land. */
  otherInstance(): Promise<string>;
  config: AppConfig;
  deps: Deps;
  inbox: InboxFeature;
  linking: LinkingFeature['service'];
  sandbox: Sandbox;
  merchant: FakeMerchant;
  accounts: Record<Mode, OfficialAccountConfig>;
  merchantOf: Record<Mode, string>;
  receipts: Parameters<OnTemplateJobFinished>[0][];
  receiptDelayMs: { value: number };
  kvSwitch: Switch;
  dbSwitch: Switch;
  stop(): Promise<void>;
}

export async function startHarness(o: { options?: Partial<InboxOptions>; pushTimeoutMs?: number } = {}): Promise<Harness> {
  const merchant = await startMerchant();
  const sandbox = createSandbox({ pushTimeoutMs: o.pushTimeoutMs ?? 3000, limits: { templateFinishDelayMs: 0 } });
  const sandboxServer = createServer(sandbox.app.callback());
  const sandboxUrl = await listen(sandboxServer);

  const suffix = randomBytes(4).toString('hex');
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const account = (mode: Mode) => ({
    id: `oa-${mode}`,
    appId: `wx${randomBytes(8).toString('hex')}`,
    appSecret: `secret-${mode}-${suffix}`,
    token: `token${mode}${suffix}`,
    ...(mode === 'plain' ? {} : { encodingAesKey: AES_KEY }),
    originalId: `gh_${mode}${suffix}`,
  });
  const merchants = MODES.map((mode) => ({
    id: `card-${mode}`,
    name: `信用卡中心${mode}`,
    officialAccount: `oa-${mode}`,
    linking: [{ type: 'binding-code' }],
    webhook: { url: `${merchant.url}/webhooks`, secret: 'webhook-secret-0123' },
    intents: { url: `${merchant.url}/card-${mode}`, secret: INTENTS_SECRET, timeoutMs: 2000, keywords: { 余额: 'balance', 账单: 'bill' }, menuKeys: { MY_BILL: 'bill' } },
  }));
  const dir = mkdtempSync(join(tmpdir(), 'wxb-inbox-'));
  const file = join(dir, 'config.json');
  // The intents endpoints listen on loopback, which the outbound policy refuses by default.
  writeFileSync(file, JSON.stringify({ officialAccounts: MODES.map(account), merchants, outbound: { allowPrivateNetworks: true } }));
  const config = loadConfig({
    env: { PORT: String(port), PUBLIC_URL: publicUrl, DATA_DIR: dir, BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: TEST_SECRET_KEY, LOG_LEVEL: 'silent', WECHAT_API_BASE_URL: sandboxUrl },
  });

  const kvSwitch: Switch = { down: false };
  const dbSwitch: Switch = { down: false };
  const realKv = await openKv({ redisUrl: REDIS_URL });
  const realDb = DATABASE_URL ? await createSchemaDb(DATABASE_URL) : await (await import('../../src/store/db-pglite.ts')).createPgliteDb();
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const deps = await createDeps(config, { log, kv: switchableKv(realKv, kvSwitch), db: switchableDb(realDb, dbSwitch) });

  const linking = deps.features.find((f) => f.name === 'linking') as LinkingFeature;
  const receipts: Harness['receipts'] = [];
  const receiptDelayMs = { value: 0 };
  const makeInbox = () => createInboxFeature({
    ...deps,
    wechat: deps.wechat.api,
    linking: linking.service,
    redeemBindingCode: (input) => linking.service.redeemBindingCode(input),
    // The merchant-auth fake: `x-test-merchant` names the authenticated merchant.
    requireScope: (scope) => async (ctx, next) => {
      const merchantId = ctx.get('x-test-merchant');
      if (!merchantId || scope !== 'tags:write') {
        ctx.status = 401;
        ctx.body = { error: 'invalid_token' };
        return;
      }
      ctx.state.merchantAuth = { merchantId, clientId: 'test', scopes: [scope] };
      await next();
    },
    onTemplateJobFinished: async (p) => {
      if (receiptDelayMs.value) await new Promise((r) => setTimeout(r, receiptDelayMs.value));
      receipts.push(p);
    },
    options: { replyBudgetMs: 1500, claimPollMs: 20, ...o.options },
  });
  const inbox = makeInbox();
  const at = deps.features.findIndex((f) => f.name === 'inbox');
  await deps.features[at]?.stop?.();
  deps.features.splice(at, 1, inbox);

  const server = createApp(deps).listen(port);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));

  const accounts = Object.fromEntries(MODES.map((m) => [m, config.officialAccounts.find((a) => a.id === `oa-${m}`)!])) as Record<Mode, OfficialAccountConfig>;
  for (const mode of MODES) {
    const a = accounts[mode];
    sandbox.registerApp({
      appId: a.appId,
      appSecret: a.appSecret,
      token: a.token,
      ...(a.encodingAesKey ? { encodingAesKey: a.encodingAesKey } : {}),
      mode,
      originalId: a.originalId,
      pushUrl: `http://127.0.0.1:${port}/wechat/push/${a.id}`,
      redirectDomains: ['localhost'],
    });
  }

  const others: Server[] = [];
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    async otherInstance() {
      const other = createApp({ ...deps, features: [makeInbox()], mounts: [] }).listen(0, '127.0.0.1');
      await new Promise<void>((resolve) => other.once('listening', () => resolve()));
      others.push(other);
      return `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    },
    config,
    deps,
    inbox,
    linking: linking.service,
    sandbox,
    merchant,
    accounts,
    merchantOf: { plain: 'card-plain', compat: 'card-compat', safe: 'card-safe' },
    receipts,
    receiptDelayMs,
    kvSwitch,
    dbSwitch,
    async stop() {
      kvSwitch.down = false;
      dbSwitch.down = false;
      await inbox.idle();
      for (const other of others) {
        other.closeAllConnections();
        await close(other);
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await deps.close();
      await realKv.close();
      await realDb.close();
      await sandbox.close();
      await close(sandboxServer);
      merchant.server.closeAllConnections();
      await close(merchant.server);
    },
  };
}

/** A sandbox user who follows the account (no push: a seeded follower has no CS window). */
export function follower(h: Harness, mode: Mode): { userId: string; openid: string; appId: string } {
  const appId = h.accounts[mode].appId;
  const { userId } = h.sandbox.createUser({ followsApps: [appId] });
  return { userId, openid: h.sandbox.openid(appId, userId), appId };
}

/** Links the user to an account of the mode's merchant through the real linking service. */
export async function linkUser(h: Harness, mode: Mode, openid: string, account: { id: string; display: string }): Promise<{ identityId: string; bindingId: string }> {
  const identity = await h.linking.recordInteraction({ appId: h.accounts[mode].appId, openid });
  const r = await h.linking.link({ merchantId: h.merchantOf[mode], identityId: identity.id, account, proof: 'admin', actor: 'admin:test', source: 'admin' });
  if (!r.ok) throw new Error(`link failed: ${r.reason}`);
  return { identityId: identity.id, bindingId: r.binding.id };
}
