import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.ts';

describe('docs/wxbridge.example.yaml', () => {
  it('When the documented example is loaded with its variables set, then it is a valid configuration', () => {
    const file = fileURLToPath(new URL('../../docs/wxbridge.example.yaml', import.meta.url));
    const env: Record<string, string> = { BRIDGE_CONFIG: file, BRIDGE_SECRET_KEY: 'cd'.repeat(32) };
    for (const v of ['WX_DEMO_SECRET', 'BANK_OIDC_SECRET', 'CARD_VERIFY_SECRET', 'CARD_H5_SECRET', 'CARD_BACKEND_SECRET', 'CARD_WEBHOOK_SECRET'])
      env[v] = `${v.toLowerCase()}-value`;
    const c = loadConfig({ env });
    expect(c.merchants[0]!.linking.map((l) => l.type)).toEqual(['oidc', 'verify-api', 'binding-code']);
    expect(c.merchants[0]!.notices.quietHours?.timeZone).toBe('Asia/Shanghai');
  });
});
