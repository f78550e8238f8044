/** The programmatic surface of the sandbox, shared by `sandbox.ts`, the control API and the pages. */
import type { FaultSpec } from './faults.ts';
import type { CreateUserInput, RegisterAppInput, UpdateAppInput } from './directory.ts';
import type { RegisterWebsiteAppInput } from './qrconnect.service.ts';
import type { UserAction } from './interactions.ts';
import type { UrlVerification } from './pusher.ts';
import type { AuthorizePageError } from './web-auth.service.ts';
import type {
  CallRecord,
  DeliveredKind,
  DeliveredMessage,
  PushResult,
  Relation,
  SandboxApp,
  SandboxWebsiteApp,
  SandboxLimits,
  SandboxState,
  SandboxUser,
} from './state.ts';

export interface MessageFilter {
  appId?: string;
  userId?: string;
  openid?: string;
  kind?: DeliveredKind;
}

export interface PushFilter {
  appId?: string;
  userId?: string;
}

export interface AuthorizeInput {
  appid: string;
  redirect_uri: string;
  response_type?: string;
  scope: string;
  state?: string;
  userId: string;
  decision?: 'allow' | 'decline';
  /** Overrides the app's double-redirect switch for this authorization. */
  doubleRedirect?: boolean;
}

/** A phone scanning a website app's QR login (§1.10), as `connect/qrconnect` would show it. */
export interface QrConnectInput {
  appid: string;
  redirect_uri: string;
  response_type?: string;
  scope?: string;
  state?: string;
  lang?: 'cn' | 'en';
  userId: string;
  decision?: 'allow' | 'decline';
}

export interface AuthorizeResult {
  /** Where the browser would be sent (code + state, or state only when declined). */
  location: string;
  /** `[location]`, or `[location, location]` when WeChat would redirect twice. */
  redirects: string[];
  code?: string;
}

/** The authorize link failed WeChat's checks; the page would show `pageError`. */
export class AuthorizeRejected extends Error {
  constructor(readonly pageError: AuthorizePageError) {
    super(`${pageError.code ?? ''} ${pageError.message}: ${pageError.detail}`.trim());
    this.name = 'AuthorizeRejected';
  }
}

/** A user as the control API shows them: their ids and relation to each account. */
export interface UserDescription extends SandboxUser {
  accounts: Array<{
    appId: string;
    openid: string;
    unionid?: string;
    following: boolean;
    blacklisted: boolean;
    messagesOff: boolean;
    window: { message?: { remaining: number; expiresAt: number }; event?: { remaining: number; expiresAt: number } };
  }>;
}

export interface SandboxControl {
  readonly state: SandboxState;
  now(): number;
  registerApp(a: RegisterAppInput): SandboxApp;
  updateApp(appId: string, patch: UpdateAppInput): SandboxApp;
  createUser(u?: CreateUserInput): SandboxUser;
  describeUser(userId: string): UserDescription;
  /** The openid of a user for an account (real, never the snapshot one). */
  openid(appId: string, userId: string): string;
  setRelation(appId: string, userId: string, patch: { blacklisted?: boolean; messagesOff?: boolean }): Relation;
  optIn(appId: string, userId: string, templateId: string, longTerm?: boolean): void;
  push(p: { appId: string; userId: string; message: Record<string, unknown> }): Promise<PushResult>;
  /** The console's "save server URL" check: signed GET with echostr (§5.2). */
  verifyPushUrl(appId: string): Promise<UrlVerification>;
  /** A person does something in WeChat: text, voice, click, follow, unfollow, scan, location… */
  act(appId: string, userId: string, action: UserAction): Promise<PushResult>;
  authorize(a: AuthorizeInput): AuthorizeResult;
  /** An Open Platform website app (§1.10): QR login and sns/* with its own appid/secret. */
  registerWebsiteApp(a: RegisterWebsiteAppInput): SandboxWebsiteApp;
  /** The QR page opened with these parameters, scanned and answered by `userId`'s phone. */
  qrConnect(a: QrConnectInput): { location: string; code?: string };
  inject(f: FaultSpec): void;
  clearFaults(): void;
  messages(filter?: MessageFilter): DeliveredMessage[];
  pushes(filter?: PushFilter): PushResult[];
  calls(path?: string): CallRecord[];
  setLimits(patch: Partial<SandboxLimits>): SandboxLimits;
  /** Moves the sandbox clock forward (added to the injected clock). */
  advanceClock(ms: number): void;
  /** Resolves when background pushes (e.g. TEMPLATESENDJOBFINISH) have settled. */
  idle(): Promise<void>;
  reset(): void;
}
