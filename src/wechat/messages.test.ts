// wechat-protocol.md §5.3–§5.5 (message and event types), §4.2/§4.4 (job and subscription events), §5.7 (dedup).
import { describe, expect, it } from 'vitest';
import { InboundMessageError, dedupeKey, inboundMessageSchema, parseInboundMessage, type InboundMessage } from './messages.ts';
import { parseWeChatXml } from './xml.ts';

const HEAD = '<ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName><CreateTime>1395658920</CreateTime>';
const msg = (type: string, body: string) => `<xml>${HEAD}<MsgType><![CDATA[${type}]]></MsgType>${body}</xml>`;
const evt = (event: string, body = '') => msg('event', `<Event><![CDATA[${event}]]></Event>${body}`);
const parse = (xml: string): InboundMessage => parseInboundMessage(parseWeChatXml(xml));
const common = { ToUserName: 'gh_7f083739789a', FromUserName: 'oia2TjuEGTNoeX76QEjQNrcURxG8', CreateTime: 1395658920 };

describe('normal messages (§5.4)', () => {
  it.each([
    ['text', '<Content><![CDATA[绑定 账号]]></Content>', { Content: '绑定 账号' }],
    ['image', '<PicUrl><![CDATA[http://mmbiz.example/p.jpg]]></PicUrl><MediaId><![CDATA[media_1]]></MediaId>', { PicUrl: 'http://mmbiz.example/p.jpg', MediaId: 'media_1' }],
    ['voice', '<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[]]></Recognition>', { MediaId: 'm', Format: 'amr', Recognition: '' }],
    ['voice', '<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[speex]]></Format>', { Format: 'speex' }],
    ['video', '<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>', { MediaId: 'm', ThumbMediaId: 't' }],
    ['shortvideo', '<MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>', { ThumbMediaId: 't' }],
    ['location', '<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label>', { Location_X: 23.134521, Location_Y: 113.358803, Scale: 20, Label: '位置信息' }],
    ['link', '<Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[https://a.example/]]></Url>', { Title: 't', Description: 'd', Url: 'https://a.example/' }],
    ['miniprogrampage', '<Title><![CDATA[t]]></Title><AppId><![CDATA[wxapp]]></AppId><PagePath><![CDATA[pages/i]]></PagePath>', { AppId: 'wxapp', PagePath: 'pages/i' }],
  ])('When a %s message arrives, then it parses to its typed variant', (type, body, expected) => {
    const m = parse(msg(type, `${body}<MsgId>24312345678901234</MsgId>`));
    expect(m).toMatchObject({ kind: `message.${type}`, MsgType: type, ...common, MsgId: '24312345678901234', ...expected });
  });

  it('When a MsgId exceeds 2^53, then it stays an exact string and CreateTime becomes a number', () => {
    const m = parse(msg('text', '<Content><![CDATA[x]]></Content><MsgId>9223372036854775807</MsgId>'));
    expect(m.kind === 'message.text' && m.MsgId).toBe('9223372036854775807');
    expect(m.CreateTime).toBe(1395658920);
  });

  it('When a message comes from an article, then MsgDataId and Idx are kept', () => {
    const m = parse(msg('text', '<Content><![CDATA[x]]></Content><MsgId>1</MsgId><MsgDataId>88</MsgDataId><Idx>2</Idx>'));
    expect(m).toMatchObject({ MsgDataId: '88', Idx: '2' });
  });

  it('When a compatible-mode push also carries Encrypt, then the known variant parses and drops the extra field', () => {
    const m = parse(msg('text', '<Content><![CDATA[x]]></Content><MsgId>1</MsgId><Encrypt><![CDATA[abc=]]></Encrypt>'));
    expect(m.kind).toBe('message.text');
    expect(m).not.toHaveProperty('Encrypt');
  });
});

