/** The demo pages: index, the phone, its composer, static files, and links under a mount path. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountToken, startReceiver, startSandbox, testApp, type Receiver, type Running } from './test-kit.ts';

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

async function html(path: string): Promise<{ status: number; body: string; cookie: string; csrf: string; headers: Headers }> {
  const res = await fetch(`${r.base}${path}`);
  const body = await res.text();
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { status: res.status, body, cookie, csrf: /name="_csrf" value="([0-9a-f]{32})"/.exec(body)?.[1] ?? '', headers: res.headers };
}

function noInlineCode(body: string): void {
  expect(body).not.toMatch(/<script>|<script [^>]*>[^<]|\sstyle=|\son[a-z]+=|<style/i);
}

describe('pages', () => {
  it('When the index opens, then accounts and users are listed with a link to each phone', async () => {
    const app = testApp({ name: '信用卡中心' });
    r.sandbox.registerApp(app);
    const user = r.sandbox.createUser({ nickname: '小明', followsApps: [app.appId] });
    const page = await html('/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('信用卡中心');
    expect(page.body).toContain('小明');
    expect(page.body).toContain(`/phone/${user.userId}`);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    noInlineCode(page.body);
  });

  it('When the phone opens after a CS message and a template, then the chat shows the bubble with its link and the card', async () => {
    const app = testApp({ name: '银行', pushUrl: rx.url, templates: { TPL_BILL: ['thing1', 'amount2'] } });
    r.sandbox.registerApp(app);
    const user = r.sandbox.createUser({ nickname: '小红', followsApps: [app.appId] });
    const openid = r.sandbox.openid(app.appId, user.userId);
    await r.sandbox.act(app.appId, user.userId, { type: 'text', content: '我的账单' });
    const token = await accountToken(r, app.appId);
    await r.post('/cgi-bin/message/custom/send', { touser: openid, msgtype: 'text', text: { content: '请先<a href="https://bridge.example/link/card">绑定</a>账号' } }, { access_token: token });
    await r.post('/cgi-bin/message/template/send', { touser: openid, template_id: 'TPL_BILL', url: 'https://bank.example/b/1', data: { thing1: { value: '五月账单' }, amount2: { value: '¥1,024.00' } } }, { access_token: token });
    await r.sandbox.idle();
    const page = await html(`/phone/${user.userId}?app=${app.appId}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('我的账单');
    expect(page.body).toContain('<a href="https://bridge.example/link/card">绑定</a>');
    expect(page.body).toContain('五月账单');
    expect(page.body).toContain('¥1,024.00');
    expect(page.body).toContain('href="https://bank.example/b/1"');
    expect(page.body).toContain('/static/phone.js');
    noInlineCode(page.body);
  });

  it('When the push fails, then the phone shows "该公众号暂时无法提供服务"', async () => {
    const app = testApp({ pushUrl: rx.url });
    r.sandbox.registerApp(app);
    const user = r.sandbox.createUser({ followsApps: [app.appId] });
    rx.respond = (_p, res) => void res.end('{"error":"boom"}');
    try {
      await r.sandbox.act(app.appId, user.userId, { type: 'text', content: 'hi' });
    } finally {
      rx.respond = (_p, res) => void res.end('success');
    }
    expect((await html(`/phone/${user.userId}?app=${app.appId}`)).body).toContain('该公众号暂时无法提供服务，请稍后再试');
  });

  it('When the composer posts with the CSRF token, then the push happens and the browser returns to the phone (303)', async () => {
    const app = testApp({ pushUrl: rx.url });
    r.sandbox.registerApp(app);
    const user = r.sandbox.createUser({ followsApps: [app.appId] });
    const page = await html(`/phone/${user.userId}?app=${app.appId}`);
    const version = (await (await fetch(`${r.base}/phone/${user.userId}/version?app=${app.appId}`)).json()) as { version: string };
    const post = (fields: Record<string, string>) =>
      fetch(`${r.base}/phone/${user.userId}/act`, {
        method: 'POST',
        headers: { cookie: page.cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: page.csrf, app: app.appId, ...fields }),
        redirect: 'manual',
      });
    const res = await post({ type: 'text', content: '你好' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/phone/${user.userId}?app=${app.appId}`);
    expect(r.sandbox.pushes({ appId: app.appId }).map((p) => p.fields.Content)).toEqual(['你好']);
    const after = (await (await fetch(`${r.base}/phone/${user.userId}/version?app=${app.appId}`)).json()) as { version: string };
    expect(after.version).not.toBe(version.version);
    const view = await post({ type: 'view', url: 'https://bridge.example/link/card' });
    expect(view.headers.get('location')).toBe('https://bridge.example/link/card');
    const forged = await fetch(`${r.base}/phone/${user.userId}/act`, { method: 'POST', body: new URLSearchParams({ app: app.appId, type: 'text', content: 'x' }), redirect: 'manual' });
    expect(forged.status).toBe(403);
  });

  it('When a user is created from the index form, then the browser lands on their phone', async () => {
    const page = await html('/');
    const res = await fetch(`${r.base}/users`, {
      method: 'POST',
      headers: { cookie: page.cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: page.csrf, nickname: '新人', unionid: 'on' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/phone\/u\d+$/);
  });

  it('When a QR ticket exists, then the phone offers to scan it and shows its image', async () => {
    const app = testApp({ pushUrl: rx.url });
    r.sandbox.registerApp(app);
    const user = r.sandbox.createUser();
    const token = await accountToken(r, app.appId);
    await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene: { scene_str: 'branch_7' } } }, { access_token: token });
    const page = await html(`/phone/${user.userId}?app=${app.appId}`);
    expect(page.body).toContain('branch_7');
    expect(page.body).toContain('/cgi-bin/showqrcode?ticket=');
    expect(page.body).toContain('关注公众号 / Follow');
  });

  it('When static files are asked for, then the CSS is served and unknown names are 404', async () => {
    const css = await fetch(`${r.base}/static/sandbox.css`);
    expect(css.headers.get('content-type')).toContain('text/css');
    expect((await fetch(`${r.base}/static/../package.json`)).status).toBe(404);
    expect((await fetch(`${r.base}/static/nope.js`)).status).toBe(404);
  });

  it('When the user is unknown, then a 404 page', async () => {
    expect((await html('/phone/nobody')).status).toBe(404);
  });
});

describe('mounted under /sandbox', () => {
  it('When basePath is set, then links, forms and assets carry the prefix', async () => {
    const own = await startSandbox({ basePath: '/sandbox' });
    try {
      const app = testApp();
      own.sandbox.registerApp(app);
      const user = own.sandbox.createUser();
      const q = `appid=${app.appId}&redirect_uri=${encodeURIComponent('https://bridge.example/cb')}&response_type=code&scope=snsapi_base&state=s`;
      const auth = await (await fetch(`${own.base}/connect/oauth2/authorize?${q}`)).text();
      expect(auth).toContain('action="/sandbox/connect/oauth2/authorize/confirm"');
      expect(auth).toContain('href="/sandbox/static/sandbox.css"');
      const index = await (await fetch(`${own.base}/`)).text();
      expect(index).toContain(`href="/sandbox/phone/${user.userId}"`);
    } finally {
      await own.stop();
    }
  });
});
