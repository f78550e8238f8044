/** Fault injection and the calls log, over real HTTP. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from './faults.ts';
import { SECRET, startSandbox, testApp, type Running } from './test-kit.ts';

let r: Running;
beforeAll(async () => {
  r = await startSandbox();
});
afterAll(() => r.stop());
afterEach(() => r.sandbox.clearFaults());

function app() {
  const a = testApp();
  r.sandbox.registerApp(a);
  return a;
}
const token = (appid: string) => r.get('/cgi-bin/token', { grant_type: 'client_credential', appid, secret: SECRET });
const codes = async (appid: string, n: number): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i += 1) out.push(Number((await token(appid)).errcode ?? 0));
  return out;
};

describe('which calls fail', () => {
  it('When a fault targets the 2nd and 4th calls, then only those answer the errcode, and the calls log says so', async () => {
    const a = app();
    r.sandbox.inject({ path: '/cgi-bin/token', appId: a.appId, errcode: -1, nth: [2, 4] });
    expect(await codes(a.appId, 5)).toEqual([0, -1, 0, -1, 0]);
    const log = r.sandbox.calls('/cgi-bin/token').filter((c) => c.appId === a.appId);
    expect(log.map((c) => [c.errcode, c.fault ?? null])).toEqual([[0, null], [-1, 'errcode'], [0, null], [-1, 'errcode'], [0, null]]);
  });

  it('When a fault hits every 3rd call at most twice, then calls 3 and 6 fail and 9 does not', async () => {
    const a = app();
    r.sandbox.inject({ path: '/cgi-bin/token', appId: a.appId, errcode: 45011, every: 3, count: 2 });
    expect(await codes(a.appId, 9)).toEqual([0, 0, 45011, 0, 0, 45011, 0, 0, 0]);
  });

  it('When a fault has a probability and a seed, then the same calls fail on every run', async () => {
    const a = app();
    r.sandbox.inject({ path: '/cgi-bin/token', appId: a.appId, errcode: -1, probability: 0.5, seed: 42 });
    const first = await codes(a.appId, 12);
    r.sandbox.clearFaults();
    r.sandbox.inject({ path: '/cgi-bin/token', appId: a.appId, errcode: -1, probability: 0.5, seed: 42 });
    expect(await codes(a.appId, 12)).toEqual(first);
    const rng = seededRng(42);
    expect(first).toEqual(Array.from({ length: 12 }, () => (rng() < 0.5 ? -1 : 0)));
    expect(first).toContain(-1);
    expect(first).toContain(0);
  });

  it('When a fault uses a wildcard path, then every matching API is hit, but control and pages never are', async () => {
    const a = app();
    r.sandbox.inject({ path: '*', errcode: -1 });
    expect((await token(a.appId)).errcode).toBe(-1);
    expect((await r.get('/sns/auth', { access_token: 'x', openid: 'y' })).errcode).toBe(-1);
    expect((await fetch(`${r.base}/control/apps`)).status).toBe(200);
    expect((await fetch(`${r.base}/`)).status).toBe(200);
  });

  it('When stable_token faults filter by appId, then the appid is read from the JSON body', async () => {
    const a = app();
    const b = app();
    r.sandbox.inject({ path: '/cgi-bin/stable_token', appId: a.appId, errcode: 45009 });
    const stable = (appid: string) => r.post('/cgi-bin/stable_token', { grant_type: 'client_credential', appid, secret: SECRET });
    expect((await stable(a.appId)).errcode).toBe(45009);
    expect((await stable(b.appId)).access_token).toEqual(expect.any(String));
  });
});

describe('what failing calls do', () => {
  function issueCode(appId: string): string {
    const user = r.sandbox.createUser();
    const out = r.sandbox.authorize({ appid: appId, redirect_uri: 'https://bridge.example/cb', scope: 'snsapi_base', state: 's', userId: user.userId });
    return out.code ?? '';
  }
  const exchange = (appid: string, code: string) =>
    fetch(`${r.base}/sns/oauth2/access_token?${new URLSearchParams({ appid, secret: SECRET, code, grant_type: 'authorization_code' })}`);

  it('When dropAfterCommit hits a code exchange, then the connection dies but the code is spent (retry → 40163)', async () => {
    const a = app();
    const code = issueCode(a.appId);
    r.sandbox.inject({ path: '/sns/oauth2/access_token', dropAfterCommit: true, count: 1 });
    await expect(exchange(a.appId, code)).rejects.toThrow();
    expect(((await (await exchange(a.appId, code)).json()) as { errcode: number }).errcode).toBe(40163);
    expect(r.sandbox.calls('/sns/oauth2/access_token').filter((c) => c.appId === a.appId).map((c) => c.fault ?? null)).toEqual(['drop_after', null]);
  });

  it('When dropBeforeCommit hits a code exchange, then the code is still good', async () => {
    const a = app();
    const code = issueCode(a.appId);
    r.sandbox.inject({ path: '/sns/oauth2/access_token', dropBeforeCommit: true, count: 1 });
    await expect(exchange(a.appId, code)).rejects.toThrow();
    expect(((await (await exchange(a.appId, code)).json()) as { openid?: string }).openid).toEqual(expect.any(String));
  });

  it('When latency is injected, then the answer is late but correct', async () => {
    const a = app();
    r.sandbox.inject({ path: '/cgi-bin/token', appId: a.appId, latencyMs: 120, count: 1 });
    const started = performance.now();
    expect((await token(a.appId)).access_token).toEqual(expect.any(String));
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });
});

describe('faults over the control API', () => {
  const post = (path: string, body: unknown, type = 'application/json') =>
    fetch(`${r.base}${path}`, { method: 'POST', headers: { 'Content-Type': type }, body: JSON.stringify(body) });

  it('When a fault is posted and then deleted, then it applies in between', async () => {
    const a = app();
    expect((await post('/control/faults', { path: '/cgi-bin/token', appId: a.appId, errcode: 40164 })).status).toBe(201);
    expect((await token(a.appId)).errcode).toBe(40164);
    const listed = (await (await fetch(`${r.base}/control/faults`)).json()) as Array<{ fired: number }>;
    expect(listed[0]?.fired).toBe(1);
    await fetch(`${r.base}/control/faults`, { method: 'DELETE' });
    expect((await token(a.appId)).access_token).toEqual(expect.any(String));
  });

  it('When a fault has no effect or is not JSON, then 400 or 415', async () => {
    expect((await post('/control/faults', { path: '/cgi-bin/token' })).status).toBe(400);
    expect((await post('/control/faults', { path: '/cgi-bin/token', errcode: 1 }, 'text/plain')).status).toBe(415);
  });
});
