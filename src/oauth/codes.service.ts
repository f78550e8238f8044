/**
 * Authorization codes (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.2.4, §4.5): 256-bit random,
 * kept in Kv under a digest of the code for at most 60 s, bound to the client, the exact
 * redirect_uri, the PKCE challenge and the binding chosen. Single use: consuming writes a
 * marker atomically (SET NX) holding what the exchange is about to issue (the access
 * token's jti, the refresh family), so a replay — even a concurrent one — can revoke it.
 */
import { z } from 'zod';
import { randomId } from '../security/secrets.ts';
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';

const codeRecordSchema = z.object({
  clientId: z.string(),
  redirectUri: z.string(),
  codeChallenge: z.string(),
  scopes: z.array(z.string()),
  nonce: z.string().optional(),
  identityId: z.string(),
  bindingId: z.string(),
  authTime: z.number().int(),
  amr: z.array(z.string()),
  expiresAt: z.number(),
  /** Chosen now so that a replay can name what the first exchange issued. */
  jti: z.string(),
  familyId: z.string(),
});
export type CodeRecord = z.infer<typeof codeRecordSchema>;

const usedSchema = z.object({ jti: z.string(), familyId: z.string(), exp: z.number(), replayed: z.boolean().optional() });
export type UsedCode = z.infer<typeof usedSchema>;

export interface CodesService {
  issue(r: Omit<CodeRecord, 'expiresAt' | 'jti' | 'familyId'>): Promise<string>;
  load(code: string): Promise<CodeRecord | null>;
  /** What a consumed code issued, if it was consumed (for replay revocation). */
  used(code: string): Promise<UsedCode | null>;
  /** Atomic single use. False: someone consumed it first. */
  consume(code: string, record: CodeRecord, accessExp: number): Promise<boolean>;
  /** Flags a consumed code as replayed, so a still-running first exchange revokes itself. */
  markReplayed(code: string, used: UsedCode): Promise<void>;
}

/** Long enough to revoke the first exchange's access token for its whole life. */
const USED_TTL_MS = 3600_000 + 60_000;

function parse<T>(schema: z.ZodType<T>, raw: string | null): T | null {
  if (raw === null) return null;
  try {
    const r = schema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export function createCodesService(deps: { kv: Kv; now: () => number }): CodesService {
  return {
    async issue(r) {
      const code = randomId(32);
      const record: CodeRecord = { ...r, expiresAt: deps.now() + ttl.authCode, jti: randomId(16), familyId: crypto.randomUUID() };
      await deps.kv.set(keyspace.oauth.authCode(code), JSON.stringify(record), ttl.authCode);
      return code;
    },
    load: async (code) => parse(codeRecordSchema, await deps.kv.get(keyspace.oauth.authCode(code))),
    used: async (code) => parse(usedSchema, await deps.kv.get(keyspace.oauth.usedAuthCode(code))),
    async consume(code, record, accessExp) {
      const used: UsedCode = { jti: record.jti, familyId: record.familyId, exp: accessExp };
      const won = await deps.kv.setIfAbsent(keyspace.oauth.usedAuthCode(code), JSON.stringify(used), USED_TTL_MS);
      if (won) await deps.kv.del(keyspace.oauth.authCode(code));
      return won;
    },
    async markReplayed(code, used) {
      await deps.kv.set(keyspace.oauth.usedAuthCode(code), JSON.stringify({ ...used, replayed: true }), USED_TTL_MS);
    },
  };
}
