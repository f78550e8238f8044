/**
 * What the inbox answers a user with, independent of how it travels: as the passive reply
 * in the push's HTTP response (wechat-protocol.md §5.6), or later as a customer-service
 * message (§3.1) when it was not ready within the budget. The same shape is what a merchant's
 * intents endpoint returns (DESIGN.md "Intents"), and what a push claim caches so that a
 * retry gets the same answer.
 */
import { z } from 'zod';
import type { CustomMessage } from '../wechat/api-messages.ts';
import { newsReply, textReply } from '../wechat/replies.ts';
import { xmlSafeText } from '../wechat/xml.ts';

const webUrl = z.url({ protocol: /^https?$/ });

// WeChat cuts passive text at 2,048 bytes; 600 characters of CJK stay under it.
export const replySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), content: z.string().trim().min(1).max(600) }).strict(),
  z
    .object({
      type: z.literal('news'),
      title: z.string().min(1).max(64),
      description: z.string().max(120).optional(),
      url: webUrl,
      picUrl: webUrl.optional(),
    })
    .strict(),
]);

export type Reply = z.infer<typeof replySchema>;

export const text = (content: string): Reply => ({ type: 'text', content });

/**
 * The passive-reply XML (To/From swapped relative to the push). Merchant text (account names,
 * intents answers) may hold characters XML cannot carry; they are dropped here, since a reply
 * that cannot be built fails every retry of the push too (§5.7: the user sees WeChat's error).
 */
export function replyXml(reply: Reply, p: { toUser: string; fromUser: string; createTime: number }): string {
  if (reply.type === 'text') return textReply({ ...p, content: xmlSafeText(reply.content) });
  const article = { title: xmlSafeText(reply.title), description: reply.description && xmlSafeText(reply.description), url: reply.url, picUrl: reply.picUrl };
  return newsReply({ ...p, article });
}

/** The same answer as a customer-service message (one article for news, §3.1). */
export function customMessage(reply: Reply, touser: string): CustomMessage {
  if (reply.type === 'text') return { touser, msgtype: 'text', text: { content: reply.content } };
  return {
    touser,
    msgtype: 'news',
    news: { articles: [{ title: reply.title, description: reply.description, url: reply.url, picurl: reply.picUrl }] },
  };
}
