import { describe, expect, it } from 'vitest';
import { changes, flattenDoc, insecureUrls } from './config-overlay.service.ts';

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
});
