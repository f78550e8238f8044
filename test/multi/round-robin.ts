/**
 * A tiny round-robin HTTP proxy: one port in front of several wxbridge instances, each
 * request (not each connection) sent to the next one, as a load balancer without sticky
 * sessions does. Host and every header pass through unchanged; it counts what each
 * instance served, so a test can check that all of them took part. One path prefix may go
 * to a server of its own instead (the shared sandbox at /sandbox, prefix stripped), because
 * the bridge accepts a port in WeChat redirect URIs only for a sandbox under its own URL.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobin {
  url: string;
  port: number;
  served: number[];
  close(): Promise<void>;
}

export async function startRoundRobin(port: number, backends: () => number[], aside?: { prefix: string; port: number }): Promise<RoundRobin> {
  let next = 0;
  const served: number[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = req.url ?? '/';
    const isAside = aside !== undefined && (url === aside.prefix || url.startsWith(`${aside.prefix}/`) || url.startsWith(`${aside.prefix}?`));
    let target: { port: number; path: string };
    if (isAside) target = { port: aside.port, path: url.slice(aside.prefix.length) || '/' };
    else {
      const ports = backends();
      const i = next++ % ports.length;
      served[i] = (served[i] ?? 0) + 1;
      target = { port: ports[i]!, path: url };
    }
    const upstream = request({ host: '127.0.0.1', port: target.port, method: req.method, path: target.path, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${actual}`,
    port: actual,
    served,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
