/**
 * The comparison for the login flow: node-oidc-provider's minimal authorization-code
 * flow (PKCE, ES256 ID token, in-memory adapter), with an interaction that logs the
 * user in and grants consent at once, so only the protocol work is measured.
 */
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 3903);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-bench-secret',
      redirect_uris: ['http://127.0.0.1/cb'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
  findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
  jwks: { keys: [await (await import('jose')).exportJWK((await (await import('jose')).generateKeyPair('ES256', { extractable: true })).privateKey).then((k) => ({ ...k, kid: 'k1', alg: 'ES256', use: 'sig' }))] },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
});
provider.proxy = false;

const handler = provider.callback();
createServer(async (req, res) => {
  if (req.url?.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: 'user-1', clientId: String(details.params.client_id) });
    grant.addOIDCScope('openid');
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId: 'user-1' }, consent: { grantId } }, { mergeWithLastSubmission: false });
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => console.log('ready'));
