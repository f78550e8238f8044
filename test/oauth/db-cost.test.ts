/**
 * The database cost of a completed login (SECURITY.md T14): a returning, already-linked
 * WeChat user in a fresh browser goes authorize → WeChat → callback → code → token, and the
 * database sees at most one write transaction of at most three statements. Every statement
 * the app runs is counted through the Db port, so a new write on the login path (a session
 * row, a grant, an audit insert) fails here before it shows in the benchmark.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRETS } from '../../src/config/demo.ts';
import type { Db, Queryable, Transaction } from '../../src/store/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { primaryDb } from '../helpers/stores.ts';
import { Browser, freshCard, loginAs, newWeChatUser, verifyAccount } from '../linking/helpers.ts';
import { basic } from './helpers.ts';
import { pkce } from './user-agent.ts';

const WRITE = /^\s*(?:insert|update|delete|merge)\b|^\s*with\b[\s\S]*\b(?:insert|update|delete)\b/i;

interface Counted {
  db: Db;
  /** Write statements outside a transaction (each its own transaction), and transactions that wrote. */
  reset(): void;
  writes(): { transactions: number; statements: string[] };
}

/** The Db port with every statement counted; transactions count once, with the writes inside them. */
function counting(inner: Db): Counted {
  let statements: string[] = [];
  let transactions = 0;
  const note = (sql: string) => {
    if (WRITE.test(sql)) statements.push(sql.trim().split(/\s+/).slice(0, 4).join(' '));
  };
  const wrap = <Q extends Queryable>(q: Q, onWrite: (sql: string) => void): Q['query'] => ((sql: string, params?: readonly unknown[]) => {
    onWrite(sql);
    return q.query(sql, params);
  }) as Q['query'];
  const db: Db = {
    kind: inner.kind,
    query: wrap(inner, (sql) => {
      if (WRITE.test(sql)) transactions++;
      note(sql);
    }),
    transaction: (fn) =>
      inner.transaction((tx) => {
        let wrote = false;
        const counted: Transaction = {
          exec: (sql) => tx.exec(sql),
          query: wrap(tx, (sql) => {
            if (WRITE.test(sql) && !wrote) {
              wrote = true;
              transactions++;
            }
            note(sql);
          }),
        };
        return fn(counted);
      }),
    exec: (sql) => inner.exec(sql),
    ping: () => inner.ping(),
    close: () => inner.close(),
    ...(inner.listen ? { listen: inner.listen.bind(inner) } : {}),
  };
  return {
    db,
    reset() {
      statements = [];
      transactions = 0;
    },
    writes: () => ({ transactions, statements: [...statements] }),
  };
}

let app: TestApp;
let counted: Counted;

beforeAll(async () => {
  const inner = await primaryDb.create();
  counted = counting(inner);
  // ROLE=web: the notice and webhook workers' polling is not the login's cost (they run apart in production too).
  app = await startTestApp({ env: { ROLE: 'web' }, overrides: { db: counted.db } });
}, 180_000);
afterAll(async () => {
  await app?.stop();
  await counted?.db.close();
});

const REDIRECT = () => `${app.baseUrl}/demo/app/callback`;

/** authorize → (WeChat login when the browser has no session) → the code at the merchant's redirect_uri. */
async function codeFor(b: Browser, userId: string, challenge: string, link?: string): Promise<string> {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'card-h5',
    redirect_uri: REDIRECT(),
    scope: 'openid',
    state: 's1',
    nonce: 'n1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const start = await b.get(`/oauth2/authorize?${q}`);
  expect(start.status).toBe(302);
  const next = new URL(start.location!, app.baseUrl).searchParams.get('next')!;
  const loggedIn = await loginAs(app, b, 'card', userId, next);
  expect(loggedIn.location).toBe(next);
  if (link) {
    expect(new URL((await b.get(next)).location!, app.baseUrl).pathname).toBe('/link/card');
    expect((await verifyAccount(b, 'card', { card: link })).status).toBeLessThan(400);
  }
  const done = await b.get(next);
  expect(done.status).toBe(302);
  const code = new URL(done.location!).searchParams.get('code');
  expect(code).toBeTruthy();
  return code!;
}

async function exchange(code: string, verifier: string): Promise<void> {
  const r = await fetch(`${app.baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: basic('card-h5', DEMO_SECRETS.cardH5), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT(), code_verifier: verifier }),
  });
  expect(r.status).toBe(200);
}

describe('database cost per completed login (SECURITY.md T14)', () => {
  it('When a linked user logs in again from a fresh browser, then authorize → WeChat → callback → code makes one write transaction, and the token request only its refresh token', async () => {
    const { userId } = await newWeChatUser(app);
    const first = pkce();
    await exchange(await codeFor(new Browser(app.baseUrl), userId, first.challenge, freshCard()), first.verifier);
    // Background writes of the first login land before the count starts.
    await new Promise((r) => setTimeout(r, 300));

    // T14's flow (T1: 302 to WeChat, callback, state, code exchange with WeChat, identity upsert, 302 with the code).
    counted.reset();
    const again = pkce();
    const code = await codeFor(new Browser(app.baseUrl), userId, again.challenge);
    await new Promise((r) => setTimeout(r, 300));
    const login = counted.writes();
    expect(login.transactions, login.statements.join(' | ')).toBe(1);
    expect(login.statements.length, login.statements.join(' | ')).toBeLessThanOrEqual(3);

    // The code exchange: card-h5 may refresh, so its refresh token family (one transaction); nothing else.
    counted.reset();
    await exchange(code, again.verifier);
    await new Promise((r) => setTimeout(r, 300));
    const token = counted.writes();
    expect(token.transactions, token.statements.join(' | ')).toBe(1);
    expect(token.statements.every((s) => /^INSERT INTO refresh_token/.test(s)), token.statements.join(' | ')).toBe(true);
  });
});
