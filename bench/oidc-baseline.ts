/** The node-oidc-provider code flow, driven like the bridge's login flow. */
import { createHash, randomBytes } from 'node:crypto';
import { driveFlows, Jar, location, step, type DriveOptions, type FlowResult } from './lib/flow-driver.ts';

/** One minimal code flow (PKCE S256, state, nonce, scope openid) per call, ending with the token exchange. */
export function oidcProviderFlow(base: string): () => Promise<void> {
  const basic = 'Basic ' + Buffer.from('bench:bench-secret-bench-secret').toString('base64');
  return async () => {
    const jar = new Jar();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({ client_id: 'bench', response_type: 'code', scope: 'openid', redirect_uri: 'http://127.0.0.1/cb', code_challenge: challenge, code_challenge_method: 'S256', state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex') });
    let url = `${base}/auth?${q}`;
    for (let i = 0; i < 6 && !url.startsWith('http://127.0.0.1/cb'); i++) url = location(await step(jar, url), base);
    const code = new URL(url).searchParams.get('code');
    if (!code) throw new Error('no code');
    const tok = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1/cb', code_verifier: verifier }),
    });
    if (tok.status !== 200) throw new Error(`token ${tok.status}`);
    const body = (await tok.json()) as { access_token?: string; id_token?: string };
    if (!body.access_token || !body.id_token) throw new Error('token response without access_token or id_token');
  };
}

export async function runOidcProviderFlow(base: string, opts: DriveOptions): Promise<FlowResult> {
  return driveFlows(oidcProviderFlow(base), opts);
}
