/**
 * The linking domain's public types: what other features (oauth, inbox, notices, admin)
 * may rely on. The implementation behind them lives in this folder.
 */

export type ProofMethod = 'oidc' | 'verify-api' | 'binding-code' | 'admin' | 'import';

export interface Identity {
  id: string;
  appId: string;
  openid: string;
  unionid: string | null;
  nickname: string | null;
  avatarUrl: string | null;
  subscribed: boolean | null;
  lastInteractionAt: Date | null;
  lastLocation: { latitude: number; longitude: number; precision?: number; at: string } | null;
  tags: string[];
  createdAt: Date;
}

export interface Binding {
  id: string;
  merchantId: string;
  identityId: string;
  accountId: string;
  accountDisplay: string | null;
  status: 'active' | 'revoked';
  isDefault: boolean;
  proof: ProofMethod;
  provenAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  revokeReason: string | null;
  createdAt: Date;
}

/** The end user's browser session after WeChat login (server-side, in Kv). */
export interface EndUserSession {
  id: string;
  identityId: string;
  appId: string;
  /** Unix seconds of the WeChat authorization. */
  authTime: number;
  /** WeChat scopes granted in that authorization. */
  scopes: string[];
}

/** Queries and commands other features use (transport-free). */
export interface LinkingService {
  getIdentity(id: string): Promise<Identity | null>;
  findIdentity(appId: string, openid: string): Promise<Identity | null>;
  /** Pairwise subject of an identity at a merchant; created on first use, stable after. */
  subjectFor(identityId: string, merchantId: string): Promise<string>;
  findBySubject(merchantId: string, sub: string): Promise<{ identityId: string } | null>;
  getBinding(id: string): Promise<Binding | null>;
  listBindings(p: { merchantId: string; identityId?: string; accountId?: string; status?: 'active' | 'revoked' }): Promise<Binding[]>;
  revokeBinding(p: { bindingId: string; merchantId: string; actor: string; reason: string; source?: string }): Promise<Binding>;
}

/** A person proved they own a merchant account; what linking it did. */
export type LinkResult =
  | { ok: true; binding: Binding; created: boolean }
  /** `conflict`: linked to another WeChat user under `exclusive`; `limit_reached`: maxAccountsPerUser. */
  | { ok: false; reason: 'conflict' | 'limit_reached' };

export interface LinkRequest {
  merchantId: string;
  identityId: string;
  account: { id: string; display: string | null };
  proof: ProofMethod;
  /** Who did it: `user:<identityId>`, `merchant:<clientId>`, `admin:<id>`. */
  actor: string;
  /** Where: `web`, `api`, `push`, `admin`. */
  source: string;
}

/** What `redeemBindingCode` says; the message handler turns it into a reply. */
export type RedeemResult =
  | { ok: true; binding: Binding; created: boolean; merchantId: string }
  /** `too_many`: this user failed too many codes within the hour (brute-force guard). */
  | { ok: false; reason: 'invalid_code' | 'conflict' | 'limit_reached' | 'too_many' };
