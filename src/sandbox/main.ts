/**
 * Standalone fake WeChat: `npm run sandbox`. Plays open.weixin.qq.com and api.weixin.qq.com
 * at its root on SANDBOX_PORT (default 3100), loopback only. Point a bridge at it with
 * WECHAT_OAUTH_BASE_URL / WECHAT_API_BASE_URL = the printed URL.
 */
import { z } from 'zod';
import { createSandbox } from './sandbox.ts';

const env = z
  .object({
    SANDBOX_PORT: z.coerce.number().int().min(0).max(65_535).default(3100),
    SANDBOX_HOST: z.enum(['127.0.0.1', 'localhost', '::1']).default('127.0.0.1'),
  })
  .safeParse(process.env);
if (!env.success) {
  console.error(`sandbox: bad environment\n${z.prettifyError(env.error)}`);
  process.exit(1);
}
const { SANDBOX_PORT: port, SANDBOX_HOST: host } = env.data;

const sandbox = createSandbox({
  logger: { info: (...a: unknown[]) => console.log('[sandbox]', ...a), warn: (...a: unknown[]) => console.warn('[sandbox]', ...a) },
});

const server = sandbox.app.listen(port, host, () => {
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host === '::1' ? '[::1]' : host;
  console.log(`WeChat sandbox listening on http://${shown}:${actual}/  (control API: /control, pages: /)`);
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`sandbox: ${signal}, shutting down`);
  // Stop accepting, let in-flight requests finish, cancel pending pushes; force after 5 s.
  const force = setTimeout(() => process.exit(1), 5000);
  force.unref();
  server.close();
  server.closeIdleConnections();
  await sandbox.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
