/** The JSON control API, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, startSandbox, testApp, type Receiver, type Running } from './test-kit.ts';

let r: Running;
let rx: Receiver;
beforeAll(async () => {
  r = await startSandbox({ limits: { templateFinishDelayMs: 0 } });
  rx = await startReceiver();
});
afterAll(async () => {
  await r.stop();
  await rx.stop();
});

interface Account { appId: string; openid: string; following: boolean; messagesOff: boolean }
interface Described { userId: string; nickname: string; accounts: Account[] }

async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${r.base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as T };
}

describe('control API', () => {
  it('When an app and a user are created over HTTP, then they are listed with openids per account', async () => {
    const app = testApp({ pushUrl: rx.url, templates: { T1: ['thing1'] } });
    const created = await call('POST', '/control/apps', app);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ appId: app.appId, templates: { T1: ['thing1'] }, verified: true, allowPortsInRedirect: false });
    const user = await call<Described>('POST', '/control/users', { nickname: '赵六', followsApps: [app.appId] });
    expect(user.status).toBe(201);
    const account = user.json.accounts.find((a) => a.appId === app.appId);
    expect(account).toMatchObject({ following: true, openid: expect.stringMatching(/^o[A-Za-z0-9_-]{27}$/) });
    expect((await call<Described>('GET', `/control/users/${user.json.userId}`)).json.nickname).toBe('赵六');
    expect((await call<Array<{ appId: string }>>('GET', '/control/apps')).json.map((a) => a.appId)).toContain(app.appId);
  });

  it('When a person acts over HTTP, then the push result comes back and the messages/pushes logs can be filtered', async () => {
    const app = testApp({ pushUrl: rx.url });
    await call('POST', '/control/apps', app);
    const user = (await call<Described>('POST', '/control/users', { followsApps: [app.appId] })).json;
    rx.respond = (_p, res) => void res.end('success');
    const result = await call('POST', `/control/users/${user.userId}/actions`, { appId: app.appId, type: 'text', content: '余额' });
    expect(result.json).toMatchObject({ ok: true, outcome: 'success', fields: { Content: '余额', MsgId: expect.stringMatching(/^\d+$/) } });
    const pushes = await call<unknown[]>('GET', `/control/pushes?appId=${app.appId}`);
    expect(pushes.json).toHaveLength(1);
    expect((await call('GET', `/control/messages?appId=${app.appId}`)).json).toEqual([]);
    const bad = await call('POST', `/control/users/${user.userId}/actions`, { appId: app.appId, type: 'dance' });
    expect(bad.status).toBe(400);
  });

  it('When a raw message is pushed, a relation patched and an opt-in recorded, then the state follows', async () => {
    const app = testApp({ pushUrl: rx.url });
    await call('POST', '/control/apps', app);
    const user = (await call<Described>('POST', '/control/users', { followsApps: [app.appId] })).json;
    const pushed = await call('POST', '/control/push', { appId: app.appId, userId: user.userId, message: { MsgType: 'event', Event: 'LOCATION', Latitude: 23.1, Longitude: 113.3, Precision: 119.4 } });
    expect(pushed.json.fields).toMatchObject({ Event: 'LOCATION', Latitude: 23.1 });
    const patched = await call<Described>('PATCH', `/control/users/${user.userId}/relations/${app.appId}`, { messagesOff: true });
    expect(patched.json.accounts.find((a) => a.appId === app.appId)?.messagesOff).toBe(true);
    expect((await call('POST', '/control/subscribe-optins', { appId: app.appId, userId: user.userId, templateId: 'T' })).json).toEqual({ ok: true });
  });

  it('When limits and the clock are changed over HTTP, then they apply; bad limits are 400', async () => {
    expect((await call<{ userGetPageSize: number }>('PATCH', '/control/limits', { userGetPageSize: 3 })).json.userGetPageSize).toBe(3);
    expect((await call('PATCH', '/control/limits', { nope: 1 })).status).toBe(400);
    const before = r.sandbox.now();
    expect((await call('POST', '/control/clock', { advanceMs: 1000 })).json.now).toBe(before + 1000);
  });

  it('When the body is not JSON-typed, then 415 (a cross-site form cannot drive the sandbox)', async () => {
    const res = await fetch(`${r.base}/control/users`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
    expect(res.status).toBe(415);
  });

  it('When reset, then accounts, users and logs are gone', async () => {
    const own = await startSandbox();
    try {
      own.sandbox.registerApp(testApp());
      own.sandbox.createUser();
      await fetch(`${own.base}/cgi-bin/token`);
      const res = await fetch(`${own.base}/control/reset`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(200);
      expect(own.sandbox.state.apps.size).toBe(0);
      expect(own.sandbox.state.users.size).toBe(0);
      expect(own.sandbox.calls()).toEqual([]);
    } finally {
      await own.stop();
    }
  });
});
