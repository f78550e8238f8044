/**
 * The declarative config file (DESIGN.md "Declarative config"). Names are a contract
 * with operators: extend, never rename. Cross-references (a merchant's official
 * account, unique ids) are checked after the shape, and every problem is reported.
 */
import { z } from 'zod';
import { redirectUriProblem } from '../security/redirect-uri.ts';

const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be a lowercase slug (a-z, 0-9, -), at most 40 characters');
const secret = z.string().min(8, 'must be at least 8 characters');
const url = z.string().url();

export const officialAccountSchema = z
  .object({
    id: slug,
    appId: z.string().regex(/^wx[0-9a-zA-Z]{16}$/, 'must look like wx followed by 16 characters'),
    appSecret: secret,
    token: z.string().regex(/^[A-Za-z0-9]{3,32}$/, 'must be 3–32 letters or digits (WeChat rule)'),
    encodingAesKey: z.string().regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 letters or digits').optional(),
    /** The key before the last regeneration in the MP console; tried second when decrypting. */
    previousEncodingAesKey: z.string().regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 letters or digits').optional(),
    originalId: z.string().regex(/^gh_[0-9a-zA-Z]{6,}$/, 'must look like gh_0123456789ab'),
    /** stable_token (default) or the classic cgi-bin/token. */
    tokenMethod: z.enum(['stable', 'classic']).default('stable'),
    /** Open Platform website app, for QR login outside WeChat's browser. */
    websiteApp: z.object({ appId: z.string().regex(/^wx[0-9a-zA-Z]{16}$/), appSecret: secret }).strict().optional(),
    /** Customer-service window quotas (wechat-protocol.md §3.2, §13.1: configurable). */
    csWindow: z
      .object({
        messageQuota: z.number().int().min(1).default(5),
        messageWindowHours: z.number().min(1).default(48),
        eventQuota: z.number().int().min(1).default(3),
        eventWindowSeconds: z.number().int().min(1).default(60),
      })
      .strict()
      .default({ messageQuota: 5, messageWindowHours: 48, eventQuota: 3, eventWindowSeconds: 60 }),
  })
  .strict();

const oidcLinking = z
  .object({
    type: z.literal('oidc'),
    label: z.string().optional(),
    issuer: url,
    clientId: z.string().min(1),
    clientSecret: z.string().min(1),
    scope: z.string().default('openid'),
    accountClaim: z.string().default('sub'),
    displayClaim: z.string().optional(),
  })
  .strict();

const verifyApiLinking = z
  .object({
    type: z.literal('verify-api'),
    label: z.string().optional(),
    url,
    secret,
    timeoutMs: z.number().int().min(100).max(10_000).default(3000),
    maxFailedAttempts: z.number().int().min(1).default(5),
  })
  .strict();

const bindingCodeLinking = z
  .object({
    type: z.literal('binding-code'),
    label: z.string().optional(),
    ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(900),
  })
  .strict();

export const linkingMethodSchema = z.discriminatedUnion('type', [oidcLinking, verifyApiLinking, bindingCodeLinking]);

const grantType = z.enum(['authorization_code', 'refresh_token', 'client_credentials']);
export const merchantScopes = ['notices:send', 'bindings:read', 'bindings:write', 'binding-codes:write', 'tags:write'] as const;

