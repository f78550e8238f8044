/**
 * OAuth clients made in the admin UI. Secrets are write-only: made here from 256 random
 * bits, returned once to be shown once, stored as a scrypt hash (DESIGN.md: "client
 * secrets are stored hashed"). Redirect URIs are exact strings (RFC 9700 §2.1), https
 * except on loopback; the rules match the config file's, so both kinds of client are alike.
 */
import type { MerchantConfig } from '../config/index.ts';
import { merchantScopes } from '../config/schema.ts';
import { AppError } from '../http/errors.ts';
import { redirectUriProblem } from '../security/redirect-uri.ts';
import { hashSecret, randomId } from '../security/secrets.ts';
import type { Db } from '../store/db.ts';
import type { ActorRef, AdminAudit } from './audit.service.ts';
import * as Q from './clients.queries.ts';

export const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const clientScopes = [...merchantScopes, 'openid', 'profile', 'offline_access'] as const;

export interface ClientInput {
  grantTypes: string[];
  redirectUris: string[];
  scopes: string[];
  accessTokenTtl: number;
}

/** Every problem with the input, or none. */
export function clientProblems(c: ClientInput): string[] {
  const out: string[] = [];
  if (c.grantTypes.length === 0) out.push('choose at least one grant type');
  for (const g of c.grantTypes) if (!(grantTypes as readonly string[]).includes(g)) out.push(`unknown grant type '${g}'`);
  for (const s of c.scopes) if (!(clientScopes as readonly string[]).includes(s)) out.push(`unknown scope '${s}'`);
  if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) out.push('authorization_code needs at least one redirect URI');
  if (c.grantTypes.includes('refresh_token') && !c.grantTypes.includes('authorization_code')) out.push('refresh_token needs authorization_code');
  for (const u of c.redirectUris) {
    const problem = redirectUriProblem(u, { requireHttps: true });
    if (problem) out.push(`${problem}: ${u.slice(0, 80)}`);
  }
  if (!Number.isInteger(c.accessTokenTtl) || c.accessTokenTtl < 60 || c.accessTokenTtl > 3600) out.push('access token lifetime must be 60–3600 seconds');
  return out;
}

const flat = (c: ClientInput) => ({ grants: c.grantTypes.join(' '), scopes: c.scopes.join(' '), redirectUris: c.redirectUris.join(' '), ttl: c.accessTokenTtl });

export interface ClientsService {
  create(p: { merchantId: string; clientId: string; input: ClientInput; who: ActorRef }): Promise<{ secret: string }>;
  update(p: { client: Q.UiClientRow; input: ClientInput; disabled: boolean; who: ActorRef }): Promise<void>;
  newSecret(p: { client: Q.UiClientRow; who: ActorRef }): Promise<{ secret: string }>;
}

export function createClientsService(deps: { db: Db; now: () => number; audit: AdminAudit; merchants: readonly MerchantConfig[] }): ClientsService {
  const at = () => new Date(deps.now());
  const refuse = (problems: string[]) => {
    if (problems.length) throw new AppError('request.invalid', problems.join('; '));
  };
  return {
    async create({ merchantId, clientId, input, who }) {
      const problems = clientProblems(input);
      if (!/^[A-Za-z0-9._-]{3,64}$/.test(clientId)) problems.unshift('client id must be 3–64 characters of A-Z a-z 0-9 . _ -');
      if (deps.merchants.some((m) => m.clients.some((c) => c.clientId === clientId))) problems.unshift('a client of the config file has this id');
      refuse(problems);
      const secret = randomId(32);
      const ok = await deps.db.transaction(async (tx) => {
        const inserted = await Q.insertUiClient(tx, { ...input, clientId, merchantId, secretHash: await hashSecret(secret), createdBy: who.actor, at: at() });
        if (inserted) await deps.audit.record(who, { action: 'clients.changed', merchantId, detail: { client: clientId, op: 'created' }, after: flat(input) }, tx);
        return inserted;
      });
      if (!ok) throw new AppError('request.conflict', 'a client with this id exists');
      return { secret };
    },

    async update({ client, input, disabled, who }) {
      refuse(clientProblems(input));
      const before = { grantTypes: client.grant_types, redirectUris: client.redirect_uris, scopes: client.scopes, accessTokenTtl: client.access_token_ttl };
      await deps.db.transaction(async (tx) => {
        await Q.updateUiClient(tx, client.client_id, { ...input, disabled, at: at() });
        await deps.audit.record(
          who,
          { action: 'clients.changed', merchantId: client.merchant_id, detail: { client: client.client_id, op: 'updated' }, before: { ...flat(before), disabled: client.disabled_at !== null }, after: { ...flat(input), disabled } },
          tx,
        );
      });
    },

    async newSecret({ client, who }) {
      const secret = randomId(32);
      const hash = await hashSecret(secret);
      await deps.db.transaction(async (tx) => {
        await Q.setUiClientSecret(tx, client.client_id, hash, at());
        await deps.audit.record(who, { action: 'clients.changed', merchantId: client.merchant_id, detail: { client: client.client_id, op: 'secret_replaced' } }, tx);
      });
      return { secret };
    },
  };
}
