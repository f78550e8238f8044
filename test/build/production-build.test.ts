/**
 * The production build (issue 9): `npm run build` compiles src/ to dist/, and the compiled
 * server, CLI and sandbox run with plain node from a directory laid out as the Docker image
 * is (dist/, views/, public/, package.json, node_modules; no src/), so everything resolved at
 * run time (views, static files, SQL migrations) is proven to come from there. Also: the
 * production settings the benchmark measures are the ones the Dockerfile and
 * `npm run start:prod` use.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCTION_RUNTIME } from '../../bench/lib/proc.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const hasTsc = existsSync(join(ROOT, 'node_modules/typescript/bin/tsc'));
const title = (name: string): string => (hasTsc ? name : `${name} (skipped: TypeScript is not installed; npm ci installs it)`);
const run = promisify(execFile);

/** A port that was free a moment ago, on loopback. */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a ? a.port : 0;
}

interface Started {
  child: ChildProcess;
  /** stderr so far (stdout is not kept: the demo banner prints the first admin's one-time password). */
  stderr(): string;
  stop(): Promise<void>;
}

function startNode(cwd: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-5000)));
  return {
    child,
    stderr: () => err,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** The status of GET `url` once it answers, failing early if the process exits first. */
async function statusWhenUp(p: Started, url: string, timeoutMs = 40_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode} before ${url} answered: ${p.stderr()}`);
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status,
      () => undefined,
    );
    if (status !== undefined) return status;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer in ${timeoutMs} ms: ${p.stderr()}`);
}

