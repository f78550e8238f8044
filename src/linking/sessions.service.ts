/**
 * End-user sessions after WeChat login: server-side records in the Kv (ASVS 7.2.1), a
 * fresh 256-bit id per login (7.2.3, 7.2.4), an absolute lifetime (7.3.2) and server-side
 * logout (7.4.1). The cookie that carries the id is handled by the routes.
 */
import { z } from 'zod';
import { randomId } from '../security/secrets.ts';
import { keyspace, ttl } from '../store/keyspace.ts';
import type { Kv } from '../store/kv.ts';
import { parseStored } from '../store/rows.ts';
import type { EndUserSession } from './types.ts';

const sessionSchema = z.object({
  identityId: z.string(),
  appId: z.string(),
  authTime: z.number().int(),
  scopes: z.array(z.string()),
});

export interface SessionsService {
  create(s: Omit<EndUserSession, 'id'>): Promise<string>;
  get(id: string): Promise<EndUserSession | null>;
  destroy(id: string): Promise<void>;
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/;

export function createSessionsService(deps: { kv: Kv }): SessionsService {
  return {
    async create(s) {
      const id = randomId(32);
      await deps.kv.set(keyspace.linking.session(id), JSON.stringify(sessionSchema.parse(s)), ttl.session);
      return id;
    },
    async get(id) {
      if (!ID_RE.test(id)) return null;
      const stored = parseStored(sessionSchema, await deps.kv.get(keyspace.linking.session(id)));
      return stored ? { id, ...stored } : null;
    },
    async destroy(id) {
      if (ID_RE.test(id)) await deps.kv.del(keyspace.linking.session(id));
    },
  };
}
