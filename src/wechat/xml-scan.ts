/**
 * The scanner behind `parseWeChatXml` (xml.ts): one forward pass over an already size-checked,
 * decoded document, implementing the WeChat subset of XML described in xml.ts under SECURITY.md §A8.
 *
 * Linear by construction: every `indexOf` starts past the previous token, DTDs are refused at the first
 * `<!DOCTYPE`/`<!ENTITY` (there is no code that could expand an entity or fetch anything), and a node
 * budget bounds the work spent on floods of tiny elements, comments or references.
 */

/**
 * Markup budget per document: start tags, CDATA sections, comments, attributes and entity references.
 * The richest real push (MASSSENDJOBFINISH with copyright results for 8 articles) has about 200; the
 * budget keeps a 64 KB flood of tiny elements (~16k `<a/>`) from costing 10–30 ms of cold-JIT time.
 */
export const MAX_XML_NODES = 1000;

/** Element depth including `<xml>`. The deepest real push (`<xml><CopyrightCheckResult><ResultList><item><…>`) is 5. */
export const MAX_XML_DEPTH = 8;

export type XmlErrorReason = 'too_large' | 'doctype' | 'malformed' | 'too_deep' | 'not_flat';

/**
 * Parse failure. The message never echoes document content (it may hold user text or PII): `detail`
 * only says what was wrong and at which character offset.
 */
export class XmlError extends Error {
  constructor(readonly reason: XmlErrorReason, readonly detail?: string) {
    super(detail ? `xml ${reason}: ${detail}` : `xml ${reason}`);
    this.name = 'XmlError';
  }
}

// Characters XML 1.0 forbids anywhere (C0 controls except TAB/LF/CR, U+FFFE/U+FFFF) and lone UTF-16
// surrogates (not encodable as UTF-8). Rejecting them also keeps NUL out of Postgres `text` columns.
export const FORBIDDEN_CHAR =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point: XML forbids them
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Stateless (no /g or /y) so no lastIndex is shared between calls; WeChat's names are short.
const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}/;
const DTD_DECL = /^<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;
const WS = /^[ \t\r\n]*$/;
const DEC_REF = /^#[0-9]{1,7}$/;
const HEX_REF = /^#x[0-9A-Fa-f]{1,6}$/;
const PREDEFINED = new Map([['lt', '<'], ['gt', '>'], ['amp', '&'], ['quot', '"'], ['apos', "'"]]);

/** Remaining markup budget, shared by the scanner's helpers. */
type Budget = { nodes: number };

function spend(b: Budget): void {
  if (--b.nodes < 0) throw new XmlError('too_large', `more than ${MAX_XML_NODES} nodes`);
}

interface Frame {
  name: string;
  obj: Record<string, unknown> | undefined; // created on first child element
  parts: string[]; // CDATA and non-whitespace text pieces, in order (non-empty = this is a leaf)
  rawText: string[]; // every text piece, for pure-text leaves (trimmed)
  cdata: boolean;
}

