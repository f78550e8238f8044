/**
 * GET /api/v1/openapi.json: the merchant API's OpenAPI 3.1 document, public, built once
 * and served from memory with an ETag.
 */
import Router from '@koa/router';
import type { Feature } from '../http/feature.ts';
import { cachedJson } from '../oauth/discovery.ts';
import { serveDocument } from '../http/precomputed.ts';
import { publicJson } from '../oauth/discovery.routes.ts';
import { openApiDocument } from './openapi.ts';

export function createApiDocsFeature(deps: { config: { publicUrl: string } }): Feature {
  const doc = publicJson('public, max-age=300')(cachedJson(openApiDocument(deps.config.publicUrl)));
  const router = new Router();
  router.get('/api/v1/openapi.json', (ctx) => serveDocument(ctx, doc));
  return { name: 'api-docs', routes: router };
}
