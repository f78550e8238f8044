/**
 * User management (wechat-protocol.md §7): follower profile, batch profile, follower list.
 * All are reads, so -1 is retried with backoff. Since 2021-12-27 `cgi-bin/user/info` carries no
 * nickname or avatar (§1.8); those come only from `sns/userinfo`.
 */
import { z } from 'zod';
import type { AppCall } from './api.ts';

export type Lang = 'zh_CN' | 'zh_TW' | 'en';

export type FollowerInfo =
  | { subscribed: false; openid: string; unionid?: string }
  | {
      subscribed: true;
      openid: string;
      unionid?: string;
      /** Unix seconds of the latest follow. */
      subscribeTime: number;
      /** `ADD_SCENE_*`; unknown values should be read as `ADD_SCENE_OTHERS`. */
      subscribeScene?: string;
      qrScene?: number;
      qrSceneStr?: string;
      remark: string;
      tagIds: number[];
      language?: string;
    };

export interface FollowerPage {
  total: number;
  count: number;
  openids: string[];
  /** Pass to the next call; undefined once the list is exhausted. */
  nextOpenid?: string;
}

export interface UsersApi {
  userInfo(appId: string, openid: string, lang?: Lang): Promise<FollowerInfo>;
  /** Any number of openids; WeChat takes at most 100 per call, so this chunks (§7.2). */
  batchGetUserInfo(appId: string, openids: readonly string[], lang?: Lang): Promise<FollowerInfo[]>;
  getFollowers(appId: string, nextOpenid?: string): Promise<FollowerPage>;
}

export const BATCH_LIMIT = 100;

const optionalString = z.string().optional();

const userSchema = z
  .object({
    subscribe: z.coerce.number().int(),
    openid: z.string().min(1),
    unionid: optionalString,
    subscribe_time: z.number().int().optional(),
    subscribe_scene: optionalString,
    qr_scene: z.coerce.number().optional(),
    qr_scene_str: optionalString,
    remark: optionalString,
    tagid_list: z.array(z.number()).optional(),
    language: optionalString,
  })
  .transform((u): FollowerInfo => {
    const unionid = u.unionid ? { unionid: u.unionid } : {};
    if (u.subscribe !== 1) return { subscribed: false, openid: u.openid, ...unionid };
    return {
      subscribed: true,
      openid: u.openid,
      ...unionid,
      subscribeTime: u.subscribe_time ?? 0,
      ...(u.subscribe_scene ? { subscribeScene: u.subscribe_scene } : {}),
      ...(u.qr_scene !== undefined && u.qr_scene !== 0 ? { qrScene: u.qr_scene } : {}),
      ...(u.qr_scene_str ? { qrSceneStr: u.qr_scene_str } : {}),
      remark: u.remark ?? '',
      tagIds: u.tagid_list ?? [],
      ...(u.language ? { language: u.language } : {}),
    };
  });

const batchSchema = z.object({ user_info_list: z.array(userSchema) });

const followersSchema = z.object({
  total: z.number().int(),
  count: z.number().int(),
  // A final page may come without `data` (§7.3).
  data: z.object({ openid: z.array(z.string()).default([]) }).optional(),
  next_openid: z.string().optional(),
});

export function createUsersApi(call: AppCall): UsersApi {
  return {
    userInfo(appId, openid, lang = 'zh_CN') {
      return call(appId, {
        method: 'GET',
        path: '/cgi-bin/user/info',
        query: { openid, lang },
        schema: userSchema,
        idempotent: true,
      });
    },
    async batchGetUserInfo(appId, openids, lang = 'zh_CN') {
      const out: FollowerInfo[] = [];
      for (let i = 0; i < openids.length; i += BATCH_LIMIT) {
        const chunk = openids.slice(i, i + BATCH_LIMIT);
        const res = await call(appId, {
          method: 'POST',
          path: '/cgi-bin/user/info/batchget',
          body: { user_list: chunk.map((openid) => ({ openid, lang })) },
          schema: batchSchema,
          idempotent: true,
        });
        out.push(...res.user_info_list);
      }
      return out;
    },
    async getFollowers(appId, nextOpenid) {
      const res = await call(appId, {
        method: 'GET',
        path: '/cgi-bin/user/get',
        query: { next_openid: nextOpenid || undefined },
        schema: followersSchema,
        idempotent: true,
      });
      return {
        total: res.total,
        count: res.count,
        openids: res.data?.openid ?? [],
        ...(res.next_openid ? { nextOpenid: res.next_openid } : {}),
      };
    },
  };
}
