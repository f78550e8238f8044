/**
 * Merchants and official accounts made or edited in the admin UI (issue 8): writes to the
 * config overlay (config/overlay.ts), each checked as the whole effective config would be
 * at start, serialised across instances by an advisory lock (cross-item rules such as a
 * unique appId hold under concurrent saves), versioned so a stale form cannot overwrite a
 * newer edit, and audited with a before/after of the fields that changed, secrets shown
 * only as "set" / "replaced" / "not set". Every instance picks the change up through the
 * config sync; this one at once.
 */
import { effectiveConfig, formatProblem, splitSecrets, type OverlayItem, type OverlayKind } from '../config/overlay.ts';
import * as Q from '../config/overlay.queries.ts';
import type { ConfigSync } from '../config/overlay.sync.ts';
import type { LiveConfig } from '../config/overlay.ts';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AppError } from '../http/errors.ts';
import { bareHost, refusedAddress, type OutboundPolicy } from '../security/outbound.ts';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db, Queryable } from '../store/db.ts';
import type { ActorRef, AdminAudit } from './audit.service.ts';

type Doc = Record<string, unknown>;
type Flat = Record<string, string | number | boolean | null>;

/** What the overlay keeps of a document: a merchant's clients stay the file's (config/overlay.ts). */
function stored(kind: OverlayKind, doc: Doc): Doc {
  if (kind !== 'merchant') return doc;
  const { clients: _clients, ...rest } = doc;
  return rest;
}

// Any constant works; it only has to differ from the other advisory locks (migrate.ts).
const OVERLAY_LOCK = 7331000802;

/** Non-secret fields as dotted keys: linking methods by type, scalar lists joined. */
export function flattenDoc(value: unknown, prefix = '', out: Flat = {}): Flat {
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) out[prefix] = value.join(' ');
    else value.forEach((v, i) => flattenDoc(v, `${prefix}.${typeof (v as Doc).type === 'string' ? String((v as Doc).type) : i}`, out));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) flattenDoc(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) out[prefix] = value as string | number | boolean | null;
  return out;
}

/** What changed between two documents, for the audit row; secrets never appear, only their state. */
export function changes(kind: OverlayKind, before: Doc | null, after: Doc | null): { before: Flat; after: Flat } {
  const b = before ? splitSecrets(kind, stored(kind, before)) : { plain: {}, secrets: {} as Record<string, string> };
  const a = after ? splitSecrets(kind, stored(kind, after)) : { plain: {}, secrets: {} as Record<string, string> };
  const fb = flattenDoc(b.plain);
  const fa = flattenDoc(a.plain);
  const out = { before: {} as Flat, after: {} as Flat };
  for (const k of new Set([...Object.keys(fb), ...Object.keys(fa)]))
    if (fb[k] !== fa[k]) {
      out.before[k] = fb[k] ?? null;
      out.after[k] = fa[k] ?? null;
    }
  for (const k of new Set([...Object.keys(b.secrets), ...Object.keys(a.secrets)]))
    if (b.secrets[k] !== a.secrets[k]) {
      out.before[k] = k in b.secrets ? 'set' : 'not set';
      out.after[k] = !(k in a.secrets) ? 'not set' : k in b.secrets ? 'replaced' : 'set';
    }
  return out;
}

export interface SaveRequest {
  kind: OverlayKind;
  id: string;
  /** The whole document, secrets included (a kept secret is copied from the current one). */
  doc: Doc;
  /** null: create (the id must be free in the file and the overlay); else the overlay version the form was made from (0: none yet). */
  expectedVersion: number | null;
  who: ActorRef;
}

export interface ConfigOverlayService {
  /** The overlay row of an item, if the UI made or edited it. */
  find(kind: OverlayKind, id: string): Promise<OverlayItem | null>;
  list(): Promise<OverlayItem[]>;
  save(r: SaveRequest): Promise<void>;
  /** Drops the UI edit of a file item: the file's version applies again. */
  revert(r: { kind: OverlayKind; id: string; expectedVersion: number; who: ActorRef }): Promise<void>;
}

