/**
 * Official accounts, simulated people and the relation between them (follow state,
 * blacklist, "refuse messages", opt-ins). Transport-free: the control API, the pages and
 * the programmatic `Sandbox` methods all call these.
 */
import { z } from 'zod';
import { AppError } from '../http/errors.ts';
import { openidFor } from './ids.ts';
import { parseOrThrow } from './validate.ts';
import type { Relation, SandboxApp, SandboxState, SandboxUser } from './state.ts';
import { relationKey } from './state.ts';

const menuItemSchema = z
  .object({
    key: z.string().min(1).max(128),
    name: z.string().min(1).max(60),
    type: z.enum(['click', 'view']).default('click'),
    url: z.url().optional(),
  })
  .strict();

const appFields = {
  appSecret: z.string().min(1).max(64),
  /** The push Token: 3–32 letters or digits (MP console rule). */
  token: z.string().regex(/^[A-Za-z0-9]{3,32}$/),
  encodingAesKey: z.string().regex(/^[A-Za-z0-9]{43}$/).optional(),
  mode: z.enum(['plain', 'compat', 'safe']),
  originalId: z.string().min(1).max(64),
  name: z.string().min(1).max(60).optional(),
  pushUrl: z.url().optional(),
  redirectDomains: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'a bare domain, no scheme, port or path')),
  allowPortsInRedirect: z.boolean().optional(),
  openPlatformId: z.string().min(1).optional(),
  templates: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
  verified: z.boolean().optional(),
  doubleRedirect: z.boolean().optional(),
  unionIdInBaseScope: z.boolean().optional(),
  ipWhitelist: z.array(z.string().min(1)).optional(),
  menu: z.array(menuItemSchema).max(15).optional(),
};

export const registerAppSchema = z
  .object({ appId: z.string().regex(/^[A-Za-z0-9_-]{3,64}$/), ...appFields })
  .strict()
  .refine((a) => a.mode === 'plain' || a.encodingAesKey !== undefined, 'compat/safe mode needs encodingAesKey');
export type RegisterAppInput = z.input<typeof registerAppSchema>;

/** A patch; `null` clears an optional setting (e.g. `pushUrl: null` unconfigures the push). */
export const updateAppSchema = z
  .object({
    ...appFields,
    encodingAesKey: appFields.encodingAesKey.unwrap().nullable(),
    pushUrl: appFields.pushUrl.unwrap().nullable(),
    openPlatformId: appFields.openPlatformId.unwrap().nullable(),
    ipWhitelist: appFields.ipWhitelist.unwrap().nullable(),
  })
  .partial()
  .strict();
export type UpdateAppInput = z.input<typeof updateAppSchema>;

export const createUserSchema = z
  .object({
    userId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
    nickname: z.string().max(64).optional(),
    avatarUrl: z.union([z.url(), z.literal('')]).optional(),
    followsApps: z.array(z.string()).optional(),
    hasUnionId: z.boolean().optional(),
    snapshot: z.boolean().optional(),
  })
  .strict();
export type CreateUserInput = z.input<typeof createUserSchema>;

export const relationPatchSchema = z
  .object({ blacklisted: z.boolean().optional(), messagesOff: z.boolean().optional() })
  .strict();

const defaultMenu = (): SandboxApp['menu'] => [
  { key: 'MY_BILL', name: '我的账单 Bill', type: 'click' },
  { key: 'MY_ACCOUNTS', name: '我的绑定 Links', type: 'click' },
];

export function registerApp(state: SandboxState, input: RegisterAppInput, salt: string): SandboxApp {
  const a = parseOrThrow(registerAppSchema, input);
  const app: SandboxApp = {
    appId: a.appId,
    appSecret: a.appSecret,
    token: a.token,
    encodingAesKey: a.encodingAesKey,
    mode: a.mode,
    originalId: a.originalId,
    name: a.name ?? a.originalId,
    pushUrl: a.pushUrl,
    redirectDomains: a.redirectDomains,
    allowPortsInRedirect: a.allowPortsInRedirect ?? false,
    openPlatformId: a.openPlatformId,
    templates: new Map(Object.entries(a.templates ?? {})),
    verified: a.verified ?? true,
    doubleRedirect: a.doubleRedirect ?? false,
    unionIdInBaseScope: a.unionIdInBaseScope ?? false,
    ipWhitelist: a.ipWhitelist,
    menu: a.menu ?? defaultMenu(),
  };
  state.apps.set(app.appId, app);
  for (const user of state.users.values()) relationOf(state, app.appId, user.userId, salt);
  return app;
}

