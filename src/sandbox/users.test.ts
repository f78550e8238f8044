/** User management and parametric QR codes: wechat-protocol.md §7, §5.5, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWeChatXml } from '../wechat/xml.ts';
import { accountToken, startReceiver, startSandbox, testApp, type Receiver, type Running } from './test-kit.ts';

let r: Running;
let rx: Receiver;
beforeAll(async () => {
  r = await startSandbox({ limits: { userGetPageSize: 2 } });
  rx = await startReceiver();
});
afterAll(async () => {
  await r.stop();
  await rx.stop();
});

async function setup(over: Parameters<typeof testApp>[0] = {}) {
  const app = testApp({ pushUrl: rx.url, openPlatformId: 'open-users', ...over });
  r.sandbox.registerApp(app);
  const token = await accountToken(r, app.appId);
  return { app, token, q: (extra: Record<string, string> = {}) => ({ access_token: token, ...extra }) };
}

describe('cgi-bin/user/info and batchget (§7.1, §7.2)', () => {
  it('When the user follows, then the profile has subscribe 1 and no nickname or avatar', async () => {
    const { app, q } = await setup();
    const user = r.sandbox.createUser({ nickname: '不应出现', followsApps: [app.appId] });
    const openid = r.sandbox.openid(app.appId, user.userId);
    const info = await r.get('/cgi-bin/user/info', q({ openid, lang: 'zh_CN' }));
    expect(info).toMatchObject({ subscribe: 1, openid, subscribe_time: Math.floor(r.clock.now / 1000), unionid: expect.any(String), tagid_list: [] });
    expect(info).not.toHaveProperty('nickname');
    expect(info).not.toHaveProperty('headimgurl');
    expect(info).not.toHaveProperty('errcode');
  });

  it('When the user does not follow, then only subscribe 0, openid and unionid', async () => {
    const { app, q } = await setup();
    const user = r.sandbox.createUser({ hasUnionId: true });
    const openid = r.sandbox.openid(app.appId, user.userId);
    expect(await r.get('/cgi-bin/user/info', q({ openid }))).toEqual({ subscribe: 0, openid, unionid: expect.any(String) });
    const noUnion = r.sandbox.createUser({ hasUnionId: false });
    expect(await r.get('/cgi-bin/user/info', q({ openid: r.sandbox.openid(app.appId, noUnion.userId) }))).toEqual({
      subscribe: 0,
      openid: r.sandbox.openid(app.appId, noUnion.userId),
    });
  });

  it('When the openid belongs to another account, then 40003', async () => {
    const { q } = await setup();
    const other = await setup();
    const user = r.sandbox.createUser({ followsApps: [other.app.appId] });
    expect((await r.get('/cgi-bin/user/info', q({ openid: r.sandbox.openid(other.app.appId, user.userId) }))).errcode).toBe(40003);
  });

  it('When batchget is called, then one entry per openid in order; more than 100 is 40032', async () => {
    const { app, q } = await setup();
    const a = r.sandbox.createUser({ followsApps: [app.appId] });
    const b = r.sandbox.createUser();
    const list = [a, b].map((u) => ({ openid: r.sandbox.openid(app.appId, u.userId), lang: 'zh_CN' }));
    const body = await r.post('/cgi-bin/user/info/batchget', { user_list: list }, q());
    expect(body.user_info_list).toEqual([
      expect.objectContaining({ subscribe: 1, openid: list[0]?.openid }),
      { subscribe: 0, openid: list[1]?.openid, unionid: expect.any(String) },
    ]);
    const tooMany = Array.from({ length: 101 }, () => list[0]);
    expect((await r.post('/cgi-bin/user/info/batchget', { user_list: tooMany }, q())).errcode).toBe(40032);
  });
});

describe('cgi-bin/user/get paging (§7.3)', () => {
  it('When followers span pages, then next_openid walks them in follow order and the last call is count 0', async () => {
    const { app, q } = await setup();
    const users = Array.from({ length: 5 }, () => r.sandbox.createUser({ followsApps: [app.appId] }));
    r.sandbox.createUser(); // not a follower
    const expected = users.map((u) => r.sandbox.openid(app.appId, u.userId));
    const seen: string[] = [];
    let next = '';
    let pages = 0;
    for (;;) {
      const page = await r.get('/cgi-bin/user/get', q(next ? { next_openid: next } : {}));
      pages += 1;
      expect(page.total).toBe(5);
      if (page.count === 0) {
        expect(page).toEqual({ total: 5, count: 0, next_openid: '' });
        break;
      }
      const ids = (page.data as { openid: string[] }).openid;
      expect(page.next_openid).toBe(ids[ids.length - 1]);
      seen.push(...ids);
      next = String(page.next_openid);
    }
    expect(seen).toEqual(expected);
    expect(pages).toBe(4); // 2 + 2 + 1, then the empty page
    expect((await r.get('/cgi-bin/user/get', q({ next_openid: 'oBogus' }))).errcode).toBe(40003);
  });
});

describe('parametric QR codes (§5.5)', () => {
  it('When each QR kind is created, then ticket, url and expire_seconds (temporary only) come back', async () => {
    const { q } = await setup();
    const temp = await r.post('/cgi-bin/qrcode/create', { expire_seconds: 604800, action_name: 'QR_SCENE', action_info: { scene: { scene_id: 123 } } }, q());
    expect(temp).toEqual({ ticket: expect.any(String), expire_seconds: 604800, url: expect.stringMatching(/^http:\/\/weixin\.qq\.com\/q\//) });
    const str = await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_STR_SCENE', action_info: { scene: { scene_str: 'bind_abc' } } }, q());
    expect(str.expire_seconds).toBe(60);
    const perm = await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_LIMIT_STR_SCENE', action_info: { scene: { scene_str: 'shop' } } }, q());
    expect(perm).not.toHaveProperty('expire_seconds');
    expect((await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_LIMIT_SCENE', action_info: { scene: { scene_id: 100001 } } }, q())).errcode).toBe(47001);
    expect((await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_BOGUS' }, q())).errcode).toBe(47001);
  });

  it('When showqrcode is fetched, then a PNG comes back; an expired ticket gets 404', async () => {
    const { q } = await setup();
    const t = await r.post('/cgi-bin/qrcode/create', { expire_seconds: 30, action_name: 'QR_SCENE', action_info: { scene: { scene_id: 7 } } }, q());
    const res = await fetch(`${r.base}/cgi-bin/showqrcode?ticket=${encodeURIComponent(String(t.ticket))}`);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await res.arrayBuffer()).slice(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    r.clock.advance(30_000);
    expect((await fetch(`${r.base}/cgi-bin/showqrcode?ticket=${encodeURIComponent(String(t.ticket))}`)).status).toBe(404);
  });

  it('When a non-follower scans, then subscribe with qrscene_ + Ticket is pushed; a follower scanning gets SCAN', async () => {
    const { app, q } = await setup();
    const t = await r.post('/cgi-bin/qrcode/create', { action_name: 'QR_STR_SCENE', expire_seconds: 300, action_info: { scene: { scene_str: 'bind_42' } } }, q());
    const user = r.sandbox.createUser();
    rx.received.length = 0;
    await r.sandbox.act(app.appId, user.userId, { type: 'scan', ticket: String(t.ticket) });
    await r.sandbox.act(app.appId, user.userId, { type: 'scan', ticket: String(t.ticket) });
    const [first, second] = rx.received.map((p) => parseWeChatXml(p.body));
    expect(first).toMatchObject({ MsgType: 'event', Event: 'subscribe', EventKey: 'qrscene_bind_42', Ticket: t.ticket });
    expect(second).toMatchObject({ MsgType: 'event', Event: 'SCAN', EventKey: 'bind_42', Ticket: t.ticket });
    const info = await r.get('/cgi-bin/user/info', q({ openid: r.sandbox.openid(app.appId, user.userId) }));
    expect(info).toMatchObject({ subscribe: 1, subscribe_scene: 'ADD_SCENE_QR_CODE', qr_scene_str: 'bind_42' });
  });
});
