/**
 * The merchant API as an OpenAPI 3.1 document (DESIGN.md "Merchant API"), served at
 * /api/v1/openapi.json. It is the contract merchants code against: the API's tests
 * validate real responses against these schemas, so the document cannot drift from the
 * code unnoticed. Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect).
 */
import type { merchantScopes } from '../config/schema.ts';

type Schema = Record<string, unknown>;
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: 'null' }] });
const json = (schema: Schema, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/E${s}` }]));

const scopeDescriptions: Record<(typeof merchantScopes)[number], string> = {
  'notices:send': 'send notices and read their status',
  'bindings:read': 'list bindings',
  'bindings:write': 'revoke bindings',
  'binding-codes:write': 'create binding codes',
  'tags:write': 'tag users',
};

const schemas: Record<string, Schema> = {
  Error: {
    type: 'object',
    required: ['error', 'error_description'],
    properties: { error: str({ description: 'stable code, e.g. invalid_token, request.invalid, linking.not_found' }), error_description: str() },
    additionalProperties: false,
  },
  Binding: {
    type: 'object',
    required: ['id', 'account', 'accountDisplay', 'sub', 'status', 'isDefault', 'proof', 'provenAt', 'createdAt', 'revokedAt', 'revokeReason'],
    properties: {
      id: str({ format: 'uuid' }),
      account: str({ description: "the merchant's account id" }),
      accountDisplay: nullable(str({ description: 'masked, for display' })),
      sub: str({ description: 'the pairwise subject of the WeChat user at this merchant (the `sub` of its tokens)' }),
      status: { enum: ['active', 'revoked'] },
      isDefault: { type: 'boolean' },
      proof: { enum: ['oidc', 'verify-api', 'binding-code', 'admin', 'import'] },
      provenAt: str({ format: 'date-time' }),
      createdAt: str({ format: 'date-time' }),
      revokedAt: nullable(str({ format: 'date-time' })),
      revokeReason: nullable(str()),
    },
    additionalProperties: false,
  },
  BindingList: { type: 'object', required: ['bindings'], properties: { bindings: { type: 'array', items: ref('Binding') } }, additionalProperties: false },
  BindingEnvelope: { type: 'object', required: ['binding'], properties: { binding: ref('Binding') }, additionalProperties: false },
  Tags: {
    type: 'object',
    required: ['tags'],
    properties: {
      tags: {
        type: 'array',
        maxItems: 20,
        uniqueItems: true,
        items: str({ pattern: '^[\\p{L}\\p{N}_.-]{1,32}$', description: 'letters, digits, _ . - (1–32)' }),
        description: "this merchant's tags on the user (other merchants' are neither shown nor changed); a notice may target a tag",
      },
    },
    additionalProperties: false,
  },
  TaggedUser: {
    type: 'object',
    required: ['sub', 'tags'],
    properties: { sub: str(), tags: { type: 'array', items: str() } },
    additionalProperties: false,
  },
  RevokeRequest: { type: 'object', required: ['reason'], properties: { reason: str({ minLength: 1, maxLength: 200 }) }, additionalProperties: false },
  BindingCodeRequest: {
    type: 'object',
    required: ['account'],
    properties: {
      account: str({ minLength: 1, maxLength: 128 }),
      display: nullable(str({ maxLength: 64 })),
      expiresIn: { type: 'integer', minimum: 60, maximum: 2592000, description: 'seconds; default from the merchant config' },
      qr: { type: 'boolean', description: 'also make a WeChat parametric QR code that binds on scan' },
    },
    additionalProperties: false,
  },
  BindingCode: {
    type: 'object',
    required: ['code', 'url', 'expiresAt'],
    properties: { code: str(), url: str({ format: 'uri' }), qrUrl: str({ format: 'uri' }), expiresAt: str({ format: 'date-time' }) },
    additionalProperties: false,
  },
  Recipient: {
    oneOf: [
      { type: 'object', required: ['account'], properties: { account: str({ minLength: 1, maxLength: 128 }) }, additionalProperties: false },
      { type: 'object', required: ['binding'], properties: { binding: str({ format: 'uuid' }) }, additionalProperties: false },
      { type: 'object', required: ['sub'], properties: { sub: str({ minLength: 1, maxLength: 128 }) }, additionalProperties: false },
      { type: 'object', required: ['tag'], properties: { tag: str({ minLength: 1, maxLength: 64 }) }, additionalProperties: false },
      { type: 'object', required: ['segment'], properties: { segment: { enum: ['all', 'subscribed'] } }, additionalProperties: false },
    ],
  },
  NoticeRequest: {
    type: 'object',
    required: ['to'],
    properties: {
      to: ref('Recipient'),
      template: str({ minLength: 1, maxLength: 64, description: "a template name of the merchant's config" }),
      data: { type: 'object', additionalProperties: { anyOf: [str({ maxLength: 200 }), { type: 'number' }] }, maxProperties: 20 },
      url: str({ format: 'uri', maxLength: 1024 }),
      channel: { enum: ['auto', 'template', 'customer-service'], default: 'auto' },
      text: str({ minLength: 1, maxLength: 600, description: 'the customer-service message text' }),
    },
    additionalProperties: false,
  },
  DeliveryRef: {
    type: 'object',
    required: ['id', 'bindingId', 'account'],
    properties: { id: str({ format: 'uuid' }), bindingId: nullable(str({ format: 'uuid' })), account: nullable(str()) },
    additionalProperties: false,
  },
  NoticeAccepted: {
    type: 'object',
    required: ['id', 'createdAt', 'deliveries'],
    properties: { id: str({ format: 'uuid' }), createdAt: str({ format: 'date-time' }), deliveries: { type: 'array', items: ref('DeliveryRef') } },
    additionalProperties: false,
  },
  Delivery: {
    type: 'object',
    required: ['id', 'bindingId', 'account', 'status', 'channel', 'attempts', 'errcode', 'error', 'sentAt', 'finishedAt'],
    properties: {
      id: str({ format: 'uuid' }),
      bindingId: nullable(str({ format: 'uuid' })),
      account: nullable(str()),
      status: { enum: ['queued', 'sending', 'sent', 'delivered', 'failed', 'unknown'] },
      channel: nullable({ enum: ['template', 'customer-service'] }),
      attempts: { type: 'integer', minimum: 0 },
      errcode: nullable({ type: 'integer', description: 'the WeChat errcode, where there is one' }),
      error: nullable(str()),
      sentAt: nullable(str({ format: 'date-time' })),
      finishedAt: nullable(str({ format: 'date-time' })),
    },
    additionalProperties: false,
  },
  Notice: {
    type: 'object',
    required: ['id', 'template', 'channel', 'createdAt', 'counts', 'deliveries', 'next'],
    properties: {
      id: str({ format: 'uuid' }),
      template: nullable(str()),
      channel: { enum: ['auto', 'template', 'customer-service'] },
      createdAt: str({ format: 'date-time' }),
      counts: { type: 'object', additionalProperties: { type: 'integer' } },
      deliveries: { type: 'array', items: ref('Delivery') },
      next: nullable(str({ format: 'uuid', description: 'cursor for the next page (`?after=`)' })),
    },
    additionalProperties: false,
  },
};

const errorText: Record<number, string> = {
  400: 'invalid request (error `request.invalid`; RFC 6750 `invalid_request`, with WWW-Authenticate, for an access token sent in the URL)',
  401: 'missing, invalid, expired or revoked access token (RFC 6750 `invalid_token`, with WWW-Authenticate)',
  403: 'the token lacks the scope this call needs (RFC 6750 `insufficient_scope`)',
  404: 'no such object for this merchant: another merchant’s ids look exactly like unknown ones',
  409: 'conflicts with the current state (e.g. the Idempotency-Key was used with another body)',
  422: 'nobody to deliver to',
};

const bearer = (scope: string) => [{ merchantToken: [scope] }];

export function openApiDocument(publicUrl: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'wxbridge merchant API',
      version: '1',
      description:
        'Called by merchant backends with a Bearer access token from the client_credentials grant of /oauth2/token. A merchant only ever sees its own objects. Errors are JSON `{error, error_description}`.',
    },
    servers: [{ url: publicUrl }],
    components: {
      securitySchemes: {
        merchantToken: {
          type: 'oauth2',
          description: 'An RFC 9068 at+jwt from the client_credentials grant; scopes as configured for the client.',
          flows: { clientCredentials: { tokenUrl: `${publicUrl}/oauth2/token`, scopes: scopeDescriptions } },
        },
      },
      schemas,
      responses: Object.fromEntries(Object.entries(errorText).map(([s, d]) => [`E${s}`, json(ref('Error'), d)])),
    },
    paths: {
      '/api/v1/bindings': {
        get: {
          operationId: 'listBindings',
          summary: 'Bindings of a merchant account or of a user',
          security: bearer('bindings:read'),
          parameters: [
            { name: 'account', in: 'query', schema: str({ minLength: 1, maxLength: 128 }), description: 'exactly one of account or sub' },
            { name: 'sub', in: 'query', schema: str({ minLength: 1, maxLength: 128 }) },
            { name: 'status', in: 'query', schema: { enum: ['active', 'revoked', 'all'], default: 'all' } },
          ],
          responses: { '200': json(ref('BindingList'), 'the bindings'), ...errors(400, 401, 403) },
        },
      },
      '/api/v1/bindings/{id}/revoke': {
        post: {
          operationId: 'revokeBinding',
          summary: 'Revoke a binding (e.g. the card was cancelled): its refresh tokens stop at once, a binding.revoked webhook follows',
          security: bearer('bindings:write'),
          parameters: [{ name: 'id', in: 'path', required: true, schema: str({ format: 'uuid' }) }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('RevokeRequest') } } },
          responses: { '200': json(ref('BindingEnvelope'), 'the binding, now revoked (idempotent)'), ...errors(400, 401, 403, 404) },
        },
      },
      '/api/v1/binding-codes': {
        post: {
          operationId: 'createBindingCode',
          summary: 'A one-time link (or WeChat QR code) that binds the user who opens it to a merchant account',
          security: bearer('binding-codes:write'),
          requestBody: { required: true, content: { 'application/json': { schema: ref('BindingCodeRequest') } } },
          responses: { '201': json(ref('BindingCode'), 'the code'), ...errors(400, 401, 403) },
        },
      },
      '/api/v1/identities/{sub}/tags': {
        parameters: [{ name: 'sub', in: 'path', required: true, schema: str({ minLength: 1, maxLength: 128 }), description: 'the pairwise subject of the user at this merchant' }],
        get: {
          operationId: 'getTags',
          summary: "This merchant's tags on one of its users",
          security: bearer('tags:write'),
          responses: { '200': json(ref('TaggedUser'), 'the tags'), ...errors(400, 401, 403, 404) },
        },
        put: {
          operationId: 'setTags',
          summary: "Replace this merchant's tags on one of its users (unfollowing clears them)",
          security: bearer('tags:write'),
          requestBody: { required: true, content: { 'application/json': { schema: ref('Tags') } } },
          responses: { '200': json(ref('TaggedUser'), 'the tags now'), ...errors(400, 401, 403, 404) },
        },
      },
      '/api/v1/notices': {
        post: {
          operationId: 'createNotice',
          summary: 'Send a service notice to linked users (template or customer-service message)',
          security: bearer('notices:send'),
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: true, schema: str({ minLength: 1, maxLength: 255 }) }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('NoticeRequest') } } },
          responses: { '202': json(ref('NoticeAccepted'), 'accepted: one delivery per linked user; the same key and body give the same answer'), ...errors(400, 401, 403, 409, 422) },
        },
      },
      '/api/v1/notices/{id}': {
        get: {
          operationId: 'getNotice',
          summary: 'Status of each delivery of a notice',
          security: bearer('notices:send'),
          parameters: [
            { name: 'id', in: 'path', required: true, schema: str({ format: 'uuid' }) },
            { name: 'after', in: 'query', schema: str({ format: 'uuid' }) },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
          ],
          responses: { '200': json(ref('Notice'), 'the notice and its deliveries'), ...errors(400, 401, 403, 404) },
        },
      },
    },
  };
}
