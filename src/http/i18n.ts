/**
 * Locale choice for pages: zh-CN first (WeChat's users), English by Accept-Language or
 * an explicit `?lang=`. Features keep their own message tables; this only picks.
 */
export type Locale = 'zh-CN' | 'en';

export function pickLocale(acceptLanguage: string | undefined, explicit?: string): Locale {
  if (explicit === 'en' || explicit === 'zh-CN') return explicit;
  if (!acceptLanguage) return 'zh-CN';
  const ranked = acceptLanguage
    .split(',')
    .map((part) => {
      const [tag = '', q] = part.trim().split(';q=');
      return { tag: tag.toLowerCase(), q: q ? Number(q) : 1 };
    })
    .filter((x) => x.tag && Number.isFinite(x.q))
    .sort((a, b) => b.q - a.q);
  for (const { tag } of ranked) {
    if (tag.startsWith('zh')) return 'zh-CN';
    if (tag.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

export type Messages<K extends string> = Record<Locale, Record<K, string>>;

/** A translator over one feature's table; `{name}` placeholders are filled from `vars`. */
export function translator<K extends string>(messages: Messages<K>, locale: Locale) {
  return (key: K, vars?: Record<string, string | number>): string => {
    const text = messages[locale][key] ?? messages['zh-CN'][key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, n: string) => (n in vars ? String(vars[n]) : m)) : text;
  };
}
