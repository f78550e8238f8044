/**
 * The demo merchant's verify API, `POST /demo/merchant/:merchant/verify` (DESIGN.md
 * "Linking protocols", `verify-api`): it checks the Standard Webhooks signature with the
 * secret configured for that merchant, exactly as a real merchant must, then answers from
 * the demo bank.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { MerchantConfig } from '../config/index.ts';
import { readRawBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { webhookSigner } from '../linking/verify-api.connector.ts';
import type { DemoVerifier } from './demo-bank.ts';

const requestSchema = z
  .object({ step: z.enum(['start', 'continue']), attempt: z.string().min(1).max(64), fields: z.record(z.string(), z.string().max(128)) })
  .strict();

export function createDemoVerifyRoutes(deps: { merchant: (id: string) => MerchantConfig | undefined; verifier: DemoVerifier }): Router {
  const router = new Router();
  router.post('/demo/merchant/:merchant/verify', async (ctx) => {
    const method = deps.merchant(ctx.params.merchant ?? '')?.linking.find((l) => l.type === 'verify-api');
    if (!method || method.type !== 'verify-api') throw new AppError('request.not_found');
    const raw = await readRawBody(ctx, 16 * 1024);
    try {
      // Checks the HMAC in constant time and the timestamp within 5 minutes (SECURITY.md A9).
      webhookSigner(method.secret).verify(raw.toString('utf8'), {
        'webhook-id': ctx.get('webhook-id'),
        'webhook-timestamp': ctx.get('webhook-timestamp'),
        'webhook-signature': ctx.get('webhook-signature'),
      });
    } catch {
      throw new AppError('request.unauthenticated', 'bad signature');
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new AppError('request.invalid', 'body is not JSON');
    }
    const req = parseInput(requestSchema, body);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = deps.verifier.answer(ctx.params.merchant ?? '', req);
  });
  return router;
}
