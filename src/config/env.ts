/**
 * Environment variables (DESIGN.md "Environment"), validated with zod. Every problem is
 * collected, never only the first; `loadConfig` reports them together.
 */
import { z } from 'zod';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off', ''])
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const port = z.coerce.number().int().min(0).max(65535);

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

export const envSchema = z.object({
  NODE_ENV: z.string().optional(),
  PORT: port.default(3000),
  PUBLIC_URL: httpUrl.optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection string')
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./.wxbridge'),
  BRIDGE_CONFIG: z.string().min(1).optional(),
  BRIDGE_SECRET_KEY: z
    .string()
    .refine((v) => decodeSecretKey(v) !== null, 'must be 32 random bytes, as 64 hex characters or 43+ base64url characters')
    .optional(),
  WECHAT_OAUTH_BASE_URL: httpUrl.optional(),
  WECHAT_API_BASE_URL: httpUrl.optional(),
  ROLE: z.enum(['web', 'worker', 'all']).default('all'),
  SANDBOX: bool.optional(),
  SANDBOX_PORT: port.default(3100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: bool.default(false),
});

export type Env = z.infer<typeof envSchema>;

/** Empty strings count as unset, as a shell's `VAR=` usually means. */
export function readEnv(source: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = source[key];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

export function decodeSecretKey(v: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9_\-+/]{43,}={0,2}$/.test(v)) {
    const b = Buffer.from(v.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
    return b.length >= 32 ? b.subarray(0, 32) : null;
  }
  return null;
}
