/**
 * The authorization server in-process on port 0 with a config file of its own (two
 * merchants, clients for every auth method), the fake linking feature, and real
 * Postgres/Redis when the run has them. Core AS tests start it once per file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { pino } from 'pino';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { createOAuthFeature, type OAuthFeature } from '../../src/oauth/index.ts';
import type { OAuthPolicy } from '../../src/oauth/policy.ts';
import { freePort, TEST_SECRET_KEY } from '../helpers/app.ts';
import { createSchemaDb, DATABASE_URL } from '../helpers/stores.ts';
import { createFakeLinking, type FakeLinking } from './fake-linking.ts';

export const APP_ID = 'wx1234567890abcdef';
export const SECRETS = {
  cardH5: 'card-h5-secret-0001',
  cardBackend: 'card-backend-secret-0001',
  cardPost: 'card-post-secret-0001',
  cardCrm: 'card-crm-secret-0001',
  powerBackend: 'power-backend-secret-0001',
  powerH5: 'power-h5-secret-0001',
} as const;
export const CARD_REDIRECT = 'https://h5.card.example/auth/callback';
export const POWER_REDIRECT = 'https://h5.power.example/cb';

export interface OAuthTestApp {
  baseUrl: string;
  issuer: string;
  deps: Deps;
  oauth: OAuthFeature;
  linking: FakeLinking;
  /** The private key of client `card-jwt` (private_key_jwt). */
  cardJwtKey: CryptoKey;
  stop(): Promise<void>;
}

async function writeConfig(dir: string, cardJwtPublic: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'wxbridge.json');
  const config = {
    // The merchants' backends here listen on loopback, which the outbound policy refuses by default.
    outbound: { allowPrivateNetworks: true },
    officialAccounts: [{ id: 'demo', appId: APP_ID, appSecret: 'test-app-secret-0001', token: 'bridgeToken2024', originalId: 'gh_0123456789ab' }],
    merchants: [
      {
        id: 'card',
        name: 'Card',
        officialAccount: 'demo',
        profile: 'userinfo',
        linking: [{ type: 'binding-code' }],
        clients: [
          {
            clientId: 'card-h5',
            clientSecret: SECRETS.cardH5,
            redirectUris: [CARD_REDIRECT, 'https://h5.card.example/other?x=1'],
            grantTypes: ['authorization_code', 'refresh_token'],
            scopes: ['openid', 'profile', 'offline_access'],
          },
          {
            clientId: 'card-backend',
            clientSecret: SECRETS.cardBackend,
            grantTypes: ['client_credentials'],
            scopes: ['notices:send', 'bindings:read', 'bindings:write', 'binding-codes:write'],
          },
          {
            clientId: 'card-crm',
            clientSecret: SECRETS.cardCrm,
            grantTypes: ['client_credentials'],
            scopes: ['bindings:read', 'tags:write'],
          },
          {
            clientId: 'card-post',
            clientSecret: SECRETS.cardPost,
            tokenEndpointAuthMethod: 'client_secret_post',
            grantTypes: ['client_credentials'],
            scopes: ['bindings:read'],
          },
          { clientId: 'card-jwt', jwks: { keys: [cardJwtPublic] }, grantTypes: ['client_credentials'], scopes: ['bindings:read'] },
        ],
      },
      {
        id: 'power',
        name: 'Power',
        officialAccount: 'demo',
        exposeWeChatIds: true,
        linking: [{ type: 'binding-code' }],
        clients: [
          { clientId: 'power-backend', clientSecret: SECRETS.powerBackend, grantTypes: ['client_credentials'], scopes: ['bindings:read', 'bindings:write'] },
          { clientId: 'power-h5', clientSecret: SECRETS.powerH5, redirectUris: [POWER_REDIRECT], grantTypes: ['authorization_code'], scopes: ['openid'] },
        ],
      },
    ],
  };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export async function startOAuthApp(opts: { policy?: Partial<OAuthPolicy>; now?: () => number } = {}): Promise<OAuthTestApp> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wxb-oauth-'));
  const jwtPair = await generateKeyPair('ES256', { extractable: true });
  const cardJwtPublic = { ...(await exportJWK(jwtPair.publicKey)), kid: 'card-jwt-1', alg: 'ES256', use: 'sig' };
  const baseUrl = `http://localhost:${port}`;
  const config = loadConfig({
    env: {
      PORT: String(port),
      PUBLIC_URL: baseUrl,
      DATA_DIR: dir,
      BRIDGE_SECRET_KEY: TEST_SECRET_KEY,
      BRIDGE_CONFIG: await writeConfig(dir, cardJwtPublic),
      LOG_LEVEL: 'silent',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    },
  });
  const db = DATABASE_URL ? await createSchemaDb(DATABASE_URL) : undefined;
  const deps = await createDeps(config, { log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), inMemoryDb: true, db, now: opts.now });
  const linking = createFakeLinking();
  const oauth = createOAuthFeature({ ...deps, linking, policy: opts.policy });
  await oauth.ready;
  // The app's own oauth feature is replaced by this one, wired to the fake linking.
  const app = createApp({ ...deps, features: [oauth, ...deps.features.filter((f) => f.name !== 'oauth')] });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    baseUrl,
    issuer: baseUrl,
    deps,
    oauth,
    linking,
    cardJwtKey: jwtPair.privateKey,
    async stop() {
      await oauth.stop?.();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await deps.close();
      await db?.close();
    },
  };
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export async function postForm(url: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Response> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body, redirect: 'manual' });
}

export async function clientCredentials(app: OAuthTestApp, clientId: string, secret: string, scope?: string): Promise<string> {
  const r = await postForm(`${app.baseUrl}/oauth2/token`, { grant_type: 'client_credentials', ...(scope ? { scope } : {}) }, { authorization: basic(clientId, secret) });
  if (r.status !== 200) throw new Error(`client_credentials failed: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access_token: string }).access_token;
}
