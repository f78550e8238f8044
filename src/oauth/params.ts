/**
 * Protocol parameters: an allow-list per endpoint, every parameter at most once (RFC 6749
 * §3.1, §3.2: "MUST NOT be included more than once"), unknown ones ignored as the RFC
 * requires, and empty values treated as absent (§3.1).
 */
import type { FormBody } from '../http/body.ts';
import { InvalidRequest } from './errors.ts';

export type Params<K extends string> = Partial<Record<K, string>>;

export function pickParams<K extends string>(form: FormBody, allowed: readonly K[], opts: { redirect?: boolean } = {}): Params<K> {
  const out: Params<K> = {};
  for (const k of allowed) {
    const v = form[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) throw new InvalidRequest(`${k} is repeated`, undefined, opts);
    if (v !== '') out[k] = v;
  }
  return out;
}

export const clientAuthParams = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;
