/**
 * Typed inbound WeChat pushes: normal messages and events, validated with zod.
 *
 * Implements wechat-protocol.md §5.3 (common fields), §5.4 (normal messages), §5.5 (events), §4.2
 * (TEMPLATESENDJOBFINISH), §4.4 (subscribe_msg_* events) and §5.7 (de-duplication keys). Input is the
 * output of `parseWeChatXml` (every leaf a string), so numbers are converted here, deliberately:
 * `CreateTime` and counters become numbers, but `MsgId`/`MsgID` stay strings because they are 64-bit
 * (e.g. `24312345678901234` > 2^53) and a JS number would silently corrupt them.
 *
 * Every variant carries a synthetic `kind` (`message.text`, `event.subscribe`, `event.unknown`…).
 * Switch on `kind`: it narrows cleanly, whereas `Event === 'subscribe'` cannot rule out the lenient
 * fallback variants whose `Event`/`MsgType` is any string. Unknown fields are dropped from known
 * variants and kept on the fallbacks.
 */
import { z } from 'zod';

const text = z.string();
const nonEmpty = z.string().min(1);
/** 64-bit ids (MsgId, MsgID) stay decimal strings. */
const id64 = z.string().regex(/^\d{1,20}$/);
const unixSeconds = z.string().regex(/^\d{1,12}$/).transform(Number);
const count = z.string().regex(/^\d{1,10}$/).transform(Number);
const decimal = z.string().regex(/^-?\d{1,12}(?:\.\d{1,20})?$/).transform(Number);

/** A block WeChat may repeat (`<List>`, `<item>`) parses to an object once, an array when repeated. */
function oneOrMany<T extends z.ZodType>(item: T) {
  return z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);
}

const common = { ToUserName: nonEmpty, FromUserName: nonEmpty, CreateTime: unixSeconds };

function message<const M extends string, S extends z.ZodRawShape>(msgType: M, shape: S) {
  return z
    .object({
      ...common,
      MsgType: z.literal(msgType),
      MsgId: id64,
      // Present only when the message comes from an article (§5.3).
      MsgDataId: text.optional(),
      Idx: text.optional(),
      ...shape,
    })
    .transform((v) => ({ kind: `message.${msgType}` as const, ...v }));
}

function event<const E extends string, S extends z.ZodRawShape>(name: E, shape: S) {
  return z
    .object({ ...common, MsgType: z.literal('event'), Event: z.literal(name), ...shape })
    .transform((v) => ({ kind: `event.${name}` as const, ...v }));
}

// §5.4 normal messages.
const messages = [
  // `bizmsgmenuid`: the item id when the text is a tap on a msgmenu (§3.2, service/api/customer/message).
  message('text', { Content: text, bizmsgmenuid: text.optional() }),
  message('image', { PicUrl: text, MediaId: nonEmpty }),
  // Recognition may be present but empty: ASR is being retired (§13.11); never depend on it.
  message('voice', { MediaId: nonEmpty, Format: text, Recognition: text.optional(), MediaId16K: text.optional() }),
  message('video', { MediaId: nonEmpty, ThumbMediaId: text }),
  message('shortvideo', { MediaId: nonEmpty, ThumbMediaId: text }),
  message('location', { Location_X: decimal, Location_Y: decimal, Scale: decimal, Label: text }),
  message('link', { Title: text, Description: text, Url: text }),
  message('miniprogrampage', {
    Title: text,
    AppId: nonEmpty,
    PagePath: text,
    ThumbUrl: text.optional(),
    ThumbMediaId: text.optional(),
  }),
] as const;

const QR_PREFIX = 'qrscene_';
const scanCodeInfo = z.object({ ScanType: text, ScanResult: text });

// §5.5 events. Field sets follow the doc table; blocks the bridge does not use are kept lenient.
const events = [
  // Plain follow: EventKey absent or empty. Follow via parametric QR: "qrscene_" + scene.
  event('subscribe', { EventKey: text.optional(), Ticket: text.optional() }).transform((v) => ({
    ...v,
    qrScene: v.EventKey?.startsWith(QR_PREFIX) ? v.EventKey.slice(QR_PREFIX.length) : undefined,
  })),
  event('unsubscribe', { EventKey: text.optional() }),
  // Already a follower: EventKey is the scene itself, exposed as qrScene too so callers read one field.
  event('SCAN', { EventKey: text, Ticket: text.optional() }).transform((v) => ({ ...v, qrScene: v.EventKey })),
  event('LOCATION', { Latitude: decimal, Longitude: decimal, Precision: decimal }),
  event('CLICK', { EventKey: text }),
  event('VIEW', { EventKey: text, MenuId: text.optional() }),
  event('view_miniprogram', { EventKey: text, MenuId: text.optional() }),
  // Capital D: `MsgID` here, unlike `MsgId` of normal messages (§4.2).
  event('TEMPLATESENDJOBFINISH', { MsgID: id64, Status: text }),
  event('MASSSENDJOBFINISH', {
    MsgID: id64,
    Status: text,
    TotalCount: count,
    FilterCount: count,
    SentCount: count,
    ErrorCount: count,
    CopyrightCheckResult: z.unknown().optional(),
    ArticleUrlResult: z.unknown().optional(),
  }),
  event('scancode_push', { EventKey: text, ScanCodeInfo: scanCodeInfo }),
  event('scancode_waitmsg', { EventKey: text, ScanCodeInfo: scanCodeInfo }),
  event('pic_sysphoto', { EventKey: text, SendPicsInfo: z.unknown() }),
  event('pic_photo_or_album', { EventKey: text, SendPicsInfo: z.unknown() }),
  event('pic_weixin', { EventKey: text, SendPicsInfo: z.unknown() }),
  event('location_select', {
    EventKey: text,
    SendLocationInfo: z.object({
      Location_X: decimal,
      Location_Y: decimal,
      Scale: decimal.optional(),
      Label: text.optional(),
      Poiname: text.optional(),
    }),
  }),
  // §4.4 subscription notices.
  event('subscribe_msg_popup_event', {
    SubscribeMsgPopupEvent: z.object({
      List: oneOrMany(z.object({ TemplateId: nonEmpty, SubscribeStatusString: text, PopupScene: text.optional() })),
    }),
  }),
  event('subscribe_msg_change_event', {
    SubscribeMsgChangeEvent: z.object({
      List: oneOrMany(z.object({ TemplateId: nonEmpty, SubscribeStatusString: text })),
    }),
  }),
  event('subscribe_msg_sent_event', {
    SubscribeMsgSentEvent: z.object({
      List: oneOrMany(z.object({ TemplateId: nonEmpty, MsgID: id64, ErrorCode: text, ErrorStatus: text })),
    }),
  }),
] as const;