export const clientSchema = z
  .object({
    clientId: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, 'must be 3–64 characters of A-Z a-z 0-9 . _ -'),
    clientSecret: secret.optional(),
    /** private_key_jwt: the client's public keys. */
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).optional(),
    redirectUris: z
      .array(
        z.string().superRefine((u, ctx) => {
          const problem = redirectUriProblem(u, { requireHttps: false });
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .default([]),
    grantTypes: z.array(grantType).min(1),
    scopes: z.array(z.string()).default([]),
    /** Access-token lifetime in seconds (DESIGN: 10 min default). */
    accessTokenTtl: z.number().int().min(60).max(3600).default(600),
  })
  .strict();

export const merchantSchema = z
  .object({
    id: slug,
    name: z.string().min(1),
    officialAccount: slug,
    profile: z.enum(['base', 'userinfo']).default('base'),
    /** Put openid/unionid in this merchant's tokens (DESIGN "Tokens"). */
    exposeWeChatIds: z.boolean().default(false),
    binding: z
      .object({ maxAccountsPerUser: z.number().int().min(1).max(100).default(5), exclusive: z.boolean().default(true) })
      .strict()
      .default({ maxAccountsPerUser: 5, exclusive: true }),
    linking: z.array(linkingMethodSchema).min(1),
    clients: z.array(clientSchema).default([]),
    webhook: z.object({ url, secret }).strict().optional(),
    intents: z
      .object({
        url,
        secret: secret.optional(),
        timeoutMs: z.number().int().min(100).max(4500).default(3000),
        keywords: z.record(z.string(), z.string()).default({}),
        menuKeys: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .optional(),
    notices: z
      .object({
        channel: z.enum(['auto', 'template', 'customer-service']).default('auto'),
        templates: z
          .record(z.string(), z.object({ templateId: z.string().min(1), fields: z.record(z.string(), z.string()) }).strict())
          .default({}),
        quietHours: z
          .object({
            start: z.string().regex(/^\d{2}:\d{2}$/),
            end: z.string().regex(/^\d{2}:\d{2}$/),
            timeZone: z.string().default('Asia/Shanghai'),
          })
          .strict()
          .optional(),
        perUserDailyCap: z.number().int().min(1).optional(),
      })
      .strict()
      .default({ channel: 'auto', templates: {} }),
  })
  .strict();

/**
 * Admin single sign-on through the company's OpenID Provider (issue 8). Who gets which
 * role is decided here, never by default: a `roleClaim` value listed in `roles`, else
 * `defaultRole` (viewer or operator only, never admin), else the sign-in is refused.
 * Without `roleClaim` and `defaultRole`, only emails an admin added as accounts get in.
 */
export const adminSsoSchema = z
  .object({
    issuer: url,
    clientId: z.string().min(1),
    clientSecret: z.string().min(1),
    /** Shown on the sign-in button. */
    label: z.string().min(1).max(40).optional(),
    scope: z.string().default('openid email'),
    /** The ID-token claim that names the admin (matched to the account's email). */
    accountClaim: z.string().min(1).default('email'),
    /** When set, the email's domain must be one of these. */
    allowedDomains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'must be a lowercase domain name')).default([]),
    /** An ID-token claim (string or array of strings) whose values map to roles through `roles`. */
    roleClaim: z.string().min(1).optional(),
    roles: z.record(z.string(), z.enum(['viewer', 'operator', 'admin'])).default({}),
    defaultRole: z.enum(['viewer', 'operator']).optional(),
    /** An ID-token claim naming the one merchant the admin is scoped to (absent: every merchant). */
    merchantClaim: z.string().min(1).optional(),
  })
  .strict();

/**
 * Where requests to merchant-configured URLs may go (src/security/outbound.ts, SSRF): public
 * addresses only, unless private networks are allowed (merchant backends on the operator's own
 * network) or the host is listed. Demo mode allows private networks (the demo bank is local).
 */
export const outboundSchema = z
  .object({
    allowPrivateNetworks: z.boolean().default(false),
    allowHosts: z.array(z.string().regex(/^[A-Za-z0-9.:[\]-]{1,253}$/, 'must be a host name or an IP address')).default([]),
  })
  .strict();

export const fileConfigSchema = z
  .object({
    officialAccounts: z.array(officialAccountSchema).min(1),
    merchants: z.array(merchantSchema).min(1),
    admin: z.object({ sso: adminSsoSchema.optional() }).strict().optional(),
    outbound: outboundSchema.default({ allowPrivateNetworks: false, allowHosts: [] }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const dup = (items: string[], path: (i: number) => (string | number)[], what: string) => {
      const seen = new Map<string, number>();
      items.forEach((v, i) => {
        if (seen.has(v)) ctx.addIssue({ code: 'custom', path: path(i), message: `duplicate ${what} '${v}'` });
        else seen.set(v, i);
      });
    };
    dup(cfg.officialAccounts.map((a) => a.id), (i) => ['officialAccounts', i, 'id'], 'official account id');
    dup(cfg.officialAccounts.map((a) => a.appId), (i) => ['officialAccounts', i, 'appId'], 'appId');
    dup(cfg.merchants.map((m) => m.id), (i) => ['merchants', i, 'id'], 'merchant id');
    const accounts = new Set(cfg.officialAccounts.map((a) => a.id));
    const clientIds = new Set<string>();
    cfg.merchants.forEach((m, i) => {
      if (!accounts.has(m.officialAccount))
        ctx.addIssue({ code: 'custom', path: ['merchants', i, 'officialAccount'], message: `unknown official account '${m.officialAccount}'` });
      m.clients.forEach((c, j) => {
        const path = ['merchants', i, 'clients', j];
        if (clientIds.has(c.clientId)) ctx.addIssue({ code: 'custom', path: [...path, 'clientId'], message: `duplicate clientId '${c.clientId}'` });
        clientIds.add(c.clientId);
        if (!c.clientSecret && !c.jwks) ctx.addIssue({ code: 'custom', path, message: 'needs clientSecret or jwks' });
        if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0)
          ctx.addIssue({ code: 'custom', path: [...path, 'redirectUris'], message: 'authorization_code needs at least one redirect URI' });
        for (const s of c.scopes)
          if (!(merchantScopes as readonly string[]).includes(s) && !['openid', 'profile', 'offline_access'].includes(s))
            ctx.addIssue({ code: 'custom', path: [...path, 'scopes'], message: `unknown scope '${s}'` });
      });
      const types = m.linking.map((l) => l.type);
      dup(types, (j) => ['merchants', i, 'linking', j, 'type'], 'linking method');
    });
  });

export type FileConfig = z.infer<typeof fileConfigSchema>;
export type OfficialAccountConfig = z.infer<typeof officialAccountSchema>;
export type MerchantConfig = z.infer<typeof merchantSchema>;
export type ClientConfig = z.infer<typeof clientSchema>;
export type LinkingMethodConfig = z.infer<typeof linkingMethodSchema>;
export type AdminSsoConfig = z.infer<typeof adminSsoSchema>;
export type OutboundConfig = z.infer<typeof outboundSchema>;
