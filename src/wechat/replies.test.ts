// wechat-protocol.md §5.6 (passive replies), §6.3/§6.5 (b) (encrypted reply).
import { describe, expect, it } from 'vitest';
import { createMessageCipher, encryptedEnvelope } from './crypto.ts';
import { SUCCESS_REPLY, newsReply, textReply } from './replies.ts';
import { parseWeChatXml } from './xml.ts';

const REPLY_B =
  '<xml><ToUserName><![CDATA[oBridgeTestUser0000000000001]]></ToUserName><FromUserName><![CDATA[gh_0123456789ab]]></FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ok]]></Content></xml>';

describe('textReply', () => {
  it('When the §6.5 (b) reply is built, then it is byte-identical to the vector and encrypts to its Encrypt', () => {
    const xml = textReply({ toUser: 'oBridgeTestUser0000000000001', fromUser: 'gh_0123456789ab', content: 'ok', createTime: 1700000001 });
    expect(xml).toBe(REPLY_B);
    const cipher = createMessageCipher({ appId: 'wx1234567890abcdef', encodingAesKeys: ['Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA'] });
    const encrypt = cipher.encrypt(xml, { random16: Buffer.from('fedcba9876543210', 'ascii') });
    const envelope = parseWeChatXml(encryptedEnvelope({ encrypt, token: 'bridgeToken2024', timestamp: '1700000001', nonce: '987654321' }));
    expect(envelope.MsgSignature).toBe('349614aefa2a26d5f0643345882442f976d13b3b');
  });

  it('When content holds "]]>" and markup, then the reply still parses back to the same text', () => {
    const content = '你好 <b>&amp;</b> ]]> done';
    const xml = textReply({ toUser: 'o1', fromUser: 'gh_1', content, createTime: 1 });
    expect(parseWeChatXml(xml)).toEqual({ ToUserName: 'o1', FromUserName: 'gh_1', CreateTime: '1', MsgType: 'text', Content: content });
  });

  it('When parameters are invalid, then textReply throws instead of emitting a reply WeChat rejects', () => {
    expect(() => textReply({ toUser: '', fromUser: 'gh_1', content: 'x', createTime: 1 })).toThrow();
    expect(() => textReply({ toUser: 'o1', fromUser: 'gh_1', content: 'x', createTime: 1.5 })).toThrow();
    expect(() => textReply({ toUser: 'o1', fromUser: 'gh_1', content: 'bell\u0007', createTime: 1 })).toThrow(RangeError);
  });

  it('When nothing needs saying, then the acknowledgement body is the literal "success" (§5.7)', () => {
    expect(SUCCESS_REPLY).toBe('success');
  });
});

describe('newsReply', () => {
  it('When one article is given, then the §5.6 news layout results with ArticleCount 1', () => {
    const xml = newsReply({
      toUser: 'o1',
      fromUser: 'gh_1',
      createTime: 12345678,
      article: { title: 'title', description: 'description', url: 'https://a.example/x?y=1&z=2', picUrl: 'https://a.example/p.png' },
    });
    expect(xml).toBe(
      '<xml><ToUserName><![CDATA[o1]]></ToUserName><FromUserName><![CDATA[gh_1]]></FromUserName><CreateTime>12345678</CreateTime><MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item><Title><![CDATA[title]]></Title><Description><![CDATA[description]]></Description><PicUrl><![CDATA[https://a.example/p.png]]></PicUrl><Url><![CDATA[https://a.example/x?y=1&z=2]]></Url></item></Articles></xml>',
    );
    expect(parseWeChatXml(xml).Articles).toEqual({
      item: { Title: 'title', Description: 'description', PicUrl: 'https://a.example/p.png', Url: 'https://a.example/x?y=1&z=2' },
    });
  });

  it('When optional fields are absent, then their elements are omitted', () => {
    const xml = newsReply({ toUser: 'o1', fromUser: 'gh_1', createTime: 1, article: { title: 't', url: 'https://a.example/' } });
    expect(parseWeChatXml(xml).Articles).toEqual({ item: { Title: 't', Url: 'https://a.example/' } });
  });

  it('When the article URL is not http(s), then newsReply refuses it', () => {
    for (const url of ['javascript:alert(1)', 'data:text/html,x', 'not a url']) {
      expect(() => newsReply({ toUser: 'o1', fromUser: 'gh_1', createTime: 1, article: { title: 't', url } })).toThrow();
    }
  });
});
