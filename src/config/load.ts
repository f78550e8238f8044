/**
 * Loads env + config file into one frozen AppConfig. A wrong or missing value stops
 * start-up with one ConfigError that lists every problem and where it is (env name or
 * file path + key path); never a stack trace, never a half-started server.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { demoFileConfig } from './demo.ts';
import { decodeSecretKey, envSchema, readEnv, type Env } from './env.ts';
import { fileConfigSchema, type AdminSsoConfig, type FileConfig, type MerchantConfig, type OfficialAccountConfig, type OutboundConfig } from './schema.ts';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`wxbridge cannot start: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface AppConfig {
  readonly mode: 'demo' | 'production';
  readonly port: number;
  readonly publicUrl: string;
  readonly role: 'web' | 'worker' | 'all';
  readonly logLevel: Env['LOG_LEVEL'];
  readonly trustProxy: boolean;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly secretKey: Buffer;
  readonly secretKeySource: 'env' | 'data-dir';
  readonly configFile: string | undefined;
  readonly wechat: { readonly oauthBaseUrl: string; readonly apiBaseUrl: string };
  readonly sandbox: { readonly enabled: boolean; readonly port: number };
  readonly officialAccounts: readonly OfficialAccountConfig[];
  readonly merchants: readonly MerchantConfig[];
  /** [admin] Single sign-on for the admin UI, when the file configures it. */
  readonly admin: { readonly sso?: AdminSsoConfig };
  /** Where requests to merchant-configured URLs may go (SSRF policy). */
  readonly outbound: OutboundConfig;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Demo mode only: where a generated secret key is kept (defaults to DATA_DIR). */
  allowGenerateKey?: boolean;
}

export function loadConfig(opts: LoadOptions = {}): AppConfig {
  const source = opts.env ?? process.env;
  const problems: string[] = [];
  const parsedEnv = envSchema.safeParse(readEnv(source));
  if (!parsedEnv.success) problems.push(...formatIssues(parsedEnv.error.issues, (p) => `env ${p}`));
  const env = parsedEnv.success ? parsedEnv.data : undefined;

  const port = env?.PORT ?? 3000;
  const publicUrl = env?.PUBLIC_URL ?? `http://localhost:${port}`;
  const demo = !source.BRIDGE_CONFIG;

  let file: FileConfig | undefined;
  if (demo) {
    file = fileConfigSchema.parse(demoFileConfig(publicUrl));
  } else {
    file = readConfigFile(resolve(source.BRIDGE_CONFIG as string), source, problems);
  }

  if (!demo && !source.BRIDGE_SECRET_KEY) problems.push('env BRIDGE_SECRET_KEY: required when BRIDGE_CONFIG is set (32 random bytes, e.g. `openssl rand -hex 32`)');
  if (problems.length || !env || !file) throw new ConfigError(problems.length ? problems : ['unknown configuration error']);

  const sandboxOn = env.SANDBOX ?? demo;
  const sandboxBase = `${publicUrl}/sandbox`;
  let secretKey: Buffer;
  let secretKeySource: AppConfig['secretKeySource'] = 'env';
  if (env.BRIDGE_SECRET_KEY) secretKey = decodeSecretKey(env.BRIDGE_SECRET_KEY) as Buffer;
  else {
    secretKey = demoSecretKey(env.DATA_DIR, opts.allowGenerateKey ?? true);
    secretKeySource = 'data-dir';
  }

  return deepFreeze({
    mode: demo ? 'demo' : 'production',
    port,
    publicUrl,
    role: env.ROLE,
    logLevel: env.LOG_LEVEL,
    trustProxy: env.TRUST_PROXY,
    dataDir: resolve(env.DATA_DIR),
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    secretKey,
    secretKeySource,
    configFile: demo ? undefined : resolve(source.BRIDGE_CONFIG as string),
    wechat: {
      oauthBaseUrl: env.WECHAT_OAUTH_BASE_URL ?? (sandboxOn ? sandboxBase : 'https://open.weixin.qq.com'),
      apiBaseUrl: env.WECHAT_API_BASE_URL ?? (sandboxOn ? sandboxBase : 'https://api.weixin.qq.com'),
    },
    sandbox: { enabled: sandboxOn, port: env.SANDBOX_PORT },
    officialAccounts: file.officialAccounts,
    merchants: file.merchants,
    admin: { ...(file.admin?.sso ? { sso: file.admin.sso } : {}) },
    outbound: file.outbound,
  } satisfies AppConfig);
}

function readConfigFile(path: string, env: NodeJS.ProcessEnv, problems: string[]): FileConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    problems.push(`env BRIDGE_CONFIG: cannot read ${path}`);
    return undefined;
  }
  // ${VAR} is swapped for an inert placeholder before parsing: in YAML flow context
  // (`{ secret: ${X} }`, DESIGN.md's own example) a bare `${` would open a mapping.
  const vars: VarRef[] = [];
  const protectedText = text.replace(VAR_PATTERN, (whole, name: string, fallback: string | undefined) => {
    if (whole.startsWith('$$')) return whole.slice(1);
    vars.push({ name, fallback });
    return `__wxbridge_var_${vars.length - 1}__`;
  });
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(protectedText) : parseYaml(protectedText);
  } catch (err) {
    problems.push(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const before = problems.length;
  const interpolated = interpolate(raw, env, [], (p, name) => problems.push(`${path}: ${p}: environment variable ${name} is not set`), vars);
  const parsed = fileConfigSchema.safeParse(interpolated);
  if (!parsed.success) problems.push(...formatIssues(parsed.error.issues, (p) => `${path}: ${p}`));
  return problems.length === before && parsed.success ? parsed.data : undefined;
}

interface VarRef {
  name: string;
  fallback: string | undefined;
}

const VAR_PATTERN = /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** `${VAR}` reads the environment; `${VAR:-default}` falls back; `$${` escapes. */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: (string | number)[],
  missing: (path: string, name: string) => void,
  vars: VarRef[] = [],
): unknown {
  const resolveVar = (name: string, fallback: string | undefined): string => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    missing(formatPath(path), name);
    return '';
  };
  if (typeof value === 'string') {
    // One pass, so a value taken from the environment is never itself expanded again.
    return value.replace(/__wxbridge_var_(\d+)__|\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, i?: string, name?: string, fallback?: string) => {
      if (i !== undefined) {
        const ref = vars[Number(i)];
        return ref ? resolveVar(ref.name, ref.fallback) : whole;
      }
      if (whole.startsWith('$$')) return whole.slice(1);
      return resolveVar(name as string, fallback);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], missing, vars));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], missing, vars);
    return out;
  }
  return value;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: (path: string) => string): string[] {
  return issues.map((i) => `${prefix(formatPath(i.path as (string | number)[]) || '(root)')}: ${i.message}`);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

/** Demo mode: a key generated once into DATA_DIR (0600) so restarts keep the data readable. */
function demoSecretKey(dataDir: string, allowGenerate: boolean): Buffer {
  const file = join(resolve(dataDir), 'secret.key');
  if (existsSync(file)) {
    const k = decodeSecretKey(readFileSync(file, 'utf8').trim());
    if (k) return k;
    throw new ConfigError([`${file}: not a valid secret key (delete it to generate a new one; data encrypted with the old key becomes unreadable)`]);
  }
  const key = randomBytes(32);
  if (allowGenerate) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600 });
  }
  return key;
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Buffer.isBuffer(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
