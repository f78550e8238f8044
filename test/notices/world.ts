/**
 * A test world for the notices and webhooks features: one database (PostgreSQL in its own
 * schema when DATABASE_URL is set, PGlite otherwise) and Kv per test file, the sandbox over
 * real HTTP, and a push receiver standing in for the inbox (it records customer-service
 * windows and hands TEMPLATESENDJOBFINISH to the notices service, as the inbox does).
 *
 * Each `scenario()` is an official account and a merchant of their own (fresh ids), with
 * its own config, WeChat client and notices feature, so tests in a file never share rows.
 */
import { afterAll, beforeAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { fileConfigSchema } from '../../src/config/schema.ts';
import type { AppConfig } from '../../src/config/index.ts';
import { createCsWindow, type CsWindow } from '../../src/inbox/cs-window.ts';
import { createNoticesFeature, type NoticesFeature, type NoticesOptions } from '../../src/notices/index.ts';
import type { NoticeRequest } from '../../src/notices/notices.types.ts';
import { createSandbox, type Sandbox, type SandboxLimits } from '../../src/sandbox/sandbox.ts';
import type { Db } from '../../src/store/db.ts';
import type { Kv } from '../../src/store/kv.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createAccessTokenManager } from '../../src/wechat/access-token.ts';
import { createWeChatApi } from '../../src/wechat/api.ts';
import { createHttpAgentFetch } from '../../src/wechat/http-agent.ts';
import { parseWeChatXml } from '../../src/wechat/xml.ts';
import { primaryDb, primaryKv } from '../helpers/stores.ts';

export const TEMPLATE_ID = 'tplPaymentPosted00000000000000000000000001';
export const FIELDS = { thing1: 'merchant', amount2: 'amount', time3: 'time' } as const;
export const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const hex = (n: number) => randomBytes(n).toString('hex');

/** The fast schedule tests use: short leases, polls and backoffs. */
export const fastOptions: Partial<NoticesOptions> = {
  pollMs: 10,
  leaseMs: 4_000,
  sendTimeoutMs: 1_000,
  maintainEveryMs: 200,
  dependencyRetryMs: 50,
  backoff: { baseMs: 5, capMs: 50 },
};

export async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Linked {
  userId: string;
  openid: string;
  identityId: string;
  bindingId: string;
  account: string;
}

export interface ScenarioInput {
  notices?: Record<string, unknown>;
  webhook?: { url: string; secret: string };
  options?: Partial<NoticesOptions>;
  now?: () => number;
  kv?: Kv;
  timeoutMs?: number;
  /** false: no push URL, so no TEMPLATESENDJOBFINISH (template deliveries stay `sent`). */
  pushes?: boolean;
}

export async function createWorld(o: { sandboxLimits?: Partial<SandboxLimits>; db?: Db } = {}) {
  const db = o.db ?? (await primaryDb.create());
  await migrate(db);
  const kv = await primaryKv.create();
  const sandbox: Sandbox = createSandbox({ limits: { templateFinishDelayMs: 0, ...o.sandboxLimits }, pushTimeoutMs: 5_000 });
  const wx = await listen(sandbox.app.callback());
  const apiFetch = createHttpAgentFetch();
  const byOriginalId = new Map<string, { appId: string; feature?: NoticesFeature; csWindow: CsWindow }>();

  // The inbox's part: windows opened by interactions, template delivery reports.
  const receiver = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const f = parseWeChatXml(Buffer.concat(chunks));
        const s = byOriginalId.get(String(f.ToUserName));
        if (s) {
          const openid = String(f.FromUserName);
          if (f.MsgType === 'event' && f.Event === 'TEMPLATESENDJOBFINISH')
            await s.feature?.service.onTemplateJobFinished({ appId: s.appId, msgId: String(f.MsgID), status: String(f.Status), openid });
          else if (f.MsgType !== 'event') await s.csWindow.record(s.appId, openid, 'message');
          else if (['subscribe', 'CLICK', 'SCAN'].includes(String(f.Event))) await s.csWindow.record(s.appId, openid, 'event');
        }
        res.end('success');
      })().catch(() => {
        res.statusCode = 500;
        res.end();
      });
    });
  });

  async function scenario(input: ScenarioInput = {}) {
    const appId = `wx${hex(8)}`;
    const appSecret = hex(16);
    const originalId = `gh_${hex(6)}`;
    const merchantId = `m-${hex(5)}`;
    const kvs = input.kv ?? kv;
    sandbox.registerApp({ appId, appSecret, token: 'bridgeToken2024', mode: 'plain', originalId, redirectDomains: ['b.example'], ...(input.pushes === false ? {} : { pushUrl: receiver.url }), templates: { [TEMPLATE_ID]: Object.keys(FIELDS) } });
    const accountSlug = `oa-${hex(4)}`;
    const file = fileConfigSchema.parse({
      officialAccounts: [{ id: accountSlug, appId, appSecret, token: 'bridgeToken2024', originalId }],
      merchants: [
        {
          id: merchantId,
          name: 'Test merchant',
          officialAccount: accountSlug,
          linking: [{ type: 'binding-code' }],
          notices: { templates: { payment_posted: { templateId: TEMPLATE_ID, fields: FIELDS } }, ...input.notices },
          ...(input.webhook ? { webhook: input.webhook } : {}),
        },
      ],
    });
    return buildScenario({ file, appId, appSecret, originalId, merchantId, kv: kvs, input });
  }

  function buildScenario(s: { file: Pick<AppConfig, 'merchants' | 'officialAccounts'>; appId: string; appSecret: string; originalId: string; merchantId: string; kv: Kv; input: ScenarioInput }) {
    const config = s.file;
    const tokens = createAccessTokenManager({ kv: s.kv, apiBaseUrl: wx.url, logger: log, accounts: (id) => (id === s.appId ? { appSecret: s.appSecret } : undefined) });
    // The production transport of the server API (src/deps.ts), not fetch.
    const wechat = createWeChatApi({ tokens, apiBaseUrl: wx.url, logger: log, timeoutMs: s.input.timeoutMs ?? 1_000, fetch: apiFetch });
    const csWindow = createCsWindow({ kv: s.kv, quotas: () => ({ messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 }) });
    // Another process with the same config: nothing shared with `feature` but the stores.
    const makeFeature = () =>
      createNoticesFeature({
        db,
        kv: s.kv,
        log,
        config,
        wechat,
        csWindow,
        requireScope: () => async () => {
          throw new Error('not used');
        },
        now: s.input.now,
        options: { ...fastOptions, ...s.input.options },
      });
    const feature = makeFeature();
    byOriginalId.set(s.originalId, { appId: s.appId, feature, csWindow });
    const { appId, merchantId } = s;

    /** The user writes to the account: WeChat opens the window; the inbox records it. */
    const talk = async (userId: string, openid: string) => {
      await sandbox.act(appId, userId, { type: 'text', content: '你好' });
      if (s.input.pushes === false) await csWindow.record(appId, openid, 'message');
    };

    return {
      appId,
      appSecret: s.appSecret,
      talk,
      merchantId,
      config,
      feature,
      makeFeature,
      service: feature.service,
      csWindow,
      tokens,
      /** A sandbox user linked to this merchant (identity + active binding rows). */
      async link(u: { follow?: boolean; talk?: boolean; messagesOff?: boolean; blacklisted?: boolean; account?: string; tags?: string[] } = {}): Promise<Linked> {
        const user = sandbox.createUser({ followsApps: u.follow === false ? [] : [appId] });
        const openid = sandbox.openid(appId, user.userId);
        if (u.talk) await talk(user.userId, openid);
        if (u.messagesOff || u.blacklisted) sandbox.setRelation(appId, user.userId, { messagesOff: u.messagesOff, blacklisted: u.blacklisted });
        const identity = await db.query<{ id: string }>('INSERT INTO identities (app_id, openid, tags) VALUES ($1, $2, $3) RETURNING id', [appId, openid, u.tags ?? []]);
        const identityId = identity.rows[0]!.id;
        const account = u.account ?? `acct-${hex(4)}`;
        const binding = await db.query<{ id: string }>(
          `INSERT INTO bindings (merchant_id, identity_id, account_id, exclusive, proof, created_by) VALUES ($1, $2, $3, false, 'import', 'test') RETURNING id`,
          [merchantId, identityId, account],
        );
        return { userId: user.userId, openid, identityId, bindingId: binding.rows[0]!.id, account };
      },
      notice(request: Partial<NoticeRequest> & Pick<NoticeRequest, 'to'>, key = hex(8)) {
        const full: NoticeRequest = { channel: 'auto', data: { merchant: '信用卡中心', amount: '¥99.00', time: '2025-01-01 12:00' }, template: 'payment_posted', ...request };
        return feature.service.createNotice({ merchantId, clientId: 'test-backend', idempotencyKey: key, request: full });
      },
      /** Runs one dispatcher until nothing of this merchant is queued or sending (or the time is up). */
      async settle(timeoutMs = 10_000, dispatcher = feature.createDispatcher()) {
        dispatcher.start();
        try {
          // Settled: nothing queued or sending, every TEMPLATESENDJOBFINISH push landed and applied.
          await until(async () => {
            await sandbox.idle();
            return (await pending(merchantId)) === 0 && (await unappliedReports(merchantId)) === 0;
          }, timeoutMs);
        } finally {
          await dispatcher.stop();
        }
      },
      deliveries: (noticeId?: string) => deliveriesOf(merchantId, noticeId),
    };
  }

  async function pending(merchantId: string, dueBy?: number): Promise<number> {
    const r = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM notice_deliveries WHERE merchant_id = $1 AND (status = 'sending' OR (status = 'queued' AND ($2::timestamptz IS NULL OR next_attempt_at <= $2)))`,
      [merchantId, dueBy === undefined ? null : new Date(dueBy)],
    );
    return r.rows[0]!.n;
  }

  async function unappliedReports(merchantId: string): Promise<number> {
    const r = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM notice_template_reports r JOIN notice_deliveries d ON d.app_id = r.app_id AND d.wx_msgid = r.msg_id
       WHERE d.merchant_id = $1 AND d.status = 'sent'`,
      [merchantId],
    );
    return r.rows[0]!.n;
  }

  async function deliveriesOf(merchantId: string, noticeId?: string) {
    const r = await db.query<{ id: string; notice_id: string; openid: string; status: string; channel: string | null; errcode: number | null; error: string | null; attempts: number; wx_msgid: string | null; next_attempt_at: Date; ambiguous_since: Date | null }>(
      `SELECT id, notice_id, openid, status, channel, errcode, error, attempts, wx_msgid, next_attempt_at, ambiguous_since FROM notice_deliveries
       WHERE merchant_id = $1 AND ($2::uuid IS NULL OR notice_id = $2::uuid) ORDER BY created_at, id`,
      [merchantId, noticeId ?? null],
    );
    return r.rows;
  }

  return {
    db,
    kv,
    sandbox,
    wxUrl: wx.url,
    receiverUrl: receiver.url,
    scenario,
    pending,
    async close() {
      await sandbox.close();
      apiFetch.close();
      await wx.close();
      await receiver.close();
      await kv.close();
      if (!o.db) await primaryDb.dispose(db);
    },
  };
}

export type World = Awaited<ReturnType<typeof createWorld>>;
export type Scenario = Awaited<ReturnType<World['scenario']>>;

export async function until(fn: () => Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** One world for a test file: made before its first test, closed after its last; `world()` reads it. */
export function sharedWorld(o?: Parameters<typeof createWorld>[0]): () => World {
  let world: World | undefined;
  beforeAll(async () => {
    world = await createWorld(o);
  });
  afterAll(async () => {
    await world?.close();
  });
  return () => {
    if (!world) throw new Error('the notices world is not made yet (use it inside a test)');
    return world;
  };
}