const KNOWN_MSG_TYPES: ReadonlySet<string> = new Set([...messages.map((s) => s.in.shape.MsgType.value), 'event']);
const KNOWN_EVENTS = new Map(events.map((s) => eventName(s)).map((e) => [e.toLowerCase(), e]));

function eventName(s: (typeof events)[number]): string {
  // Variants with a second transform (qrScene) wrap the base pipe one level deeper.
  const base = 'shape' in s.in ? s.in : s.in.in;
  return base.shape.Event.value;
}

// Lenient fallbacks (§5.5 "parse leniently, reply success"): still require the common fields, so a
// push can always be acknowledged and de-duplicated, and keep every other field as parsed.
const unknownEvent = z
  .looseObject({ ...common, MsgType: z.literal('event'), Event: z.string().refine((e) => !KNOWN_EVENTS.has(e.toLowerCase())) })
  .transform((v) => ({ kind: 'event.unknown' as const, ...v }));
const unknownMessage = z
  .looseObject({ ...common, MsgType: z.string().refine((t) => !KNOWN_MSG_TYPES.has(t.toLowerCase())) })
  .transform((v) => ({ kind: 'message.unknown' as const, ...v }));

/**
 * Event names arrive in WeChat's mixed casing (`SCAN`, `subscribe`); wechatpy's parser lower-cases
 * MsgType and Event before dispatching, so a known name in another casing is mapped to its canonical
 * spelling here rather than falling through to the unknown variants.
 */
function canonicalCase(input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const { MsgType: t, Event: e } = input as Record<string, unknown>;
  const msgType = typeof t === 'string' && KNOWN_MSG_TYPES.has(t.toLowerCase()) ? t.toLowerCase() : t;
  const event = typeof e === 'string' ? (KNOWN_EVENTS.get(e.toLowerCase()) ?? e) : e;
  if (msgType === t && event === e) return input;
  return { ...input, MsgType: msgType, ...(e === undefined ? {} : { Event: event }) };
}

export const inboundMessageSchema = z.preprocess(
  canonicalCase,
  z.union([
    z.discriminatedUnion('MsgType', [...messages, z.discriminatedUnion('Event', [...events])]),
    unknownEvent,
    unknownMessage,
  ]),
);

export type InboundMessage = z.infer<typeof inboundMessageSchema>;
export type InboundKind = InboundMessage['kind'];

/** Invalid push. Carries issue paths and codes only: never the (possibly personal) values. */
export class InboundMessageError extends Error {
  constructor(readonly issues: { path: string; code: string }[]) {
    super(`invalid WeChat push: ${issues.map((i) => `${i.path || '(root)'} ${i.code}`).join('; ')}`);
    this.name = 'InboundMessageError';
  }
}

/** Validates the fields from `parseWeChatXml`. Throws InboundMessageError on invalid input. */
export function parseInboundMessage(fields: Record<string, unknown>): InboundMessage {
  const r = inboundMessageSchema.safeParse(fields);
  if (r.success) return r.data;
  throw new InboundMessageError(r.error.issues.flatMap((i) => describe(i, [])));
}

/** Reports the known-variant branch of a union failure (the fallbacks' complaints are noise). */
function describe(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { path: string; code: string }[] {
  const path = [...prefix, ...issue.path];
  const first = issue.code === 'invalid_union' ? issue.errors[0] : undefined;
  if (first && first.length > 0) return first.flatMap((i) => describe(i, path));
  return [{ path: path.map(String).join('.'), code: issue.code }];
}

/**
 * De-duplication key for WeChat's retries (§5.7): `MsgId` for messages, `MsgID` for the job-finish
 * events, and FromUserName + CreateTime + Event (+ EventKey) for other events. Every key is scoped by
 * ToUserName (the account) and its parts are URI-encoded so no two tuples can collide.
 */
export function dedupeKey(m: InboundMessage): string {
  const enc = encodeURIComponent;
  const account = enc(m.ToUserName);
  if (m.kind === 'event.TEMPLATESENDJOBFINISH' || m.kind === 'event.MASSSENDJOBFINISH') {
    return `job:${account}:${m.Event}:${m.MsgID}`;
  }
  const msgId: unknown = 'MsgId' in m ? m.MsgId : undefined;
  if (m.MsgType !== 'event' && typeof msgId === 'string' && /^\d+$/.test(msgId)) return `msg:${account}:${msgId}`;
  const eventKey: unknown = 'EventKey' in m ? m.EventKey : undefined;
  const what = 'Event' in m && typeof m.Event === 'string' ? m.Event : m.MsgType;
  return `evt:${account}:${enc(m.FromUserName)}:${m.CreateTime}:${enc(what)}:${enc(typeof eventKey === 'string' ? eventKey : '')}`;
}
