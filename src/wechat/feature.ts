/**
 * Wiring of the WeChat client for the app: one access-token owner per process (backed
 * by the shared Kv lock, so one fetch per expiry across instances), the web-auth client
 * and the API client, all pointed at the configured base URLs. In demo/SANDBOX mode it
 * also builds the sandbox, mounted at /sandbox, and registers every configured official
 * account in it (push URL, redirect domain, templates, menu), and its Open Platform website
 * app when it has one (QR login, §1.10), so the journey works.
 */
import type { Logger } from 'pino';
import type { AppConfig, OfficialAccountConfig } from '../config/index.ts';
import type { Kv } from '../store/kv.ts';
import type { createSandbox, Sandbox } from '../sandbox/sandbox.ts';
import { createAccessTokenManager } from './access-token.ts';
import { createWeChatApi } from './api.ts';
import type { FetchLike } from './http.ts';
import { createWebAuthClient } from './web-auth.ts';

type CreateSandbox = typeof createSandbox;

export interface WeChat {
  webAuth: ReturnType<typeof createWebAuthClient>;
  tokens: ReturnType<typeof createAccessTokenManager>;
  api: ReturnType<typeof createWeChatApi>;
  /** Official account by its slug (`/wechat/push/:account`). */
  accountById(id: string): OfficialAccountConfig | undefined;
  accountByAppId(appId: string): OfficialAccountConfig | undefined;
  /** The built-in fake WeChat, when mounted (demo mode or SANDBOX=1). */
  sandbox: Sandbox | undefined;
}

export function createWeChat(deps: {
  config: AppConfig;
  kv: Kv;
  log: Logger;
  fetch: typeof fetch;
  /** Transport of every call to WeChat's servers (access tokens, the web-auth code exchange, the server API); default `fetch`. */
  apiFetch?: FetchLike;
  now?: () => number;
  /**
   * The sandbox's constructor, when `config.sandbox.enabled`: the caller imports it only then,
   * so a production process never loads the sandbox's modules.
   */
  createSandbox?: CreateSandbox;
}): WeChat {
  const { config } = deps;
  // Looked up at call time: official accounts made or edited in the admin UI change
  // config.officialAccounts in place while running (config/overlay.ts).
  const byId = { get: (id: string) => config.officialAccounts.find((a) => a.id === id) };
  const byAppId = { get: (appId: string) => config.officialAccounts.find((a) => a.appId === appId) };
  const log = deps.log.child({ component: 'wechat' });
  const sandboxOn = config.sandbox.enabled && config.wechat.apiBaseUrl.startsWith(config.publicUrl);
  // One keep-alive transport for all of WeChat's servers: the login's code exchange is on every flow's path.
  const transport = deps.apiFetch ?? deps.fetch;
  const tokens = createAccessTokenManager({
    kv: deps.kv,
    fetch: transport,
    apiBaseUrl: config.wechat.apiBaseUrl,
    logger: log,
    ...(deps.now ? { now: deps.now } : {}),
    accounts: (appId) => {
      const a = byAppId.get(appId);
      return a ? { appSecret: a.appSecret, method: a.tokenMethod } : undefined;
    },
  });
  const sandbox = config.sandbox.enabled && deps.createSandbox ? buildSandbox(deps.createSandbox, config, log) : undefined;
  return {
    tokens,
    webAuth: createWebAuthClient({
      oauthBaseUrl: config.wechat.oauthBaseUrl,
      apiBaseUrl: config.wechat.apiBaseUrl,
      fetch: transport,
      logger: log,
      // WeChat refuses ports in redirect_uri; only a local sandbox accepts them.
      allowPortInRedirectUri: sandboxOn,
    }),
    api: createWeChatApi({
      tokens,
      fetch: transport,
      apiBaseUrl: config.wechat.apiBaseUrl,
      logger: log,
      ...(sandboxOn ? { qrImageBaseUrl: config.wechat.apiBaseUrl } : {}),
    }),
    accountById: (id) => byId.get(id),
    accountByAppId: (appId) => byAppId.get(appId),
    sandbox,
  };
}

function buildSandbox(createSandbox: CreateSandbox, config: AppConfig, log: Logger): Sandbox {
  const sandbox = createSandbox({ basePath: '/sandbox', logger: log.child({ component: 'sandbox' }) });
  const host = new URL(config.publicUrl).hostname;
  for (const a of config.officialAccounts) {
    const templates: Record<string, string[]> = {};
    const menu: { key: string; name: string; type: 'click' }[] = [];
    for (const m of config.merchants.filter((x) => x.officialAccount === a.id)) {
      for (const t of Object.values(m.notices.templates)) templates[t.templateId] = Object.keys(t.fields);
      for (const key of Object.keys(m.intents?.menuKeys ?? {})) if (!menu.some((x) => x.key === key)) menu.push({ key, name: key, type: 'click' });
    }
    sandbox.registerApp({
      appId: a.appId,
      appSecret: a.appSecret,
      token: a.token,
      ...(a.encodingAesKey ? { encodingAesKey: a.encodingAesKey, mode: 'safe' as const } : { mode: 'plain' as const }),
      originalId: a.originalId,
      name: a.id,
      pushUrl: `${config.publicUrl}/wechat/push/${a.id}`,
      redirectDomains: [host],
      allowPortsInRedirect: true,
      templates,
      ...(menu.length ? { menu: menu.slice(0, 15) } : {}),
      // An account with a website app shares an Open Platform account with it (unionid, §1.10).
      ...(a.websiteApp ? { openPlatformId: `open-${a.id}` } : {}),
    });
    if (a.websiteApp) {
      sandbox.registerWebsiteApp({ appId: a.websiteApp.appId, appSecret: a.websiteApp.appSecret, name: `${a.id} website`, redirectDomains: [host], allowPortsInRedirect: true, openPlatformId: `open-${a.id}` });
    }
  }
  return sandbox;
}
