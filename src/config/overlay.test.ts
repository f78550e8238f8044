import { describe, expect, it } from 'vitest';
import { createLiveConfig, joinSecrets, secretsSet, splitSecrets } from './overlay.ts';
import type { AppConfig } from './load.ts';

describe('config overlay documents', () => {
  it('When a merchant is split, then every secret leaves the plain document (linking methods by type) and joins back the same', () => {
    const doc = {
      id: 'm',
      linking: [
        { type: 'verify-api', url: 'https://x', secret: 'v-secret-1' },
        { type: 'oidc', issuer: 'https://i', clientId: 'c', clientSecret: 'o-secret-1' },
        { type: 'binding-code' },
      ],
      webhook: { url: 'https://h', secret: 'w-secret-1' },
      intents: { url: 'https://n' },
    };
    const { plain, secrets } = splitSecrets('merchant', doc);
    expect(secrets).toEqual({ 'linking.oidc.clientSecret': 'o-secret-1', 'linking.verify-api.secret': 'v-secret-1', 'webhook.secret': 'w-secret-1' });
    expect(JSON.stringify(plain)).not.toMatch(/secret-1/);
    expect(joinSecrets('merchant', plain, secrets)).toEqual(doc);
    expect(doc.webhook.secret).toBe('w-secret-1');
  });

  it('When an official account is split, then AppSecret, token, both AES keys and the website app secret are the secrets', () => {
    const doc = { id: 'a', appId: 'wx0123456789abcdef', appSecret: 's1', token: 't1', encodingAesKey: 'k1', previousEncodingAesKey: 'k0', websiteApp: { appId: 'wx1123456789abcdef', appSecret: 's2' } };
    const { plain, secrets } = splitSecrets('official_account', doc);
    expect(plain).toEqual({ id: 'a', appId: 'wx0123456789abcdef', websiteApp: { appId: 'wx1123456789abcdef' } });
    expect([...secretsSet('official_account', doc)].sort()).toEqual(['appSecret', 'encodingAesKey', 'previousEncodingAesKey', 'token', 'websiteApp.appSecret']);
    expect(joinSecrets('official_account', plain, secrets)).toEqual(doc);
  });

  it('When the live config changes, then the same arrays hold the new items and listeners hear of it; the base config is untouched', () => {
    const base = Object.freeze({ publicUrl: 'x', merchants: Object.freeze([{ id: 'a' }]), officialAccounts: Object.freeze([]) }) as unknown as AppConfig;
    const live = createLiveConfig(base);
    const held = live.config.merchants;
    const heard: string[][] = [];
    live.onChange((items) => heard.push(items.merchants.map((m) => m.id)));
    live.apply({ merchants: [{ id: 'a' }, { id: 'b' }] as never, officialAccounts: [] });
    expect(held.map((m) => m.id)).toEqual(['a', 'b']);
    expect(heard).toEqual([['a', 'b']]);
    expect(base.merchants.map((m) => m.id)).toEqual(['a']);
    expect(Object.isFrozen(live.config)).toBe(true);
  });
});