describe.skipIf(!hasTsc)(title('production build: npm run build, then node dist/…'), { timeout: 120_000 }, () => {
  let app: string;
  const started: Started[] = [];

  beforeAll(async () => {
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    // The image's layout: what the Dockerfile's runtime stage copies, and nothing else.
    app = mkdtempSync(join(tmpdir(), 'wxb-dist-'));
    for (const d of ['dist', 'views', 'public']) cpSync(join(ROOT, d), join(app, d), { recursive: true });
    writeFileSync(join(app, 'package.json'), readFileSync(join(ROOT, 'package.json')));
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('When the compiled server starts in demo mode, then /healthz, a rendered page, a static file and the sandbox answer 200', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // Demo mode: embedded PGlite (migrations read from dist/store/migrations), in-process store.
    const p = startNode(app, ['dist/main.js'], { PORT: String(port), PUBLIC_URL: base, DATA_DIR: join(app, 'data'), LOG_LEVEL: 'warn' });
    started.push(p);
    expect(await statusWhenUp(p, `${base}/healthz`)).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const home = await fetch(`${base}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('/static/css/app.css');
    expect((await fetch(`${base}/static/css/app.css`)).status).toBe(200);
    expect((await fetch(`${base}/sandbox/`)).status).toBe(200);
    expect((await fetch(`${base}/sandbox/static/sandbox.css`)).status).toBe(200);
  });

  it('When the image installs production dependencies only, then every package dist/ imports is installed', () => {
    // What `npm ci --omit=dev` installs: the lockfile's packages not marked dev (dependencies and theirs).
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const inProduction = (name: string): boolean => {
      const entry = lock.packages[`node_modules/${name}`];
      return entry !== undefined && entry.dev !== true;
    };
    const imported = new Set<string>();
    const specifiers = /^(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"]+)\1|^import\s*(['"])([^'"]+)\3|\bimport\((['"])([^'"]+)\5\)/gm;
    for (const f of readdirSync(join(app, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))) {
      for (const m of readFileSync(join(app, 'dist', f), 'utf8').matchAll(specifiers)) {
        const spec = (m[2] ?? m[4] ?? m[6])!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect([...imported]).toEqual(expect.arrayContaining(['koa', 'pg', 'ioredis', 'zod']));
    expect([...imported].filter((p) => !inProduction(p))).toEqual([]);
  });

  it('When the compiled CLI runs without a command, then it lists the commands and exits 0', async () => {
    const { stdout } = await run(process.execPath, ['dist/cli.js'], { cwd: app, env: { PATH: process.env.PATH ?? '' } });
    expect(stdout).toContain('migrate');
  });

  it('When a merchant backend imports wxbridge/verify with plain node and tsc, then it gets the compiled helper and its types', async () => {
    // A merchant's project: wxbridge installed as a package (the image's layout stands in for
    // the packed tarball: package.json, dist/), jose beside it, no tsx and no src/.
    const merchant = mkdtempSync(join(tmpdir(), 'wxb-merchant-'));
    try {
      mkdirSync(join(merchant, 'node_modules'));
      symlinkSync(app, join(merchant, 'node_modules', 'wxbridge'), 'dir');
      symlinkSync(join(ROOT, 'node_modules', 'jose'), join(merchant, 'node_modules', 'jose'), 'dir');
      writeFileSync(join(merchant, 'package.json'), JSON.stringify({ name: 'merchant', type: 'module', private: true }));
      writeFileSync(
        join(merchant, 'check.mjs'),
        `import { createVerifier } from 'wxbridge/verify';
import { generateKeyPair, SignJWT } from 'jose';
const { privateKey, publicKey } = await generateKeyPair('ES256');
const wx = createVerifier({ issuer: 'https://bridge.example', audience: 'card', keys: async () => publicKey });
const now = Math.floor(Date.now() / 1000);
const sign = (typ) => new SignJWT({ client_id: 'card-h5', scope: 'openid', account: 'acct-1' })
  .setProtectedHeader({ alg: 'ES256', typ }).setIssuer('https://bridge.example').setAudience('card')
  .setSubject('pairwise-1').setIssuedAt(now).setExpirationTime(now + 60).setJti('j1').sign(privateKey);
const claims = await wx.verifyAccessToken(await sign('at+jwt'));
const wrongTyp = await wx.verifyAccessToken(await sign('JWT')).then(() => 'accepted', (e) => e.code);
console.log(JSON.stringify({ account: claims.account, wrongTyp }));
`,
      );
      const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: merchant, env: { PATH: process.env.PATH ?? '' } });
      expect(JSON.parse(stdout)).toEqual({ account: 'acct-1', wrongTyp: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });

      // The types resolve through the same export, under the settings a strict ESM project uses.
      writeFileSync(
        join(merchant, 'check.ts'),
        `import { createVerifier, type WxbridgeAccessToken } from 'wxbridge/verify';
const wx = createVerifier({ issuer: 'https://bridge.example', audience: 'card' });
export const account = async (t: string): Promise<string | undefined> => ((await wx.verifyAccessToken(t)) satisfies WxbridgeAccessToken).account;
`,
      );
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', 'check.ts'];
      const typecheck = await run(process.execPath, [tsc, ...flags], { cwd: merchant }).then(
        () => 'ok',
        (e: { stdout?: string }) => e.stdout ?? String(e),
      );
      expect(typecheck).toBe('ok');
    } finally {
      rmSync(merchant, { recursive: true, force: true });
    }
  });

  it('When the compiled standalone sandbox starts, then its control API answers 200', async () => {
    const port = await freePort();
    const p = startNode(app, ['dist/sandbox/main.js'], { SANDBOX_PORT: String(port) });
    started.push(p);
    expect(await statusWhenUp(p, `http://127.0.0.1:${port}/control/apps`)).toBe(200);
  });
});

describe('production runtime settings', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const startProd = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:prod'] ?? '';

  it('When the benchmark runs a production bridge, then it uses the node flags and environment of the Dockerfile and npm run start:prod', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(cmd && (JSON.parse(cmd) as string[])).toEqual(['node', ...PRODUCTION_RUNTIME.nodeFlags, 'dist/main.js']);
    expect(startProd).toBe(
      [...Object.entries(PRODUCTION_RUNTIME.env).map(([k, v]) => `${k}=${v}`), 'node', ...PRODUCTION_RUNTIME.nodeFlags, 'dist/main.js'].join(' '),
    );
    for (const [k, v] of Object.entries(PRODUCTION_RUNTIME.env)) expect(dockerfile).toMatch(new RegExp(`^ENV ${k}=${v}$`, 'm'));
  });
});
