/**
 * The deadline a busy event loop cannot trip (deadline.ts). The reply of a loopback TCP
 * echo in another process (as Redis is) arrives while this loop is blocked past the
 * deadline, as on a loaded machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineSignal, withDeadline } from './deadline.ts';

const ECHO = "const s=require('net').createServer(c=>c.on('data',d=>c.write(d))).listen(0,'127.0.0.1',()=>console.log(s.address().port))";
let echo: ChildProcess;
let port = 0;
const sockets: Socket[] = [];
beforeAll(async () => {
  echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(echo.stdout!, 'data')) as [Buffer];
  port = Number(line.toString().trim());
});
afterAll(() => {
  for (const s of sockets) s.destroy();
  echo.kill();
});

/** Sends a byte, then keeps the loop busy for `blockMs`: the echo is in the socket buffer by then. */
async function answeredDuringStall(blockMs: number): Promise<{ reply: Promise<string>; done: () => void }> {
  const sock = createConnection(port, '127.0.0.1');
  sockets.push(sock);
  await once(sock, 'connect');
  const reply = new Promise<string>((resolve) => sock.once('data', (d) => resolve(d.toString())));
  sock.write('x');
  const until = Date.now() + blockMs;
  return {
    reply,
    done: () => {
      while (Date.now() < until) {
        /* a stalled event loop */
      }
    },
  };
}

describe('withDeadline', () => {
  it('When the loop stalls past the deadline while the reply arrives, then a plain timer fails the call but the deadline does not', async () => {
    const plain = await answeredDuringStall(400);
    const racedPlain = Promise.race([plain.reply, new Promise<string>((_, reject) => setTimeout(() => reject(new Error('timeout')), 50))]);
    plain.done();
    await expect(racedPlain).rejects.toThrow('timeout'); // the failure mode we saw under load

    const tolerant = await answeredDuringStall(400);
    const raced = withDeadline(tolerant.reply, 50, () => new Error('timeout'));
    tolerant.done();
    await expect(raced).resolves.toBe('x');
  });

  it('When nothing answers, then it fails at the deadline', async () => {
    const t0 = Date.now();
    await expect(withDeadline(new Promise(() => undefined), 40, () => new Error('late'))).rejects.toThrow('late');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('When the work fails first, then its error comes out', async () => {
    await expect(withDeadline(Promise.reject(new Error('boom')), 1000, () => new Error('late'))).rejects.toThrow('boom');
  });

  it('When a fetch is never answered, then deadlineSignal aborts it at the deadline; when answered, done() keeps it from aborting', async () => {
    // A server that takes the request and never answers it.
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const d = deadlineSignal(50);
    const t0 = Date.now();
    try {
      await expect(fetch(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, { signal: d.signal })).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(Date.now() - t0).toBeLessThan(3000); // the first fetch of a process also loads undici
    } finally {
      d.done();
      for (const s of sockets) s.destroy();
      silent.close();
    }
    const ok = deadlineSignal(20);
    ok.done();
    await new Promise((r) => setTimeout(r, 60));
    expect(ok.signal.aborted).toBe(false);
  });
});
