/**
 * Passive replies: the XML returned in the HTTP response to a push.
 *
 * Implements wechat-protocol.md §5.6 (text and single-article news replies) and §5.7 (the `success`
 * acknowledgement). In safe mode the caller encrypts the result and wraps it with
 * `encryptedEnvelope` (§6.3); `success` is never encrypted.
 */
import { z } from 'zod';
import { buildWeChatXml } from './xml.ts';

/** The acknowledgement body: WeChat does nothing further and does not retry (§5.7). */
export const SUCCESS_REPLY = 'success';

const party = z.string().min(1);
// CreateTime is Unix seconds, written bare.
const createTime = z.number().int().nonnegative().max(2 ** 32);
// Article links open in WeChat's browser; only web URLs make sense (and a javascript: URL must never pass).
const webUrl = z.url({ protocol: /^https?$/ });

const textReplyParams = z.object({ toUser: party, fromUser: party, content: z.string(), createTime });
const newsReplyParams = z.object({
  toUser: party,
  fromUser: party,
  createTime,
  article: z.object({
    title: z.string(),
    description: z.string().optional(),
    url: webUrl,
    picUrl: webUrl.optional(),
  }),
});

/**
 * Text reply. `toUser` is the sender of the inbound push (its FromUserName) and `fromUser` the
 * account's `gh_` id: To/From are swapped relative to the inbound message (§5.6).
 */
export function textReply(p: { toUser: string; fromUser: string; content: string; createTime: number }): string {
  const v = textReplyParams.parse(p);
  return buildWeChatXml({
    ToUserName: v.toUser,
    FromUserName: v.fromUser,
    CreateTime: v.createTime,
    MsgType: 'text',
    Content: v.content,
  });
}

/** News reply. WeChat renders only one article in passive replies since 2018-10-12 (§5.6). */
export function newsReply(p: {
  toUser: string;
  fromUser: string;
  createTime: number;
  article: { title: string; description?: string; url: string; picUrl?: string };
}): string {
  const v = newsReplyParams.parse(p);
  return buildWeChatXml({
    ToUserName: v.toUser,
    FromUserName: v.fromUser,
    CreateTime: v.createTime,
    MsgType: 'news',
    ArticleCount: 1,
    Articles: {
      item: {
        Title: v.article.title,
        Description: v.article.description,
        PicUrl: v.article.picUrl,
        Url: v.article.url,
      },
    },
  });
}
