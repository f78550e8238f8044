/**
 * Signing keys: their states (next → current → previous), rotate, and retire (remove a
 * next or previous key now). Both actions go through oauth's keys service, need an
 * unscoped admin (keys are shared by every merchant) and a fresh password + TOTP check.
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { auth, formSchema, fresh, readForm, renderAdmin, see, who } from './guard.routes.ts';
import type { AdminWeb, KeyInfoPort } from './web.ts';

const rotateForm = formSchema({ mode: z.enum(['normal', 'force', 'emergency']) });

const brief = (keys: KeyInfoPort[]) => keys.map((k) => `${k.kid.slice(0, 8)}:${k.state}`).join(' ');

export function keysRoutes(r: Router, web: AdminWeb): void {
  r.get('/keys', auth(web, 'keys.manage'), (ctx) => {
    const keys = web.ports.keys?.list() ?? [];
    const order = { next: 0, current: 1, previous: 2 };
    renderAdmin(ctx, web, 'keys', {
      title: 'Signing keys',
      available: !!web.ports.keys,
      keys: [...keys].sort((a, b) => order[a.state] - order[b.state]),
      fresh: ctx.state.admin!.recentlyAuthenticated,
    });
  });

  r.post('/keys/rotate', auth(web, 'keys.manage'), fresh('/admin/keys'), async (ctx) => {
    const f = await readForm(ctx, web, rotateForm);
    const keys = web.ports.keys;
    if (!keys) return see(ctx, '/admin/keys');
    const before = brief(keys.list());
    let message: string;
    try {
      const res = await keys.rotate({ force: f.mode === 'force', emergency: f.mode === 'emergency' });
      message = res.outcome === 'promoted' ? 'Rotated: the next key now signs; the old one stays published until its tokens expire.' : `A next key was published; it may sign from ${res.promotableAt?.toISOString() ?? 'later'}.`;
    } catch (err) {
      // The service refuses a rotation that verifiers could not follow yet; its reason is safe to show.
      if (err instanceof Error && err.name === 'KeyRotationRefused') return renderKeysError(ctx, web, err.message);
      throw err;
    }
    await web.audit.record(who(ctx), { action: 'keys.rotated', detail: { mode: f.mode }, before: { keys: before }, after: { keys: brief(keys.list()) } });
    see(ctx, '/admin/keys', message);
  });

  r.post('/keys/:kid/remove', auth(web, 'keys.manage'), fresh('/admin/keys'), async (ctx) => {
    await readForm(ctx, web, formSchema({}));
    const keys = web.ports.keys;
    const kid = ctx.params.kid ?? '';
    if (!keys) return see(ctx, '/admin/keys');
    const before = brief(keys.list());
    try {
      await keys.remove(kid);
    } catch (err) {
      if (err instanceof Error && err.name === 'KeyRotationRefused') return renderKeysError(ctx, web, err.message);
      throw err;
    }
    await web.audit.record(who(ctx), { action: 'keys.removed', detail: { kid }, before: { keys: before }, after: { keys: brief(keys.list()) } });
    see(ctx, '/admin/keys', 'Key retired and no longer published.');
  });
}

function renderKeysError(ctx: Parameters<Parameters<Router['get']>[1]>[0], web: AdminWeb, error: string): void {
  renderAdmin(ctx, web, 'keys', { title: 'Signing keys', available: true, keys: web.ports.keys?.list() ?? [], fresh: true, error }, 409);
}