describe('events (§5.5, §4.2, §4.4)', () => {
  it('When a plain follow arrives with an empty EventKey, then it is a subscribe without qrScene', () => {
    const m = parse(evt('subscribe', '<EventKey><![CDATA[]]></EventKey>'));
    expect(m).toMatchObject({ kind: 'event.subscribe', ...common, EventKey: '' });
    expect(m.kind === 'event.subscribe' && m.qrScene).toBeUndefined();
  });

  it('When a follow comes from a parametric QR code, then qrScene is the scene without the qrscene_ prefix', () => {
    const m = parse(evt('subscribe', '<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>'));
    expect(m).toMatchObject({ kind: 'event.subscribe', EventKey: 'qrscene_123123', Ticket: 'TICKET', qrScene: '123123' });
  });

  it('When a follower scans a parametric QR code, then SCAN exposes the EventKey as qrScene too', () => {
    const m = parse(evt('SCAN', '<EventKey><![CDATA[bind_AbC]]></EventKey><Ticket><![CDATA[T]]></Ticket>'));
    expect(m).toMatchObject({ kind: 'event.SCAN', EventKey: 'bind_AbC', qrScene: 'bind_AbC' });
  });

  it('When TEMPLATESENDJOBFINISH arrives with MsgID (capital D) and a failure status, then both are kept verbatim', () => {
    const m = parse(evt('TEMPLATESENDJOBFINISH', '<MsgID>200163836</MsgID><Status><![CDATA[failed: system failed]]></Status>'));
    expect(m).toMatchObject({ kind: 'event.TEMPLATESENDJOBFINISH', MsgID: '200163836', Status: 'failed: system failed' });
  });

  it('When TEMPLATESENDJOBFINISH carries MsgId instead of MsgID, then it is rejected', () => {
    expect(() => parse(evt('TEMPLATESENDJOBFINISH', '<MsgId>200163836</MsgId><Status><![CDATA[success]]></Status>'))).toThrow(InboundMessageError);
  });

  it.each([
    ['unsubscribe', '<EventKey><![CDATA[]]></EventKey>', {}],
    ['LOCATION', '<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>', { Latitude: 23.137466, Longitude: 113.352425, Precision: 119.38504 }],
    ['CLICK', '<EventKey><![CDATA[MENU_BIND]]></EventKey>', { EventKey: 'MENU_BIND' }],
    ['VIEW', '<EventKey><![CDATA[https://a.example/]]></EventKey><MenuId>208379533</MenuId>', { EventKey: 'https://a.example/', MenuId: '208379533' }],
    ['view_miniprogram', '<EventKey><![CDATA[pages/i]]></EventKey><MenuId>1</MenuId>', { EventKey: 'pages/i' }],
    ['MASSSENDJOBFINISH', '<MsgID>1000001625</MsgID><Status><![CDATA[err(30003)]]></Status><TotalCount>0</TotalCount><FilterCount>0</FilterCount><SentCount>0</SentCount><ErrorCount>0</ErrorCount><CopyrightCheckResult><Count>0</Count><ResultList/><CheckState>1</CheckState></CopyrightCheckResult>', { MsgID: '1000001625', Status: 'err(30003)', TotalCount: 0, SentCount: 0 }],
    ['scancode_push', '<EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>', { ScanCodeInfo: { ScanType: 'qrcode', ScanResult: '1' } }],
    ['scancode_waitmsg', '<EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[EAN_13,6901]]></ScanResult></ScanCodeInfo>', { ScanCodeInfo: { ScanType: 'barcode', ScanResult: 'EAN_13,6901' } }],
    ['pic_sysphoto', '<EventKey><![CDATA[k]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[1b5f]]></PicMd5Sum></item></PicList></SendPicsInfo>', { SendPicsInfo: { Count: '1', PicList: { item: { PicMd5Sum: '1b5f' } } } }],
    ['location_select', '<EventKey><![CDATA[k]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA[广州]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>', { SendLocationInfo: { Location_X: 23, Location_Y: 113, Scale: 15, Label: '广州', Poiname: '' } }],
    ['subscribe_msg_popup_event', '<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[tpl1]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>', { SubscribeMsgPopupEvent: { List: [{ TemplateId: 'tpl1', SubscribeStatusString: 'accept', PopupScene: '2' }] } }],
    ['subscribe_msg_change_event', '<SubscribeMsgChangeEvent><List><TemplateId>a</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List><List><TemplateId>b</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List></SubscribeMsgChangeEvent>', { SubscribeMsgChangeEvent: { List: [{ TemplateId: 'a', SubscribeStatusString: 'reject' }, { TemplateId: 'b', SubscribeStatusString: 'reject' }] } }],
    ['subscribe_msg_sent_event', '<SubscribeMsgSentEvent><List><TemplateId>a</TemplateId><MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent>', { SubscribeMsgSentEvent: { List: [{ TemplateId: 'a', MsgID: '1700827132819554304', ErrorCode: '0', ErrorStatus: 'success' }] } }],
  ])('When a %s event arrives, then it parses to its typed variant', (event, body, expected) => {
    expect(parse(evt(event, body))).toMatchObject({ kind: `event.${event}`, MsgType: 'event', Event: event, ...common, ...expected });
  });

  it('When an event name or message type arrives in another casing, then it maps to the canonical variant', () => {
    expect(parse(evt('scan', '<EventKey><![CDATA[1]]></EventKey>'))).toMatchObject({ kind: 'event.SCAN', Event: 'SCAN' });
    expect(parse(msg('TEXT', '<Content>x</Content><MsgId>1</MsgId>'))).toMatchObject({ kind: 'message.text', MsgType: 'text' });
  });

  it('When an unknown event or message type arrives, then a lenient fallback keeps every field', () => {
    expect(parse(evt('brand_new_event', '<Extra><A>1</A></Extra>'))).toMatchObject({ kind: 'event.unknown', Event: 'brand_new_event', Extra: { A: '1' }, ...common });
    expect(parse(msg('hologram', '<MsgId>5</MsgId>'))).toMatchObject({ kind: 'message.unknown', MsgType: 'hologram', MsgId: '5' });
  });

  it('When the schema is used directly, then it gives the same result as parseInboundMessage', () => {
    const fields = parseWeChatXml(evt('CLICK', '<EventKey><![CDATA[K]]></EventKey>'));
    expect(inboundMessageSchema.parse(fields)).toEqual(parseInboundMessage(fields));
  });
});

