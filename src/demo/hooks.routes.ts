/**
 * The demo merchant's intents endpoint and webhook receiver (DESIGN.md "Intents",
 * "Webhooks"), so the demo journey answers "余额"/"账单" with personalized replies and
 * shows the events wxbridge sends. Both check the Standard Webhooks signature with the
 * configured secret, as a real merchant must.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { MerchantConfig } from '../config/index.ts';
import { readRawBody } from '../http/body.ts';
import { AppError } from '../http/errors.ts';
import { parseInput } from '../http/validate.ts';
import { webhookSigner } from '../linking/verify-api.connector.ts';

const intentSchema = z.object({
  intent: z.string(),
  text: z.string(),
  account: z.string(),
  binding_id: z.string(),
  sub: z.string(),
  location: z.unknown().optional(),
});

export interface ReceivedEvent {
  id: string;
  type: string;
  receivedAt: string;
  data: unknown;
}

function verifySigned(ctx: Context, secret: string, raw: Buffer): unknown {
  try {
    webhookSigner(secret).verify(raw.toString('utf8'), {
      'webhook-id': ctx.get('webhook-id'),
      'webhook-timestamp': ctx.get('webhook-timestamp'),
      'webhook-signature': ctx.get('webhook-signature'),
    });
  } catch {
    throw new AppError('request.unauthenticated', 'bad signature');
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AppError('request.invalid', 'body is not JSON');
  }
}

/** A stable, made-up figure per account, so the same user always sees the same balance. */
function demoAmount(account: string, salt: string): string {
  let h = 0;
  for (const c of account + salt) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `¥${((h % 5_000_000) / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function createDemoHooksRoutes(deps: { merchant: (id: string) => MerchantConfig | undefined; publicUrl: string }): Router & { events: ReceivedEvent[] } {
  const router = new Router() as Router & { events: ReceivedEvent[] };
  const events: ReceivedEvent[] = [];
  router.events = events;

  router.post('/demo/merchant/:merchant/intents', async (ctx) => {
    const m = deps.merchant(ctx.params.merchant ?? '');
    const secret = m?.intents?.secret ?? m?.webhook?.secret;
    if (!m || !secret) throw new AppError('request.not_found');
    const call = parseInput(intentSchema, verifySigned(ctx, secret, await readRawBody(ctx, 16 * 1024)));
    const tail = call.account.slice(-4);
    if (call.intent === 'balance') {
      ctx.body = { reply: { type: 'text', content: `${m.name}：尾号 ${tail} 的账户可用额度 ${demoAmount(call.account, 'balance')}。\nAvailable credit on the account ending ${tail}: ${demoAmount(call.account, 'balance')}.` } };
    } else if (call.intent === 'bill') {
      ctx.body = {
        reply: {
          type: 'news',
          title: `本期账单 ${demoAmount(call.account, 'bill')}`,
          description: `尾号 ${tail} · 到期还款日 每月 25 日 / Statement due on the 25th`,
          url: `${deps.publicUrl}/link/${m.id}`,
        },
      };
    } else {
      ctx.body = { reply: null };
    }
  });

  router.post('/demo/merchant/:merchant/webhooks', async (ctx) => {
    const m = deps.merchant(ctx.params.merchant ?? '');
    if (!m?.webhook) throw new AppError('request.not_found');
    const body = verifySigned(ctx, m.webhook.secret, await readRawBody(ctx, 64 * 1024)) as { id?: string; type?: string; data?: unknown };
    events.unshift({ id: String(body.id ?? ctx.get('webhook-id')), type: String(body.type ?? 'unknown'), receivedAt: new Date().toISOString(), data: body.data });
    events.length = Math.min(events.length, 50);
    ctx.status = 204;
  });

  router.get('/demo/merchant/:merchant/webhooks', (ctx) => {
    ctx.body = { events: events.slice(0, 50) };
  });
  return router;
}