export function updateApp(state: SandboxState, appId: string, patch: UpdateAppInput): SandboxApp {
  const app = requireApp(state, appId);
  const p = parseOrThrow(updateAppSchema, patch);
  const { templates, ...rest } = p;
  const target = app as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) target[k] = v === null ? undefined : v;
  if (templates) app.templates = new Map(Object.entries(templates));
  if (app.mode !== 'plain' && !app.encodingAesKey) throw new AppError('request.invalid', 'compat/safe mode needs encodingAesKey');
  return app;
}

export function createUser(state: SandboxState, input: CreateUserInput, salt: string, now: number): SandboxUser {
  const u = parseOrThrow(createUserSchema, input);
  state.seq.user += 1;
  const userId = u.userId ?? `u${state.seq.user}`;
  if (state.users.has(userId)) throw new AppError('request.conflict', `user ${userId} exists`);
  for (const appId of u.followsApps ?? []) requireApp(state, appId);
  const user: SandboxUser = {
    userId,
    nickname: u.nickname?.trim() || `微信用户${state.seq.user}`,
    avatarUrl: u.avatarUrl ?? '',
    hasUnionId: u.hasUnionId ?? true,
    snapshot: u.snapshot ?? false,
    createdAt: now,
  };
  state.users.set(userId, user);
  for (const app of state.apps.values()) relationOf(state, app.appId, userId, salt);
  // Seeded followers: a state, not an interaction, so no push and no CS window.
  for (const appId of u.followsApps ?? []) setFollowing(state, relationOf(state, appId, userId, salt), true, now, 'ADD_SCENE_OTHERS');
  return user;
}

export function requireApp(state: SandboxState, appId: string): SandboxApp {
  const app = state.apps.get(appId);
  if (!app) throw new AppError('request.not_found', `unknown app ${appId}`);
  return app;
}

export function requireUser(state: SandboxState, userId: string): SandboxUser {
  const user = state.users.get(userId);
  if (!user) throw new AppError('request.not_found', `unknown user ${userId}`);
  return user;
}

/** The relation of a user to an account, created on first sight (everyone has an openid). */
export function relationOf(state: SandboxState, appId: string, userId: string, salt: string): Relation {
  const key = relationKey(appId, userId);
  let rel = state.relations.get(key);
  if (!rel) {
    const openid = openidFor(appId, userId, salt);
    rel = { appId, userId, openid, following: false, followSeq: 0, blacklisted: false, messagesOff: false, windows: {}, optIns: new Map() };
    state.relations.set(key, rel);
    state.openidIndex.set(`${appId}|${openid}`, userId);
  }
  return rel;
}

export function relationByOpenid(state: SandboxState, appId: string, openid: string): Relation | undefined {
  const userId = state.openidIndex.get(`${appId}|${openid}`);
  return userId === undefined ? undefined : state.relations.get(relationKey(appId, userId));
}

export function setFollowing(state: SandboxState, rel: Relation, following: boolean, now: number, scene?: string): void {
  if (following && !rel.following) {
    state.seq.follow += 1;
    rel.followSeq = state.seq.follow;
    rel.subscribeTime = Math.floor(now / 1000);
    rel.subscribeScene = scene ?? 'ADD_SCENE_OTHERS';
  }
  if (!following) {
    rel.qrScene = undefined;
    rel.qrSceneStr = undefined;
    rel.windows = {};
    rel.typingUntil = undefined;
  }
  rel.following = following;
}

export function patchRelation(state: SandboxState, appId: string, userId: string, patch: unknown, salt: string): Relation {
  requireApp(state, appId);
  requireUser(state, userId);
  const p = parseOrThrow(relationPatchSchema, patch);
  const rel = relationOf(state, appId, userId, salt);
  if (p.blacklisted !== undefined) rel.blacklisted = p.blacklisted;
  if (p.messagesOff !== undefined) rel.messagesOff = p.messagesOff;
  return rel;
}

/** The user opts in to a subscription notice (one-time, or long-term) (§4.4). */
export function optIn(state: SandboxState, appId: string, userId: string, templateId: string, longTerm: boolean, salt: string): void {
  const rel = relationOf(state, appId, userId, salt);
  const cur = rel.optIns.get(templateId) ?? { oneTime: 0, longTerm: false };
  if (longTerm) cur.longTerm = true;
  else cur.oneTime += 1;
  rel.optIns.set(templateId, cur);
}
