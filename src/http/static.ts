/**
 * Static files under /static from public/: CSS and the few small scripts pages need
 * (no inline script anywhere, so CSP stays strict). Paths are resolved inside the root.
 */
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Middleware } from 'koa';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

export function serveStatic(opts: { prefix?: string; dir?: string; maxAgeSeconds?: number } = {}): Middleware {
  const prefix = opts.prefix ?? '/static/';
  const root = opts.dir ?? PUBLIC_DIR;
  // Not async: the common case (not a static path) hands on without an extra promise.
  return (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !ctx.path.startsWith(prefix)) return next();
    const rel = normalize(decodeURIComponent(ctx.path.slice(prefix.length)));
    if (rel.startsWith('..') || rel.includes('\0')) return next();
    const file = join(root, rel);
    const type = TYPES[extname(file)];
    if (!type || !file.startsWith(root)) return next();
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return next();
      size = st.size;
    } catch {
      return next();
    }
    ctx.type = type;
    ctx.length = size;
    ctx.set('Cache-Control', `public, max-age=${opts.maxAgeSeconds ?? 3600}`);
    ctx.body = createReadStream(file);
    return Promise.resolve();
  };
}
