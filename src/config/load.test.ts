import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'wxb-config-'));
const KEY = 'ab'.repeat(32);

function writeConfig(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const VALID = `
officialAccounts:
  - id: demo
    appId: wx1234567890abcdef
    appSecret: \${WX_SECRET}
    token: bridgeToken2024
    encodingAesKey: Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA
    originalId: gh_0123456789ab
merchants:
  - id: card
    name: 信用卡中心
    officialAccount: demo
    linking:
      - type: binding-code
    clients:
      - clientId: card-backend
        clientSecret: \${CARD_SECRET:-fallback-secret}
        grantTypes: [client_credentials]
        scopes: [notices:send]
`;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('When nothing is configured, then demo mode runs on embedded defaults with the sandbox', () => {
    const c = loadConfig({ env: { DATA_DIR: join(dir, 'demo') } });
    expect(c.mode).toBe('demo');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.sandbox.enabled).toBe(true);
    expect(c.wechat.apiBaseUrl).toBe('http://localhost:3000/sandbox');
    expect(c.merchants.map((m) => m.id)).toContain('card');
    expect(c.secretKey).toHaveLength(32);
    // Generated once and kept: a second load reads the same key.
    expect(loadConfig({ env: { DATA_DIR: join(dir, 'demo') } }).secretKey.equals(c.secretKey)).toBe(true);
    expect(Object.isFrozen(c.merchants[0])).toBe(true);
  });

  it('When a config file uses ${VAR} and ${VAR:-default}, then they are read from the environment', () => {
    const file = writeConfig('ok.yaml', VALID);
    const c = loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY, WX_SECRET: 'from-env-secret' } });
    expect(c.mode).toBe('production');
    expect(c.officialAccounts[0]!.appSecret).toBe('from-env-secret');
    expect(c.merchants[0]!.clients[0]!.clientSecret).toBe('fallback-secret');
    expect(c.wechat.apiBaseUrl).toBe('https://api.weixin.qq.com');
    expect(c.sandbox.enabled).toBe(false);
    expect(c.merchants[0]!.binding).toEqual({ maxAccountsPerUser: 5, exclusive: true });
  });

  it('When env and file have several problems, then one error lists every one with where it is', () => {
    const file = writeConfig(
      'bad.yaml',
      VALID.replace('appId: wx1234567890abcdef', 'appId: nope').replace('officialAccount: demo', 'officialAccount: ghost').replace('type: binding-code', 'type: carrier-pigeon'),
    );
    const p = problems(() => loadConfig({ env: { BRIDGE_CONFIG: file, PORT: 'eighty', ROLE: 'boss', REDIS_URL: 'http://x' } }));
    const text = p.join('\n');
    expect(text).toContain('env PORT');
    expect(text).toContain('env ROLE');
    expect(text).toContain('env REDIS_URL');
    expect(text).toContain('env BRIDGE_SECRET_KEY');
    expect(text).toContain(`${file}: officialAccounts[0].appSecret: environment variable WX_SECRET is not set`);
    expect(text).toContain(`${file}: officialAccounts[0].appId`);
    expect(text).toContain(`${file}: merchants[0].linking[0]`);
    expect(p.length).toBeGreaterThanOrEqual(7);
  });

  it('When a merchant names an unknown official account or clientIds repeat, then cross-references are reported', () => {
    const file = writeConfig(
      'xref.yaml',
      VALID.replace('officialAccount: demo', 'officialAccount: ghost') +
        `      - clientId: card-backend\n        clientSecret: another-secret\n        grantTypes: [authorization_code]\n`,
    );
    const text = problems(() => loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY, WX_SECRET: 'x'.repeat(10) } })).join('\n');
    expect(text).toContain("merchants[0].officialAccount: unknown official account 'ghost'");
    expect(text).toContain("merchants[0].clients[1].clientId: duplicate clientId 'card-backend'");
    expect(text).toContain('merchants[0].clients[1].redirectUris: authorization_code needs at least one redirect URI');
  });

  it('When a redirect URI has a fragment or credentials, then start-up lists each one (RFC 6749 §3.1.2)', () => {
    const file = writeConfig(
      'redirects.yaml',
      VALID +
        `      - clientId: card-h5\n        clientSecret: another-secret\n        grantTypes: [authorization_code]\n` +
        `        redirectUris: ['https://h5.card.example/cb#frag', 'https://user:pw@h5.card.example/cb', 'https://h5.card.example/ok', 'ftp://h5.card.example/cb']\n`,
    );
    const text = problems(() => loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY, WX_SECRET: 'x'.repeat(10) } })).join('\n');
    expect(text).toContain('merchants[0].clients[1].redirectUris[0]: no fragment or credentials allowed');
    expect(text).toContain('merchants[0].clients[1].redirectUris[1]: no fragment or credentials allowed');
    expect(text).not.toContain('redirectUris[2]');
    expect(text).toContain('merchants[0].clients[1].redirectUris[3]: must be https');
  });

  it('When the config file is missing or not YAML, then that is the reported problem', () => {
    expect(problems(() => loadConfig({ env: { BRIDGE_CONFIG: join(dir, 'absent.yaml'), BRIDGE_SECRET_KEY: KEY } })).join()).toContain('cannot read');
    const bad = writeConfig('broken.yaml', 'officialAccounts: [\n');
    expect(problems(() => loadConfig({ env: { BRIDGE_CONFIG: bad, BRIDGE_SECRET_KEY: KEY } })).join()).toContain('not valid YAML');
  });

  it('When a JSON config is given, then it is read as JSON', () => {
    const file = writeConfig('c.json', JSON.stringify({ officialAccounts: [], merchants: [] }));
    const text = problems(() => loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY } })).join('\n');
    expect(text).toContain('officialAccounts');
  });

  it('When the secret key is malformed, then start-up is refused', () => {
    expect(problems(() => loadConfig({ env: { BRIDGE_SECRET_KEY: 'short' } })).join()).toContain('env BRIDGE_SECRET_KEY');
  });
});

describe('interpolation', () => {
  it('When DESIGN.md-style ${VAR} sits inside a YAML flow map, then it parses and is filled in', () => {
    const file = writeConfig('flow.yaml', VALID.replace('      - type: binding-code', '      - type: binding-code\n    webhook: { url: https://h.example/x, secret: ${HOOK_SECRET} }'));
    const c = loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY, WX_SECRET: 'x'.repeat(10), HOOK_SECRET: 'hook-secret-1' } });
    expect(c.merchants[0]!.webhook?.secret).toBe('hook-secret-1');
  });

  it('When an environment value itself contains ${…}, then it is taken literally, not expanded again', () => {
    const file = writeConfig('literal.yaml', VALID);
    const c = loadConfig({ env: { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: KEY, WX_SECRET: 'a${HOME}b-secret', HOME: '/root' } });
    expect(c.officialAccounts[0]!.appSecret).toBe('a${HOME}b-secret');
  });
});
