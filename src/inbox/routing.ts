/**
 * Which intent a text or a menu click means (DESIGN.md "Intents"): the merchant's `keywords`
 * and `menuKeys` of every merchant on the official account, and the built-in intents
 * `bind`, `my_accounts` and `help`. A merchant may map a keyword or key to a built-in name,
 * which then answers for that merchant only.
 *
 * Text matching, in order: the whole message equals a keyword (merchant keywords before
 * built-ins, merchants in config order); else the longest keyword of two or more characters
 * contained in the message ("我的余额是多少" → 余额). Case, width and surrounding space are
 * ignored (NFKC, lower case).
 */
import type { MerchantConfig } from '../config/index.ts';

export const BUILTIN_INTENTS = ['bind', 'my_accounts', 'help'] as const;
export type BuiltinIntent = (typeof BUILTIN_INTENTS)[number];

export type Route =
  | { kind: 'builtin'; name: BuiltinIntent; merchant?: MerchantConfig }
  | { kind: 'intent'; intent: string; merchant: MerchantConfig }
  | { kind: 'none' };

const BUILTIN_KEYWORDS: Record<string, BuiltinIntent> = {
  绑定: 'bind',
  绑定账户: 'bind',
  bind: 'bind',
  link: 'bind',
  我的账户: 'my_accounts',
  我的账号: 'my_accounts',
  我的绑定: 'my_accounts',
  'my accounts': 'my_accounts',
  accounts: 'my_accounts',
  帮助: 'help',
  help: 'help',
  '?': 'help',
  菜单: 'help',
  menu: 'help',
};

const BUILTIN_MENU_KEYS: Record<string, BuiltinIntent> = { BIND: 'bind', MY_ACCOUNTS: 'my_accounts', HELP: 'help' };

const isBuiltin = (name: string): name is BuiltinIntent => (BUILTIN_INTENTS as readonly string[]).includes(name);

export const normalize = (s: string): string => s.normalize('NFKC').trim().toLowerCase().replace(/\s+/g, ' ');

interface Entry {
  keyword: string;
  route: Exclude<Route, { kind: 'none' }>;
}

function toRoute(name: string, merchant?: MerchantConfig): Entry['route'] {
  if (isBuiltin(name)) return { kind: 'builtin', name, ...(merchant ? { merchant } : {}) };
  return { kind: 'intent', intent: name, merchant: merchant as MerchantConfig };
}

export interface IntentRouter {
  byText(accountId: string, text: string): Route;
  byMenuKey(accountId: string, key: string): Route;
  /** The merchants answering on an official account, in config order. */
  merchantsOf(accountId: string): MerchantConfig[];
  /** Keywords worth listing in the help text. */
  keywordsOf(accountId: string): string[];
}

export function createIntentRouter(merchants: readonly MerchantConfig[]): IntentRouter {
  const textEntries = new Map<string, Entry[]>();
  const menuEntries = new Map<string, Map<string, Entry['route']>>();
  const byAccount = new Map<string, MerchantConfig[]>();

  for (const m of merchants) {
    const list = byAccount.get(m.officialAccount) ?? [];
    list.push(m);
    byAccount.set(m.officialAccount, list);
  }
  for (const [accountId, list] of byAccount) {
    const entries: Entry[] = [];
    const menu = new Map<string, Entry['route']>();
    for (const m of list) {
      for (const [kw, name] of Object.entries(m.intents?.keywords ?? {})) entries.push({ keyword: normalize(kw), route: toRoute(name, m) });
      for (const [key, name] of Object.entries(m.intents?.menuKeys ?? {})) if (!menu.has(key)) menu.set(key, toRoute(name, m));
    }
    for (const [kw, name] of Object.entries(BUILTIN_KEYWORDS)) entries.push({ keyword: normalize(kw), route: toRoute(name) });
    for (const [key, name] of Object.entries(BUILTIN_MENU_KEYS)) if (!menu.has(key)) menu.set(key, toRoute(name));
    textEntries.set(accountId, entries);
    menuEntries.set(accountId, menu);
  }

  return {
    byText(accountId, text) {
      const t = normalize(text);
      const entries = textEntries.get(accountId) ?? [];
      const exact = entries.find((e) => e.keyword === t);
      if (exact) return exact.route;
      let best: Entry | undefined;
      for (const e of entries) {
        if (e.keyword.length >= 2 && t.includes(e.keyword) && (!best || e.keyword.length > best.keyword.length)) best = e;
      }
      return best?.route ?? { kind: 'none' };
    },
    byMenuKey(accountId, key) {
      return menuEntries.get(accountId)?.get(key) ?? { kind: 'none' };
    },
    merchantsOf: (accountId) => byAccount.get(accountId) ?? [],
    keywordsOf(accountId) {
      return (byAccount.get(accountId) ?? []).flatMap((m) => Object.keys(m.intents?.keywords ?? {})).slice(0, 10);
    },
  };
}
