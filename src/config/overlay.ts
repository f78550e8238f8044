/**
 * The live configuration: the config file plus the merchants and official accounts made or
 * edited in the admin UI (DESIGN.md "Declarative config": "objects made in the admin UI
 * live beside it"). An overlay row replaces the file's item of the same id, or adds one;
 * the result is validated by the config file's own schema (cross-references included), so
 * the UI can never produce a config the file could not.
 *
 * Features read `config.merchants` / `config.officialAccounts` at request time; those two
 * arrays are replaced in place when the overlay changes, on every instance (the sync loop
 * below polls a fingerprint of the overlay table), and `onChange` listeners rebuild what a
 * feature derived from them at start.
 */
import { fileConfigSchema, type MerchantConfig, type OfficialAccountConfig } from './schema.ts';
import { deepFreeze, type AppConfig } from './load.ts';

export type OverlayKind = 'merchant' | 'official_account';

/** An overlay item with its secrets opened: a document of the config file's shape. */
export interface OverlayItem {
  kind: OverlayKind;
  id: string;
  doc: Record<string, unknown>;
  version: number;
  updatedBy: string;
  updatedAt: Date;
}

export interface ConfigItems {
  officialAccounts: readonly OfficialAccountConfig[];
  merchants: readonly MerchantConfig[];
}

type Doc = Record<string, unknown>;
const isDoc = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Where each kind keeps its secrets, as dotted paths. Linking methods are keyed by their
 * type (unique per merchant), not their position, so reordering keeps them.
 */
const SECRET_FIELDS: Record<OverlayKind, readonly string[]> = {
  official_account: ['appSecret', 'token', 'encodingAesKey', 'previousEncodingAesKey', 'websiteApp.appSecret'],
  merchant: ['linking.oidc.clientSecret', 'linking.verify-api.secret', 'webhook.secret', 'intents.secret'],
};

/** The parent object holding a secret path's last key, per the rules above; creates nothing. */
function* secretSlots(kind: OverlayKind, doc: Doc): Generator<{ path: string; parent: Doc; key: string }> {
  for (const field of SECRET_FIELDS[kind]) {
    const parts = field.split('.');
    const key = parts.pop() as string;
    if (parts[0] === 'linking') {
      const method = (Array.isArray(doc.linking) ? doc.linking : []).find((l): l is Doc => isDoc(l) && l.type === parts[1]);
      if (method) yield { path: field, parent: method, key };
    } else {
      const parent = parts.length ? doc[parts[0] as string] : doc;
      if (isDoc(parent)) yield { path: field, parent, key };
    }
  }
}

/** A deep copy of `doc` without its secrets, and the secrets by path. */
export function splitSecrets(kind: OverlayKind, doc: Doc): { plain: Doc; secrets: Record<string, string> } {
  const plain = structuredClone(doc);
  const secrets: Record<string, string> = {};
  for (const s of secretSlots(kind, plain)) {
    const v = s.parent[s.key];
    if (typeof v === 'string') secrets[s.path] = v;
    delete s.parent[s.key];
  }
  return { plain, secrets };
}

/** The inverse of splitSecrets. */
export function joinSecrets(kind: OverlayKind, plain: Doc, secrets: Record<string, string>): Doc {
  const doc = structuredClone(plain);
  for (const s of secretSlots(kind, doc)) if (secrets[s.path] !== undefined) s.parent[s.key] = secrets[s.path];
  return doc;
}

/** The secret paths of a document that have a value: what a page may say is "set". */
export function secretsSet(kind: OverlayKind, doc: Doc): Set<string> {
  return new Set(Object.keys(splitSecrets(kind, doc).secrets));
}

export interface Problem {
  path: PropertyKey[];
  message: string;
}
export type Effective = { ok: true; items: ConfigItems } | { ok: false; problems: Problem[] };

/** `merchants.2.webhook.secret: required` (zod's wording for a missing value made plain). */
export const formatProblem = (p: Problem): string => `${p.path.map(String).join('.') || '(root)'}: ${/received undefined/.test(p.message) ? 'required' : p.message}`;

/**
 * File items, each replaced by its overlay, then the overlay-only items; validated as a
 * config file. A merchant's `clients` always come from the file (clients made in the UI
 * live in admin_clients), so an overlay never holds, or shadows, a file client's secret.
 */
export function effectiveConfig(file: ConfigItems, overlay: readonly Pick<OverlayItem, 'kind' | 'id' | 'doc'>[]): Effective {
  const merge = <T extends { id: string }>(base: readonly T[], kind: OverlayKind, fix: (doc: Doc, fileItem: T | undefined) => Doc): unknown[] => {
    const mine = overlay.filter((o) => o.kind === kind);
    const byId = new Map(mine.map((o) => [o.id, o.doc]));
    const over = (b: T) => byId.get(b.id);
    return [...base.map((b) => { const o = over(b); return o ? fix(o, b) : b; }), ...mine.filter((o) => !base.some((b) => b.id === o.id)).map((o) => fix(o.doc, undefined))];
  };
  const parsed = fileConfigSchema.safeParse({
    officialAccounts: merge(file.officialAccounts, 'official_account', (d) => d),
    merchants: merge(file.merchants, 'merchant', (d, f) => ({ ...d, clients: f?.clients ?? [] })),
  });
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })) };
  return { ok: true, items: { officialAccounts: parsed.data.officialAccounts.map((a) => deepFreeze(a)), merchants: parsed.data.merchants.map((m) => deepFreeze(m)) } };
}

export interface LiveConfig {
  /** Frozen, except that its two item arrays are replaced in place by `apply`. */
  readonly config: AppConfig;
  /** The config file's own items, as loaded. */
  readonly file: ConfigItems;
  apply(items: ConfigItems): void;
  /** Called after every change, with the new items: rebuild what was derived from them. */
  onChange(listener: (items: ConfigItems) => void): void;
}

export function createLiveConfig(base: AppConfig): LiveConfig {
  const officialAccounts = [...base.officialAccounts];
  const merchants = [...base.merchants];
  const config: AppConfig = Object.freeze({ ...base, officialAccounts, merchants });
  const listeners: ((items: ConfigItems) => void)[] = [];
  return {
    config,
    file: { officialAccounts: base.officialAccounts, merchants: base.merchants },
    apply(items) {
      officialAccounts.splice(0, officialAccounts.length, ...items.officialAccounts);
      merchants.splice(0, merchants.length, ...items.merchants);
      for (const l of listeners) l(items);
    },
    onChange: (l) => void listeners.push(l),
  };
}