/**
 * The merchant's endpoints a UI edit may point at. Secrets and signed events go there, so
 * outside demo mode they must be https: the config file's operator may choose otherwise,
 * an admin of the UI (possibly scoped to one merchant) may not.
 */
/** A merchant document's endpoints the bridge calls, by field. */
function merchantUrls(doc: Doc): [string, unknown][] {
  const urls: [string, unknown][] = [['webhook.url', (doc.webhook as Doc | undefined)?.url], ['intents.url', (doc.intents as Doc | undefined)?.url]];
  for (const l of Array.isArray(doc.linking) ? (doc.linking as Doc[]) : []) urls.push([`linking.${String(l.type)}.${l.type === 'oidc' ? 'issuer' : 'url'}`, l.type === 'oidc' ? l.issuer : l.url]);
  return urls;
}

export function insecureUrls(doc: Doc): string[] {
  return merchantUrls(doc)
    .filter(([, v]) => typeof v === 'string' && !/^https:\/\//i.test(v))
    .map(([k]) => `${k}: must be https`);
}

type ResolveAll = (host: string) => Promise<{ address: string }[]>;
/** At most 1 s: a save never waits on a slow resolver (the connect-time check still holds). */
const resolveAll: ResolveAll = (host) =>
  Promise.race([lookup(host, { all: true }), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('lookup timed out')), 1000).unref())]);

/**
 * The endpoints the outbound policy would refuse (src/security/outbound.ts), said at save time
 * rather than at the first call: a literal address, or a name that resolves to a refused one.
 * A name that does not resolve now is left to the check every connection makes.
 */
export async function refusedUrls(doc: Doc, policy: OutboundPolicy, resolve: ResolveAll = resolveAll): Promise<string[]> {
  if (policy.allowPrivateNetworks) return [];
  const out: string[] = [];
  const setting = '(outbound.allowPrivateNetworks or outbound.allowHosts)';
  for (const [field, value] of merchantUrls(doc)) {
    if (typeof value !== 'string' || !URL.canParse(value)) continue;
    const host = bareHost(new URL(value).hostname);
    const literal = isIP(host) !== 0;
    const addresses = literal ? [host] : (await resolve(host).catch(() => [])).map((a) => a.address);
    const refused = refusedAddress(host, addresses, policy);
    if (refused === undefined) continue;
    out.push(literal ? `${field}: ${refused} is not a public address ${setting}` : `${field}: ${host} resolves to ${refused}, not a public address ${setting}`);
  }
  return out;
}

