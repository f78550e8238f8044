import { describe, expect, it } from 'vitest';
import { changes, flattenDoc, insecureUrls, refusedUrls } from './config-overlay.service.ts';

describe('config overlay: audit before/after and endpoint rules', () => {
  it('When a document changes, then only the changed fields are recorded and secrets only as set / replaced / not set', () => {
    const before = { id: 'm', name: 'A', webhook: { url: 'https://a', secret: 'old-secret-1' }, linking: [{ type: 'verify-api', url: 'https://v', secret: 'vs-1' }], clients: [{ clientId: 'c', clientSecret: 'cs-1' }] };
    const after = { id: 'm', name: 'B', webhook: { url: 'https://a', secret: 'new-secret-2' }, linking: [{ type: 'verify-api', url: 'https://v', secret: 'vs-1' }, { type: 'oidc', issuer: 'https://i', clientId: 'x', clientSecret: 'os-1' }] };
    const c = changes('merchant', before, after);
    expect(c.before).toEqual({ name: 'A', 'linking.oidc.type': null, 'linking.oidc.issuer': null, 'linking.oidc.clientId': null, 'webhook.secret': 'set', 'linking.oidc.clientSecret': 'not set' });
    expect(c.after).toEqual({ name: 'B', 'linking.oidc.type': 'oidc', 'linking.oidc.issuer': 'https://i', 'linking.oidc.clientId': 'x', 'webhook.secret': 'replaced', 'linking.oidc.clientSecret': 'set' });
    expect(JSON.stringify(c)).not.toMatch(/secret-1|secret-2|vs-1|os-1|cs-1/);
  });

  it('When a document is flattened, then scalar lists are joined and linking methods keyed by type', () => {
    expect(flattenDoc({ a: { b: [1, 2] }, linking: [{ type: 'oidc', scope: 'openid' }], n: null })).toEqual({ 'a.b': '1 2', 'linking.oidc.type': 'oidc', 'linking.oidc.scope': 'openid', n: null });
  });

  it('When a merchant’s endpoints are not https, then each is named', () => {
    expect(insecureUrls({ webhook: { url: 'http://10.0.0.1/x' }, linking: [{ type: 'verify-api', url: 'https://ok' }, { type: 'oidc', issuer: 'http://idp' }, { type: 'binding-code' }] })).toEqual([
      'webhook.url: must be https',
      'linking.oidc.issuer: must be https',
    ]);
  });

  it('When a merchant endpoint points at a private address (literal, or a name resolving to one), then the save names the field; allowed settings let it through', async () => {
    const deny = { allowPrivateNetworks: false, allowHosts: [] };
    const dns: Record<string, string[]> = { 'hooks.bank.example': ['203.0.114.7'], 'rebind.example': ['203.0.114.8', '10.0.0.9'] };
    const resolve = async (host: string) => (dns[host] ?? []).map((address) => ({ address }));
    const doc = {
      webhook: { url: 'https://169.254.169.254/latest/meta-data' },
      intents: { url: 'https://rebind.example/intents' },
      linking: [{ type: 'verify-api', url: 'https://hooks.bank.example/verify' }, { type: 'oidc', issuer: 'https://unknown.example' }],
    };
    expect(await refusedUrls(doc, deny, resolve)).toEqual([
      'webhook.url: 169.254.169.254 is not a public address (outbound.allowPrivateNetworks or outbound.allowHosts)',
      'intents.url: rebind.example resolves to 10.0.0.9, not a public address (outbound.allowPrivateNetworks or outbound.allowHosts)',
    ]);
    expect(await refusedUrls(doc, { allowPrivateNetworks: true, allowHosts: [] }, resolve)).toEqual([]);
    expect(await refusedUrls(doc, { allowPrivateNetworks: false, allowHosts: ['169.254.169.254', 'Rebind.Example'] }, resolve)).toEqual([]);
  });
});
