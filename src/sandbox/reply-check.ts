/**
 * Is this a passive reply WeChat would show? (wechat-protocol.md §5.6.) To/From swapped
 * relative to the push, a numeric CreateTime, a known MsgType with its required elements,
 * and a single news article (since 2018-10-12).
 */
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

function mediaIdOf(block: unknown): string | undefined {
  return str(obj(block)?.MediaId);
}

export function checkPassiveReply(reply: Record<string, unknown>, expect: { openid: string; originalId: string }): string | undefined {
  if (str(reply.ToUserName) !== expect.openid) return 'ToUserName must be the openid of the sender';
  if (str(reply.FromUserName) !== expect.originalId) return 'FromUserName must be the account original id';
  if (!/^\d+$/.test(str(reply.CreateTime) ?? '')) return 'CreateTime must be an integer';
  switch (str(reply.MsgType)) {
    case 'text': {
      // WeChat wants `success` or an empty body when there is nothing to say, not an empty text.
      const content = str(reply.Content);
      return content === undefined || content === '' ? 'text reply needs a non-empty Content' : undefined;
    }
    case 'image':
      return mediaIdOf(reply.Image) ? undefined : 'image reply needs Image/MediaId';
    case 'voice':
      return mediaIdOf(reply.Voice) ? undefined : 'voice reply needs Voice/MediaId';
    case 'video':
      return mediaIdOf(reply.Video) ? undefined : 'video reply needs Video/MediaId';
    case 'music':
      return obj(reply.Music) ? undefined : 'music reply needs Music';
    case 'news': {
      const items = obj(reply.Articles)?.item;
      const list = Array.isArray(items) ? items : items === undefined ? [] : [items];
      if (list.length !== 1 || str(reply.ArticleCount) !== '1') return 'news reply must carry exactly one article';
      const article = obj(list[0]);
      return article && str(article.Title) !== undefined ? undefined : 'news article needs a Title';
    }
    case 'transfer_customer_service':
      return undefined;
    default:
      return `unknown reply MsgType ${str(reply.MsgType) ?? '(none)'}`;
  }
}
