/**
 * Customer-service messages, typing, template messages and subscription notices
 * (wechat-protocol.md §3, §4). Sends are not idempotent (custom send has no idempotency key;
 * template send only de-duplicates `client_msg_id` for 10 minutes), so none is retried on -1 or
 * a timeout here: a timeout surfaces as `WeChatTransportError{ambiguous: true}`.
 */
import { z } from 'zod';
import type { AppCall } from './api.ts';

export type CustomMessage = { touser: string; customservice?: { kf_account: string } } & (
  | { msgtype: 'text'; text: { content: string } }
  | { msgtype: 'image'; image: { media_id: string } }
  | { msgtype: 'voice'; voice: { media_id: string } }
  | { msgtype: 'video'; video: { media_id: string; thumb_media_id?: string; title?: string; description?: string } }
  | {
      msgtype: 'music';
      music: { title?: string; description?: string; musicurl: string; hqmusicurl: string; thumb_media_id: string };
    }
  // Exactly one article since 2018-10-12; more is 45008 (§3.1).
  | { msgtype: 'news'; news: { articles: [{ title: string; description?: string; url: string; picurl?: string }] } }
  | { msgtype: 'mpnews'; mpnews: { media_id: string } }
  | { msgtype: 'mpnewsarticle'; mpnewsarticle: { article_id: string } }
  | {
      msgtype: 'msgmenu';
      msgmenu: { head_content?: string; list: { id: string; content: string }[]; tail_content?: string };
    }
  | { msgtype: 'wxcard'; wxcard: { card_id: string } }
  | {
      msgtype: 'miniprogrampage';
      miniprogrampage: { title: string; appid: string; pagepath: string; thumb_media_id: string };
    }
);

export interface TemplateMessage {
  touser: string;
  template_id: string;
  url?: string;
  miniprogram?: { appid: string; pagepath?: string };
  /** WeChat sends one message per openid + client_msg_id within 10 minutes (§4.1, D2). */
  client_msg_id?: string;
  data: Record<string, { value: string; color?: string }>;
}

export interface SubscribeMessage {
  touser: string;
  template_id: string;
  /** Web page opened on tap. */
  page?: string;
  miniprogram?: { appid: string; pagepath?: string };
  data: Record<string, { value: string }>;
}

export interface MessagesApi {
  customSend(appId: string, body: CustomMessage): Promise<void>;
  typing(appId: string, openid: string, command: 'Typing' | 'CancelTyping'): Promise<void>;
  /** `msgid` is an int64, returned as a decimal string (it exceeds 2^53). */
  templateSend(appId: string, message: TemplateMessage): Promise<{ msgid: string }>;
  subscribeSend(appId: string, message: SubscribeMessage): Promise<{ msgid?: string }>;
}

const int64 = z
  .union([z.string().regex(/^-?\d+$/), z.number().int()])
  .transform((v) => (typeof v === 'number' ? v.toFixed(0) : v));

const okSchema = z.object({ errcode: z.literal(0).optional(), errmsg: z.string().optional() });
const templateSchema = okSchema.extend({ msgid: int64 });
const subscribeSchema = okSchema.extend({ msgid: int64.optional() });

export function createMessagesApi(call: AppCall): MessagesApi {
  return {
    async customSend(appId, body) {
      await call(appId, {
        method: 'POST',
        path: '/cgi-bin/message/custom/send',
        body,
        schema: okSchema,
        idempotent: false,
      });
    },
    async typing(appId, openid, command) {
      await call(appId, {
        method: 'POST',
        path: '/cgi-bin/message/custom/typing',
        body: { touser: openid, command },
        schema: okSchema,
        // A typing indicator is cosmetic; repeating it is harmless (45081 at worst).
        idempotent: true,
      });
    },
    async templateSend(appId, message) {
      const res = await call(appId, {
        method: 'POST',
        path: '/cgi-bin/message/template/send',
        body: message,
        schema: templateSchema,
        idempotent: false,
      });
      return { msgid: res.msgid };
    },
    async subscribeSend(appId, message) {
      const res = await call(appId, {
        method: 'POST',
        path: '/cgi-bin/message/subscribe/bizsend',
        body: message,
        schema: subscribeSchema,
        idempotent: false,
      });
      return res.msgid !== undefined ? { msgid: res.msgid } : {};
    },
  };
}
