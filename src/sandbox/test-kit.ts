/**
 * Test helpers for the sandbox's own tests: the sandbox on port 0 with a fake clock, a tiny
 * push receiver, and WeChat-API call helpers. Not used by production code.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSandbox, type Sandbox, type SandboxOptions } from './sandbox.ts';
import type { RegisterAppInput } from './directory.ts';

export const T0 = Date.UTC(2024, 4, 20, 2, 0, 0); // 10:00 Beijing time, far from midnight

export interface Running {
  sandbox: Sandbox;
  base: string;
  clock: { now: number; advance(ms: number): void };
  get(path: string, query?: Record<string, string>): Promise<Record<string, unknown>>;
  post(path: string, body: unknown, query?: Record<string, string>): Promise<Record<string, unknown>>;
  /** The raw response text of a POST (for int64 msgid checks). */
  postRaw(path: string, body: unknown, query?: Record<string, string>): Promise<string>;
  stop(): Promise<void>;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Running> {
  const clock = { now: T0, advance(ms: number) { clock.now += ms; } };
  const sandbox = createSandbox({ now: () => clock.now, ...opts });
  const server = createServer(sandbox.app.callback());
  const base = await listen(server);
  const url = (path: string, query: Record<string, string> = {}): string => {
    const qs = new URLSearchParams(query).toString();
    return `${base}${path}${qs ? `?${qs}` : ''}`;
  };
  const postRaw = async (path: string, body: unknown, query?: Record<string, string>): Promise<string> => {
    const res = await fetch(url(path, query), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return res.text();
  };
  return {
    sandbox,
    base,
    clock,
    get: async (path, query) => (await (await fetch(url(path, query))).json()) as Record<string, unknown>,
    post: async (path, body, query) => JSON.parse(await postRaw(path, body, query)) as Record<string, unknown>,
    postRaw,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await sandbox.close();
    },
  };
}

export const AES_KEY = 'Wx2bR7kLm9QpZ3vN8sT1uY4cF6hJ0dG5aE2iK7oP3qA';
export const SECRET = '0123456789abcdef0123456789abcdef';

/** A fresh, distinct official account per test. */
export function testApp(over: Partial<RegisterAppInput> = {}): RegisterAppInput & { appId: string } {
  const suffix = randomBytes(8).toString('hex');
  return {
    appId: `wx${suffix}`,
    appSecret: SECRET,
    token: 'bridgeToken2024',
    mode: 'plain',
    originalId: `gh_${suffix.slice(0, 12)}`,
    redirectDomains: ['bridge.example'],
    ...over,
  } as RegisterAppInput & { appId: string };
}

/** Fetches an account token the way a client would. */
export async function accountToken(r: Running, appId: string): Promise<string> {
  const body = await r.get('/cgi-bin/token', { grant_type: 'client_credential', appid: appId, secret: SECRET });
  return String(body.access_token);
}

export interface ReceivedPush {
  query: URLSearchParams;
  body: string;
}

export interface Receiver {
  url: string;
  received: ReceivedPush[];
  /** What the receiver answers; default `success`. */
  respond: (push: ReceivedPush, res: ServerResponse) => void | Promise<void>;
  stop(): Promise<void>;
}

/** A stand-in for the bridge's push endpoint. */
export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: [],
    respond: (_p, res) => void res.end('success'),
    stop: async () => {},
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const push = { query: new URL(req.url ?? '/', 'http://x').searchParams, body: Buffer.concat(chunks).toString('utf8') };
      receiver.received.push(push);
      void receiver.respond(push, res);
    });
  });
  const base = await listen(server);
  receiver.url = `${base}/wechat/push/demo`;
  receiver.stop = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return receiver;
}
