/**
 * Parametric QR codes (`cgi-bin/qrcode/create`; not yet in wechat-protocol.md — shapes from the
 * official 生成带参数的二维码 page): scanning one makes WeChat push a subscribe/SCAN event carrying
 * the scene (the push side reads `qr_scene`/`qr_scene_str`, §7.1).
 *
 * - temporary: `QR_SCENE` (scene_id, 32-bit non-zero) or `QR_STR_SCENE` (scene_str, 1–64 chars),
 *   `expire_seconds` ≤ 2,592,000 (30 days); WeChat's default applies when omitted.
 * - permanent: `QR_LIMIT_SCENE` (scene_id 1–100,000) or `QR_LIMIT_STR_SCENE`; 100,000 per account.
 * The image is `showqrcode?ticket=<url-encoded ticket>` on mp.weixin.qq.com.
 */
import { z } from 'zod';
import type { AppCall } from './api.ts';

export interface QrCodeRequest {
  scene: number | string;
  expireSeconds?: number;
  permanent?: boolean;
}

export interface QrCode {
  ticket: string;
  /** Absent for permanent codes. */
  expireSeconds?: number;
  /** The URL the code encodes (render it yourself, or use `imageUrl`). */
  url: string;
  imageUrl: string;
}

export interface QrCodeApi {
  createQrCode(appId: string, req: QrCodeRequest): Promise<QrCode>;
}

export const MAX_QR_EXPIRE_SECONDS = 2_592_000;

const qrSchema = z.object({
  ticket: z.string().min(1),
  expire_seconds: z.coerce.number().int().positive().optional(),
  url: z.string().min(1),
});

/** Builds the request body; throws RangeError on values WeChat would refuse. */
export function qrCodeBody(req: QrCodeRequest): Record<string, unknown> {
  const permanent = req.permanent === true;
  let scene: { scene_id: number } | { scene_str: string };
  let action: string;
  if (typeof req.scene === 'number') {
    const max = permanent ? 100_000 : 0xffff_ffff;
    if (!Number.isInteger(req.scene) || req.scene < 1 || req.scene > max) {
      throw new RangeError(`createQrCode: scene id must be an integer in 1..${max}`);
    }
    scene = { scene_id: req.scene };
    action = permanent ? 'QR_LIMIT_SCENE' : 'QR_SCENE';
  } else {
    if (req.scene.length < 1 || req.scene.length > 64) throw new RangeError('createQrCode: scene string must be 1..64 chars');
    scene = { scene_str: req.scene };
    action = permanent ? 'QR_LIMIT_STR_SCENE' : 'QR_STR_SCENE';
  }
  if (permanent && req.expireSeconds !== undefined) throw new RangeError('createQrCode: a permanent code has no expiry');
  if (
    req.expireSeconds !== undefined &&
    (!Number.isInteger(req.expireSeconds) || req.expireSeconds < 1 || req.expireSeconds > MAX_QR_EXPIRE_SECONDS)
  ) {
    throw new RangeError(`createQrCode: expireSeconds must be 1..${MAX_QR_EXPIRE_SECONDS}`);
  }
  return {
    ...(req.expireSeconds !== undefined ? { expire_seconds: req.expireSeconds } : {}),
    action_name: action,
    action_info: { scene },
  };
}

export function createQrCodeApi(call: AppCall, imageBaseUrl: string): QrCodeApi {
  const imageBase = imageBaseUrl.replace(/\/+$/, '');
  return {
    async createQrCode(appId, req) {
      const body = qrCodeBody(req);
      const res = await call(appId, {
        method: 'POST',
        path: '/cgi-bin/qrcode/create',
        body,
        schema: qrSchema,
        // Another ticket for the same scene is harmless, so -1 may be retried.
        idempotent: true,
      });
      return {
        ticket: res.ticket,
        ...(res.expire_seconds !== undefined && req.permanent !== true ? { expireSeconds: res.expire_seconds } : {}),
        url: res.url,
        imageUrl: `${imageBase}/cgi-bin/showqrcode?ticket=${encodeURIComponent(res.ticket)}`,
      };
    },
  };
}
