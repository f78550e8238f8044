/**
 * Two instances rotating signing keys at once (SECURITY.md A4, T10; OIDC Core §10.1.1): the
 * operator's command runs on two hosts at the same moment (or two operators). The rotation
 * takes the key table's lock, so whatever the timing exactly one promotion happens per
 * publish lead — the other is refused, its next key being fresh — or, forced, two happen one
 * after the other; never two current keys, never none, always a next key, and every token
 * signed before, during or after still verifies against what both instances publish.
 * test/oauth/rotation.test.ts covers one operator's rotation under verifier load; this is the race.
 */
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { pino } from 'pino';
import { createKeysService, KeyRotationRefused, type KeysService } from '../../src/oauth/keys.service.ts';
import { defaultPolicy, publishLeadMs } from '../../src/oauth/policy.ts';
import { createVerifier } from '../../src/verify/index.ts';
import { clientToken, type DrillApp } from './kit.ts';
import { type DrillReport } from './ledger.ts';

export async function rotationDrill(d: DrillApp, o: { cycles: number }): Promise<DrillReport & { promotions: number; refusals: number }> {
  let offset = 0;
  const instance = () =>
    createKeysService({ db: d.app.deps.db, secrets: d.app.deps.secrets, log: pino({ level: 'silent' }), now: () => Date.now() + offset, policy: defaultPolicy });
  const a: KeysService = instance();
  const b: KeysService = instance();
  await Promise.all([a.start({ watch: false }), b.start({ watch: false })]);
  const violations: string[] = [];
  const issued: string[] = [];
  let promotions = 0;
  let refusals = 0;

  for (let cycle = 0; cycle < o.cycles; cycle++) {
    issued.push(await clientToken(d));
    const force = cycle % 2 === 1;
    // The publish lead has passed for the next key (without waiting 16 minutes).
    offset += publishLeadMs(defaultPolicy) + 1_000;
    const results = await Promise.allSettled([a.rotate({ force }), b.rotate({ force })]);
    const promoted = results.filter((r) => r.status === 'fulfilled' && r.value.outcome === 'promoted').length;
    const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof KeyRotationRefused).length;
    const other = results.filter((r) => r.status === 'rejected' && !(r.reason instanceof KeyRotationRefused));
    promotions += promoted;
    refusals += refused;
    for (const r of other) violations.push(`rotation failed: ${String((r as PromiseRejectedResult).reason)}`);
    if (force ? promoted !== 2 : promoted !== 1 || refused !== 1) violations.push(`cycle ${cycle}${force ? ' (forced)' : ''}: ${promoted} promoted, ${refused} refused`);
    const states = (await d.app.deps.db.query<{ state: string }>('SELECT state FROM signing_keys')).rows.map((r) => r.state);
    const n = (s: string) => states.filter((x) => x === s).length;
    if (n('current') !== 1 || n('next') !== 1) violations.push(`cycle ${cycle}: ${n('current')} current and ${n('next')} next keys`);
    await Promise.all([a.reload(), b.reload()]);
    if (a.signingKey().kid !== b.signingKey().kid) violations.push(`cycle ${cycle}: the two instances sign with different keys`);
    if (a.jwks().etag !== b.jwks().etag) violations.push(`cycle ${cycle}: the two instances publish different key sets`);
    // Every token issued so far still verifies against what the instances publish.
    const verifier = createVerifier({ issuer: d.app.config.publicUrl, audience: 'card', keys: createLocalJWKSet(JSON.parse(a.jwks().body.toString()) as JSONWebKeySet) });
    for (const t of issued) await verifier.verifyAccessToken(t).catch((err: unknown) => violations.push(`cycle ${cycle}: a token signed with ${decodeProtectedHeader(t).kid?.slice(0, 8)} no longer verifies (${String(err)})`));
  }
  return {
    drill: 'two instances rotating keys at once',
    mode: d.mode,
    cycles: o.cycles,
    ops: { rotate: { ok: promotions, refused: refusals } },
    unreadyMs: 0,
    slowestDownMs: 0,
    recoveryMs: 0,
    tokens: issued.length,
    pushesAcked: 0,
    notices: { keys: 0, sentOnce: 0, duplicates: 0, missing: 0, open: 0 },
    violations,
    promotions,
    refusals,
  };
}