describe('invalid pushes', () => {
  it.each([
    ['a missing FromUserName', '<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>'],
    ['a non-numeric CreateTime', msg('text', '<Content>x</Content><MsgId>1</MsgId>').replace('1395658920', 'yesterday')],
    ['a text without MsgId', msg('text', '<Content>x</Content>')],
    ['a non-decimal MsgId', msg('text', '<Content>x</Content><MsgId>1e5</MsgId>')],
    ['a nested block where text belongs', msg('text', '<Content><b>x</b></Content><MsgId>1</MsgId>')],
    ['a duplicated Content', msg('text', '<Content>a</Content><Content>b</Content><MsgId>1</MsgId>')],
    ['a known event missing its fields', evt('SCAN')],
    ['no MsgType', `<xml>${HEAD}</xml>`],
  ])('When a push has %s, then parseInboundMessage throws InboundMessageError', (_what, xml) => {
    expect(() => parse(xml)).toThrow(InboundMessageError);
  });

  it('When a push is invalid, then the error names the field but never echoes its value', () => {
    try {
      parse(msg('text', '<Content><b>secret text</b></Content><MsgId>1</MsgId>'));
      expect.unreachable();
    } catch (e) {
      expect((e as InboundMessageError).issues).toEqual([{ path: 'Content', code: 'invalid_type' }]);
      expect((e as Error).message).not.toContain('secret');
    }
  });
});

describe('dedupeKey (§5.7)', () => {
  it('When a message is retried, then the key is its MsgId scoped by account', () => {
    const m = parse(msg('text', '<Content>x</Content><MsgId>24312345678901234</MsgId>'));
    expect(dedupeKey(m)).toBe('msg:gh_7f083739789a:24312345678901234');
  });

  it('When a job-finish event arrives, then the key is its MsgID', () => {
    expect(dedupeKey(parse(evt('TEMPLATESENDJOBFINISH', '<MsgID>200163836</MsgID><Status>success</Status>')))).toBe('job:gh_7f083739789a:TEMPLATESENDJOBFINISH:200163836');
    expect(dedupeKey(parse(evt('MASSSENDJOBFINISH', '<MsgID>7</MsgID><Status>s</Status><TotalCount>1</TotalCount><FilterCount>1</FilterCount><SentCount>1</SentCount><ErrorCount>0</ErrorCount>')))).toBe('job:gh_7f083739789a:MASSSENDJOBFINISH:7');
  });

  it('When other events arrive, then the key is FromUserName + CreateTime + Event + EventKey', () => {
    const click = (key: string) => dedupeKey(parse(evt('CLICK', `<EventKey><![CDATA[${key}]]></EventKey>`)));
    expect(click('A')).toBe('evt:gh_7f083739789a:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658920:CLICK:A');
    expect(click('A')).toBe(click('A'));
    expect(click('A')).not.toBe(click('B'));
    expect(dedupeKey(parse(evt('unsubscribe')))).toBe('evt:gh_7f083739789a:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658920:unsubscribe:');
  });

  it('When key parts contain the separator, then distinct events still get distinct keys', () => {
    const a = parse(evt('CLICK', '<EventKey><![CDATA[x:y]]></EventKey>'));
    const b = { ...a, FromUserName: `${a.FromUserName}:1395658920:CLICK:x`, EventKey: 'y' } as InboundMessage;
    expect(dedupeKey(a)).not.toBe(dedupeKey(b));
  });
});
