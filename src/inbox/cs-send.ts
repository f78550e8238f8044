/**
 * A late answer, sent as a customer-service message (wechat-protocol.md §5.7 → §3.1) after
 * the push was acknowledged with `success`. A slot of the user's window is taken first
 * (§3.2), so the inbox never asks WeChat for a send it would refuse with 45015/45047, and
 * sends by other features (notices) are counted against the same quota.
 */
import type { Logger } from 'pino';
import type { WeChatApi } from '../wechat/api.ts';
import { WeChatApiError } from '../wechat/errors.ts';
import type { CsWindow } from './cs-window.ts';
import { customMessage, type Reply } from './reply.ts';

export type InboxWeChat = Pick<WeChatApi, 'customSend' | 'typing' | 'getFollowers' | 'batchGetUserInfo'>;

export type CsOutcome = 'sent' | 'window_closed' | 'failed';

export interface CsDelivery {
  send(appId: string, openid: string, reply: Reply): Promise<CsOutcome>;
  /** "Typing…" while the answer is on its way; cosmetic, so every failure is ignored (§3.4). */
  typing(appId: string, openid: string): Promise<void>;
}

export function createCsDelivery(o: { wechat: InboxWeChat; window: CsWindow; log: Logger }): CsDelivery {
  return {
    async send(appId, openid, reply) {
      if (!(await o.window.tryConsume(appId, openid))) {
        o.log.info({ appId }, 'late reply dropped: customer-service window closed or quota used');
        return 'window_closed';
      }
      try {
        await o.wechat.customSend(appId, customMessage(reply, openid));
        return 'sent';
      } catch (err) {
        const closed = err instanceof WeChatApiError && (err.kind === 'window_closed' || err.kind === 'not_subscribed');
        o.log.warn({ err, appId }, closed ? 'late reply refused: window closed' : 'late reply failed');
        return closed ? 'window_closed' : 'failed';
      }
    },
    async typing(appId, openid) {
      await o.wechat.typing(appId, openid, 'Typing').catch(() => undefined);
    },
  };
}