/** Scans a decoded document (BOM removed) and returns the `<xml>` root's children. */
export function scanWeChatXml(s: string): Record<string, unknown> {
  if (FORBIDDEN_CHAR.test(s)) throw new XmlError('malformed', 'forbidden character');
  const budget: Budget = { nodes: MAX_XML_NODES };
  let i = skipMisc(s, 0, true, budget);
  if (!s.startsWith('<', i)) throw new XmlError('malformed', `expected root at ${i}`);
  const stack: Frame[] = [];
  let result: Record<string, unknown> | undefined;

  while (result === undefined) {
    const lt = s.indexOf('<', i);
    if (lt === -1) throw new XmlError('malformed', 'unclosed element');
    const top = stack[stack.length - 1];
    if (lt > i) {
      if (!top) throw new XmlError('malformed', `text outside root at ${i}`);
      addText(top, decodeText(s.slice(i, lt), i, budget), false);
    }
    if (!s.startsWith('</', lt)) spend(budget);
    if (s.startsWith('<![CDATA[', lt)) {
      if (!top) throw new XmlError('malformed', `CDATA outside root at ${lt}`);
      const end = s.indexOf(']]>', lt + 9);
      if (end === -1) throw new XmlError('malformed', 'unterminated CDATA');
      addText(top, s.slice(lt + 9, end), true);
      i = end + 3;
    } else if (s.startsWith('<!--', lt)) {
      i = skipComment(s, lt);
    } else if (s.startsWith('<!', lt)) {
      throw markupDeclError(s, lt);
    } else if (s.startsWith('<?', lt)) {
      throw new XmlError('malformed', `processing instruction at ${lt}`);
    } else if (s.startsWith('</', lt)) {
      const name = readName(s, lt + 2);
      const j = skipWs(s, lt + 2 + name.length);
      if (s[j] !== '>' || !top || top.name !== name) throw new XmlError('malformed', `bad end tag at ${lt}`);
      stack.pop();
      const value = finish(top);
      const parent = stack[stack.length - 1];
      if (parent) attach(parent, name, value);
      else if (value === '') result = {};
      else if (typeof value === 'string') throw new XmlError('not_flat', '<xml> holds text, not elements');
      else result = value as Record<string, unknown>;
      i = j + 1;
    } else {
      const name = readName(s, lt + 1);
      if (!top && name !== 'xml') throw new XmlError('not_flat', 'root element is not <xml>');
      if (stack.length >= MAX_XML_DEPTH) throw new XmlError('too_deep');
      if (top && top.parts.length > 0) throw new XmlError('not_flat', `mixed content in <${top.name}>`);
      const { end, selfClosing } = skipAttributes(s, lt + 1 + name.length, budget);
            if (selfClosing) {
        if (top) attach(top, name, '');
        else result = {};
      } else {
        if (top) top.obj ??= {};
        stack.push({ name, obj: undefined, parts: [], rawText: [], cdata: false });
      }
      i = end;
    }
  }
  // Only whitespace and comments may follow the root.
  if (skipMisc(s, i, false, budget) !== s.length) throw new XmlError('malformed', 'content after root');
  return result;
}

/** Skips whitespace, comments and (at the very start only) the XML declaration. */
function skipMisc(s: string, from: number, prolog: boolean, budget: Budget): number {
  let i = from;
  if (prolog && s.startsWith('<?xml', i) && /[\s?]/.test(s[i + 5] ?? '')) {
    const end = s.indexOf('?>', i);
    if (end === -1) throw new XmlError('malformed', 'unterminated XML declaration');
    i = end + 2;
  }
  for (;;) {
    i = skipWs(s, i);
    if (s.startsWith('<!--', i)) {
      spend(budget);
      i = skipComment(s, i);
    } else if (s.startsWith('<!', i) && !s.startsWith('<![CDATA[', i)) throw markupDeclError(s, i);
    else return i;
  }
}

function skipComment(s: string, lt: number): number {
  const end = s.indexOf('-->', lt + 4);
  if (end === -1) throw new XmlError('malformed', 'unterminated comment');
  return end + 3;
}

function markupDeclError(s: string, lt: number): XmlError {
  // DTDs are the root of XXE, billion laughs and quadratic blowup: refuse them outright (§A8).
  return DTD_DECL.test(s.slice(lt, lt + 12))
    ? new XmlError('doctype', `DTD declaration at ${lt}`)
    : new XmlError('malformed', `markup declaration at ${lt}`);
}

function skipWs(s: string, from: number): number {
  let i = from;
  for (let c = s.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = s.charCodeAt(++i));
  return i;
}

function readName(s: string, at: number): string {
  const m = NAME.exec(s.slice(at, at + 64));
  if (!m) throw new XmlError('malformed', `bad name at ${at}`);
  // A `__proto__` key would turn into a prototype write in any later Object.assign (ASVS 15.3.6).
  if (m[0] === '__proto__') throw new XmlError('malformed', 'reserved element name');
  return m[0];
}

