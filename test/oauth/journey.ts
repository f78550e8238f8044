/**
 * The end user's side of an authorization request against the real app: WeChat login
 * through the sandbox, linking a demo card with the verify API, and back to the client.
 */
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { type Browser, loginAs, newWeChatUser, verifyAccount } from '../linking/helpers.ts';

/** A WeChat user walks the journey for `url` (an /oauth2/authorize URL): login, link a card, back. */
export async function journey(app: TestApp, b: Browser, url: string, card: string): Promise<URL> {
  const start = await b.get(url.slice(app.baseUrl.length));
  expect(start.status).toBe(302);
  const next = new URL(start.location!, app.baseUrl).searchParams.get('next')!;
  expect(next).toMatch(/^\/oauth2\/authorize\/continue\?req=/);
  const { userId } = await newWeChatUser(app);
  const loggedIn = await loginAs(app, b, 'card', userId, next);
  expect(loggedIn.location).toBe(next);
  const toLink = await b.get(next);
  expect(new URL(toLink.location!, app.baseUrl).pathname).toBe('/link/card');
  const linked = await verifyAccount(b, 'card', { card });
  expect(linked.status).toBeLessThan(400);
  const done = await b.get(next);
  expect(done.status).toBe(302);
  return new URL(done.location!);
}
