/**
 * The embedded demo configuration: what `npm start` runs with nothing configured.
 * Every URL points back at this process: the sandbox stands in for WeChat, and the
 * demo merchant system (`src/demo`) plays the bank's verify API, intents endpoint,
 * webhook receiver, OIDC login and H5 app. The secrets here protect nothing real:
 * demo mode never talks to WeChat.
 */
export const DEMO_ACCOUNT = {
  id: 'demo',
  appId: 'wx1234567890abcdef',
  appSecret: 'demo-app-secret-0123456789abcdef',
  token: 'bridgeToken2024',
  encodingAesKey: 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA',
  originalId: 'gh_0123456789ab',
} as const;

export const DEMO_SECRETS = {
  cardH5: 'demo-card-h5-secret',
  cardBackend: 'demo-card-backend-secret',
  verify: 'demo-verify-api-secret',
  webhook: 'demo-webhook-secret',
  oidc: 'demo-oidc-client-secret',
  powerBackend: 'demo-power-backend-secret',
} as const;

export function demoFileConfig(publicUrl: string): unknown {
  const merchantBase = `${publicUrl}/demo/merchant`;
  return {
    officialAccounts: [{ ...DEMO_ACCOUNT }],
    merchants: [
      {
        id: 'card',
        name: '信用卡中心',
        officialAccount: 'demo',
        profile: 'userinfo',
        binding: { maxAccountsPerUser: 5, exclusive: true },
        linking: [
          { type: 'verify-api', url: `${merchantBase}/card/verify`, secret: DEMO_SECRETS.verify },
          {
            type: 'oidc',
            issuer: `${publicUrl}/demo/idp`,
            clientId: 'wxbridge',
            clientSecret: DEMO_SECRETS.oidc,
            scope: 'openid',
            accountClaim: 'sub',
            displayClaim: 'card_masked',
          },
          { type: 'binding-code' },
        ],
        clients: [
          {
            clientId: 'card-h5',
            clientSecret: DEMO_SECRETS.cardH5,
            redirectUris: [`${publicUrl}/demo/app/callback`],
            grantTypes: ['authorization_code', 'refresh_token'],
            scopes: ['openid', 'profile', 'offline_access'],
          },
          {
            clientId: 'card-backend',
            clientSecret: DEMO_SECRETS.cardBackend,
            grantTypes: ['client_credentials'],
            scopes: ['notices:send', 'bindings:read', 'bindings:write', 'binding-codes:write', 'tags:write'],
          },
        ],
        webhook: { url: `${merchantBase}/card/webhooks`, secret: DEMO_SECRETS.webhook },
        intents: {
          url: `${merchantBase}/card/intents`,
          keywords: { 余额: 'balance', 账单: 'bill', balance: 'balance', bill: 'bill' },
          menuKeys: { MY_BILL: 'bill', MY_BALANCE: 'balance' },
        },
        notices: {
          channel: 'auto',
          templates: {
            payment_posted: {
              templateId: 'ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY',
              fields: { thing1: 'merchant', amount2: 'amount', time3: 'time' },
            },
          },
        },
      },
      {
        id: 'power',
        name: '城市电力',
        officialAccount: 'demo',
        profile: 'base',
        binding: { maxAccountsPerUser: 3, exclusive: false },
        linking: [{ type: 'verify-api', url: `${merchantBase}/power/verify`, secret: DEMO_SECRETS.verify }, { type: 'binding-code' }],
        clients: [
          {
            clientId: 'power-backend',
            clientSecret: DEMO_SECRETS.powerBackend,
            grantTypes: ['client_credentials'],
            scopes: ['notices:send', 'bindings:read', 'bindings:write', 'binding-codes:write'],
          },
        ],
      },
    ],
    // The demo merchant system runs in this process, on this machine's own address.
    outbound: { allowPrivateNetworks: true },
  };
}
