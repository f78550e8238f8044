/**
 * The admin feature's transport-free services, built from core deps: one factory the
 * feature, the CLI and tests share, so none of them wires the services differently.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.ts';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db } from '../store/db.ts';
import type { Kv } from '../store/kv.ts';
import { createAccountsService, type AccountsService } from './accounts.service.ts';
import { createAdminAudit, type AdminAudit } from './audit.service.ts';
import { createClientsService, type ClientsService } from './clients.service.ts';
import { createSessionsService, type SessionsService } from './sessions.service.ts';
import { defaultAdminPolicy, type AdminPolicy } from './settings.ts';
import { createSignInService, type SignInService } from './signin.service.ts';

export interface AdminServiceDeps {
  config: AppConfig;
  db: Db;
  kv: Kv;
  log: Logger;
  now: () => number;
  secrets: SecretBox;
}

export interface AdminServices {
  policy: AdminPolicy;
  audit: AdminAudit;
  sessions: SessionsService;
  signin: SignInService;
  accounts: AccountsService;
  clients: ClientsService;
}

export function createAdminServices(d: AdminServiceDeps, policy: AdminPolicy = defaultAdminPolicy): AdminServices {
  const audit = createAdminAudit({ db: d.db, now: d.now });
  const sessions = createSessionsService({ db: d.db, now: d.now, policy });
  const signin = createSignInService({ db: d.db, kv: d.kv, log: d.log, now: d.now, secrets: d.secrets, policy, sessions, audit, issuer: `wxbridge ${new URL(d.config.publicUrl).host}` });
  // Read at call time: merchants made in the admin UI appear in config.merchants while running.
  const accounts = createAccountsService({ db: d.db, now: d.now, audit, sessions, merchantExists: (id) => d.config.merchants.some((m) => m.id === id) });
  const clients = createClientsService({ db: d.db, now: d.now, audit, merchants: d.config.merchants });
  return { policy, audit, sessions, signin, accounts, clients };
}