/** Skips `name="value"` pairs up to `>` or `/>`; attribute values are never read. */
function skipAttributes(s: string, from: number, budget: Budget): { end: number; selfClosing: boolean } {
  let i = from;
  for (;;) {
    const j = skipWs(s, i);
    if (s[j] === '>') return { end: j + 1, selfClosing: false };
    if (s[j] === '/' && s[j + 1] === '>') return { end: j + 2, selfClosing: true };
    if (j === i) throw new XmlError('malformed', `bad tag at ${i}`);
    spend(budget);
    const name = readName(s, j);
    const eq = skipWs(s, j + name.length);
    const q = skipWs(s, eq + 1);
    const quote = s[q];
    if (s[eq] !== '=' || (quote !== '"' && quote !== "'")) throw new XmlError('malformed', `bad attribute at ${j}`);
    const close = s.indexOf(quote, q + 1);
    if (close === -1 || s.slice(q + 1, close).includes('<')) throw new XmlError('malformed', `bad attribute at ${j}`);
    i = close + 1;
  }
}

function addText(f: Frame, piece: string, cdata: boolean): void {
  if (!cdata) {
    f.rawText.push(piece);
    // Whitespace-only text is layout (pretty-printing around children or CDATA).
    if (WS.test(piece)) return;
  }
  if (f.obj) throw new XmlError('not_flat', `mixed content in <${f.name}>`);
  if (cdata) f.cdata = true;
  f.parts.push(piece);
}

/** A block's value is its object; a leaf's is its CDATA (exact) or its text (trimmed, like SDK parsers). */
function finish(f: Frame): unknown {
  if (f.obj) return f.obj;
  return f.cdata ? f.parts.join('') : f.rawText.join('').trim();
}

function attach(parent: Frame, name: string, value: unknown): void {
  const obj = (parent.obj ??= {});
  const prev = obj[name];
  if (!Object.hasOwn(obj, name)) obj[name] = value;
  else if (Array.isArray(prev)) prev.push(value); // values are never arrays except from repeats
  else obj[name] = [prev, value];
}

/**
 * Decodes the five predefined entities and character references in one forward pass; anything else
 * (undeclared names, a bare `&`) is malformed, since without a DTD nothing else can be defined.
 */
function decodeText(t: string, offset: number, budget: Budget): string {
  let amp = t.indexOf('&');
  if (amp === -1) return t;
  let out = '';
  let last = 0;
  while (amp !== -1) {
    const semi = t.indexOf(';', amp + 1);
    // The longest legal reference is `&#x10FFFF;`; a farther `;` means a bare `&`.
    if (semi === -1 || semi - amp > 9) throw new XmlError('malformed', `bad reference near ${offset + amp}`);
    spend(budget);
    out += t.slice(last, amp) + decodeRef(t, amp + 1, semi, offset);
    last = semi + 1;
    amp = t.indexOf('&', last);
  }
  return out + t.slice(last);
}

/** The replacement for the reference `t[start..end)` (between `&` and `;`). */
function decodeRef(t: string, start: number, end: number, offset: number): string {
  const ref = t.slice(start, end);
  const named = PREDEFINED.get(ref);
  if (named !== undefined) return named;
  const cp = HEX_REF.test(ref) ? parseInt(ref.slice(2), 16) : DEC_REF.test(ref) ? Number(ref.slice(1)) : -1;
  if (cp === -1) throw new XmlError('malformed', `undeclared entity near ${offset + start}`);
  // Only characters XML allows may be referenced (no &#0;, no surrogate halves, nothing past U+10FFFF).
  const isXmlChar = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
  if (!isXmlChar) throw new XmlError('malformed', `bad character reference near ${offset + start}`);
  return String.fromCodePoint(cp);
}

