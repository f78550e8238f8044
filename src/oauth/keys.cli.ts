/**
 * Operator commands for signing keys (`npm run cli -- rotate-keys`, `list-keys`,
 * `remove-key <kid>`). They change the keys table only; every running instance picks the
 * change up within policy.keysPollMs (SECURITY.md A4). Output names kids and states,
 * never key material.
 */
import { pino } from 'pino';
import type { SecretBox } from '../security/secret-box.ts';
import type { Db } from '../store/db.ts';
import { createKeysService, KeyRotationRefused, type KeyAlg, type KeyInfo } from './keys.service.ts';
import { defaultPolicy, publishLeadMs, type OAuthPolicy } from './policy.ts';

export interface KeyCommandDeps {
  db: Db;
  secrets: SecretBox;
  out: (line: string) => void;
  now?: () => number;
  policy?: OAuthPolicy;
}

type Command = { help: string; run(deps: KeyCommandDeps, args: string[]): Promise<void> };

function table(keys: KeyInfo[]): string[] {
  const iso = (d: Date | null) => (d ? d.toISOString() : '-');
  return keys.map((k) => `  ${k.state.padEnd(9)}${k.alg.padEnd(7)}${k.kid}  published ${iso(k.publishedAt)}  remove after ${iso(k.removeAfter)}`);
}

async function withKeys<T>(deps: KeyCommandDeps, fn: (keys: ReturnType<typeof createKeysService>) => Promise<T>): Promise<T> {
  const keys = createKeysService({ db: deps.db, secrets: deps.secrets, log: pino({ level: 'silent' }), now: deps.now ?? Date.now, policy: deps.policy ?? defaultPolicy });
  await keys.start({ watch: false, publishNext: false });
  return fn(keys);
}

export const keyCommands: Record<string, Command> = {
  'rotate-keys': {
    help: 'rotate signing keys: next → current → previous [--force] [--emergency] [--alg ES256|EdDSA]',
    async run(deps, args) {
      const alg = args.includes('--alg') ? (args[args.indexOf('--alg') + 1] as KeyAlg) : undefined;
      if (alg !== undefined && alg !== 'ES256' && alg !== 'EdDSA') throw new KeyRotationRefused('--alg must be ES256 or EdDSA');
      await withKeys(deps, async (keys) => {
        const r = await keys.rotate({ alg, force: args.includes('--force'), emergency: args.includes('--emergency') });
        deps.out(r.outcome === 'promoted' ? 'rotated: the next key now signs; instances pick it up within seconds' : `published a next key; rotate again after ${r.promotableAt?.toISOString()}`);
        for (const line of table(r.keys)) deps.out(line);
        deps.out(`(a next key must be published ${Math.round(publishLeadMs(deps.policy ?? defaultPolicy) / 60_000)} min before it signs)`);
      });
    },
  },
  'list-keys': {
    help: 'list signing keys and their states',
    async run(deps) {
      await withKeys(deps, async (keys) => {
        for (const line of table(keys.list())) deps.out(line);
      });
    },
  },
  'remove-key': {
    help: 'remove a next or previous signing key now: remove-key <kid>',
    async run(deps, args) {
      const kid = args[0];
      if (!kid) throw new KeyRotationRefused('usage: remove-key <kid>');
      await withKeys(deps, async (keys) => {
        await keys.remove(kid);
        deps.out(`removed ${kid}`);
      });
    },
  },
};

/** The process side: config, database and secret box from the environment, as the server has them. */
/* eslint-disable no-console -- operator commands answer on the terminal; that is their output */
export async function runKeyCommand(c: Command, args: string[]): Promise<void> {
  const { loadConfig } = await import('../config/index.ts');
  const { openDb } = await import('../store/index.ts');
  const { createSecretBox } = await import('../security/secret-box.ts');
  const config = loadConfig({ allowGenerateKey: false });
  // The embedded database is single-process: with PGlite, stop the server first.
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await c.run({ db, secrets: createSecretBox(config.secretKey), out: (l) => console.log(l) }, args);
  } catch (err) {
    if (!(err instanceof KeyRotationRefused)) throw err;
    console.error(err.message);
    process.exitCode = 1;
  } finally {
    await db.close();
  }
}
/* eslint-enable no-console */