export function createConfigOverlayService(deps: {
  db: Db;
  secrets: SecretBox;
  now: () => number;
  audit: AdminAudit;
  live: Pick<LiveConfig, 'file' | 'config'>;
  sync?: ConfigSync;
  /** Demo mode: the demo merchant's endpoints are plain http on this host. */
  allowHttp?: boolean;
  /** Where merchant endpoints may point (config `outbound`); unset: not checked here. */
  outbound?: OutboundPolicy;
  resolve?: ResolveAll;
}): ConfigOverlayService {
  const current = (kind: OverlayKind, id: string): Doc | undefined => {
    const list: readonly { id: string }[] = kind === 'merchant' ? deps.live.config.merchants : deps.live.config.officialAccounts;
    return list.find((x) => x.id === id) as Doc | undefined;
  };
  const inFile = (kind: OverlayKind, id: string) => (kind === 'merchant' ? deps.live.file.merchants : deps.live.file.officialAccounts).some((x) => x.id === id);
  const merchantOf = (kind: OverlayKind, id: string) => (kind === 'merchant' ? id : null);

  /** Validates the effective config with this change; returns the item as the schema reads it (defaults filled in). */
  async function check(tx: Queryable, kind: OverlayKind, id: string, doc: Doc | null): Promise<Doc | undefined> {
    const others = (await Q.listOverlayItems(tx, deps.secrets)).filter((o) => !(o.kind === kind && o.id === id));
    const overlay = doc ? [...others, { kind, id, doc }] : others;
    const eff = effectiveConfig(deps.live.file, overlay);
    if (eff.ok) return (kind === 'merchant' ? eff.items.merchants : eff.items.officialAccounts).find((x) => x.id === id) as Doc | undefined;
    // This item's place in the merged list (file items, then the overlay's own), so its
    // problems read as its own fields: "webhook.secret: required".
    const file: readonly { id: string }[] = kind === 'merchant' ? deps.live.file.merchants : deps.live.file.officialAccounts;
    const extra = overlay.filter((o) => o.kind === kind && !file.some((f) => f.id === o.id));
    const at = file.some((f) => f.id === id) ? file.findIndex((f) => f.id === id) : file.length + extra.findIndex((o) => o.id === id);
    const list = kind === 'merchant' ? 'merchants' : 'officialAccounts';
    const mine = eff.problems.map((p) => (p.path[0] === list && p.path[1] === at && p.path.length > 2 ? { ...p, path: p.path.slice(2) } : p));
    throw new AppError('request.invalid', mine.slice(0, 12).map(formatProblem).join('; '));
  }

  return {
    find: (kind, id) => Q.findOverlayItem(deps.db, deps.secrets, kind, id),
    list: () => Q.listOverlayItems(deps.db, deps.secrets),

    async save({ kind, id, doc: given, expectedVersion, who }) {
      const doc = stored(kind, given);
      if (doc.id !== id) throw new AppError('request.invalid', 'the id cannot change');
      const insecure = kind === 'merchant' && !deps.allowHttp ? insecureUrls(doc) : [];
      if (insecure.length) throw new AppError('request.invalid', insecure.join('; '));
      const refused = kind === 'merchant' && deps.outbound ? await refusedUrls(doc, deps.outbound, deps.resolve) : [];
      if (refused.length) throw new AppError('request.invalid', refused.join('; '));
      await deps.db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [OVERLAY_LOCK]);
        const row = await Q.findOverlayItem(tx, deps.secrets, kind, id, true);
        if (expectedVersion === null && (row || inFile(kind, id))) throw new AppError('request.conflict', `'${id}' exists already`);
        if (expectedVersion !== null && (row?.version ?? 0) !== expectedVersion)
          throw new AppError('request.conflict', 'Someone else saved this in the meantime. Open it again to see their change.');
        if (expectedVersion !== null && !row && !inFile(kind, id)) throw new AppError('request.not_found');
        const normal = stored(kind, (await check(tx, kind, id, doc)) ?? doc);
        const before = row?.doc ?? current(kind, id) ?? null;
        await Q.saveOverlayItem(tx, deps.secrets, { kind, id, doc: normal, expectedVersion: row ? row.version : null, actor: who.actor, at: new Date(deps.now()) });
        const op = expectedVersion === null ? 'created' : row ? 'updated' : 'overlaid';
        await deps.audit.record(who, { action: 'merchants.changed', merchantId: merchantOf(kind, id), detail: { kind, id, op }, ...changes(kind, before, normal) }, tx);
      });
      await deps.sync?.reload();
    },

    async revert({ kind, id, expectedVersion, who }) {
      if (!inFile(kind, id)) throw new AppError('request.invalid', 'only a config-file item can go back to the file’s version');
      await deps.db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [OVERLAY_LOCK]);
        const row = await Q.findOverlayItem(tx, deps.secrets, kind, id, true);
        if (!row || row.version !== expectedVersion) throw new AppError('request.conflict', 'Someone else saved this in the meantime. Open it again to see their change.');
        await check(tx, kind, id, null);
        await Q.deleteOverlayItem(tx, kind, id, expectedVersion);
        const fileDoc = (kind === 'merchant' ? deps.live.file.merchants : deps.live.file.officialAccounts).find((x) => x.id === id) as Doc | undefined;
        await deps.audit.record(who, { action: 'merchants.changed', merchantId: merchantOf(kind, id), detail: { kind, id, op: 'reverted' }, ...changes(kind, row.doc, fileDoc ?? null) }, tx);
      });
      await deps.sync?.reload();
    },
  };
}
