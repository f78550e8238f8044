/**
 * The transport under `createWeChatHttp` in production (wechat-protocol.md §0): node:http(s)
 * over a keep-alive agent instead of the global fetch. fetch (undici, with WHATWG streams, a
 * clone of every request body and transferable AbortSignals) cost about five times the CPU
 * per call, and a notice worker makes thousands of calls a second: it was half of the
 * worker's CPU in the issue 7 profile. This does only what `createWeChatHttp` needs: method,
 * headers, a string body and an abort signal in; status and body text out. It follows no
 * redirects (WeChat's API never redirects; a 3xx is a failed call) and caps the body.
 *
 * Idle sockets close before the server would close them (its `Keep-Alive: timeout` hint, else
 * `idleMs`): reusing a socket the server is closing fails the call after it was written,
 * which for a send is an ambiguous outcome (SECURITY.md D2).
 */
import http from 'node:http';
import https from 'node:https';
import type { FetchLike } from './http.ts';

export interface HttpAgentOptions {
  /**
   * Connections per origin (default: no limit, as fetch). A limit queues calls inside the
   * agent while their timeout already runs: a burst of 1,000 login callbacks (each a code
   * exchange) then timed some out behind 256 sockets. Callers bound their own concurrency.
   */
  maxSockets?: number;
  /** Idle connections kept per origin (default 256). */
  maxFreeSockets?: number;
  /** How long an idle connection is kept (default 4 s, below Node's and most servers' 5 s). */
  idleMs?: number;
  /** Largest body accepted (default 8 MB; WeChat's largest JSON answers are a few hundred KB). */
  maxBodyBytes?: number;
}

export interface HttpAgentFetch extends FetchLike {
  /** Closes idle connections (process shutdown; tests). */
  close(): void;
}

export function createHttpAgentFetch(o: HttpAgentOptions = {}): HttpAgentFetch {
  const agentOptions = { keepAlive: true, maxSockets: o.maxSockets ?? Infinity, maxFreeSockets: o.maxFreeSockets ?? 256, timeout: o.idleMs ?? 4_000, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  const maxBody = o.maxBodyBytes ?? 8 * 1024 * 1024;

  const fetchLike = (input: string, init: RequestInit) =>
    new Promise<{ status: number; text(): Promise<string> }>((resolve, reject) => {
      const url = new URL(input);
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') return reject(new TypeError(`unsupported protocol ${url.protocol}`));
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason as Error);
      const headers: Record<string, string> = {};
      const given = init.headers;
      if (given instanceof Headers || Array.isArray(given)) new Headers(given).forEach((v, k) => (headers[k.toLowerCase()] = v));
      else if (given) for (const [k, v] of Object.entries(given)) headers[k.toLowerCase()] = String(v);
      const body = init.body;
      if (body !== undefined && body !== null && typeof body !== 'string') return reject(new TypeError('only string bodies are supported'));
      if (body !== undefined && body !== null) headers['content-length'] = String(Buffer.byteLength(body));
      const req = (secure ? https : http).request(url, { method: init.method ?? 'GET', headers, agent: secure ? agents.https : agents.http }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBody) req.destroy(Object.assign(new Error('response body too large'), { code: 'BODY_TOO_LARGE' }));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const text = Buffer.concat(chunks, size).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text: () => Promise.resolve(text) });
        });
      });
      function fail(err: Error) {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      }
      function onAbort() {
        req.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', fail);
      req.end(body ?? undefined);
    });

  return Object.assign(fetchLike, {
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  });
}
