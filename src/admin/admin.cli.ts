/**
 * Operator commands of the admin feature (registered in src/cli.ts):
 *   create-admin <email> --role viewer|operator|admin [--merchant <id>]
 *       makes an account and prints its one-time password once; TOTP is set up at the
 *       first sign-in. This is how the first admin of a deployment is made (no default
 *       account exists: ASVS 6.3.2).
 *   reset-admin <email>
 *       a new one-time password and a new TOTP enrolment, and every session ended: the
 *       way back in for someone who lost their authenticator.
 */
/* eslint-disable no-console -- operator commands answer on the terminal; that is their output */
import { pino } from 'pino';
import { loadConfig } from '../config/index.ts';
import { AppError } from '../http/errors.ts';
import { createSecretBox } from '../security/secret-box.ts';
import { hashSecret, randomId } from '../security/secrets.ts';
import { openDb } from '../store/index.ts';
import { createMemoryKv } from '../store/kv-memory.ts';
import { migrate } from '../store/migrate.ts';
import * as A from './accounts.queries.ts';
import { roles, type Role } from './policy.ts';
import { createAdminServices, type AdminServices } from './services.ts';

const CLI_ACTOR = { actor: 'system:cli', source: 'cli' };

export function parseFlags(args: string[]): { positional: string[]; flags: Record<string, string> } {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
      flags[k] = v ?? args[++i] ?? '';
    } else positional.push(a);
  }
  return { positional, flags };
}

async function withServices<T>(fn: (s: AdminServices, db: Awaited<ReturnType<typeof openDb>>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(db);
    const services = createAdminServices({ config, db, kv: createMemoryKv(), log: pino({ level: 'silent' }), now: Date.now, secrets: createSecretBox(config.secretKey) });
    return await fn(services, db);
  } catch (err) {
    // Refusals (taken email, unknown merchant) are the operator's to fix: one line, no stack.
    if (err instanceof AppError) {
      console.error(`refused: ${err.publicMessage ?? err.code}`);
      process.exitCode = 1;
      return undefined as T;
    }
    throw err;
  } finally {
    await db.close();
  }
}

export const adminCommands: { name: string; help: string; run(args: string[]): Promise<void> }[] = [
  {
    name: 'create-admin',
    help: 'create-admin <email> --role viewer|operator|admin [--merchant <id>]: a new admin; prints a one-time password',
    async run(args) {
      const { positional, flags } = parseFlags(args);
      const email = positional[0];
      const role = flags.role ?? 'viewer';
      if (!email || !(roles as readonly string[]).includes(role)) {
        console.error('usage: npm run cli -- create-admin <email> --role viewer|operator|admin [--merchant <id>]');
        process.exitCode = 2;
        return;
      }
      await withServices(async (s) => {
        const made = await s.accounts.create({ email, role: role as Role, merchantId: flags.merchant || null, who: CLI_ACTOR });
        // stdout only, once; never logged. The password must be changed at the first sign-in.
        console.log(`admin created: ${made.account.email} (${made.account.role}${made.account.merchantId ? `, merchant ${made.account.merchantId}` : ''})`);
        console.log(`one-time password: ${made.oneTimePassword}`);
        console.log('sign in at /admin, then choose a password and set up two-step verification.');
      });
    },
  },
  {
    name: 'reset-admin',
    help: 'reset-admin <email>: new one-time password and TOTP enrolment; ends every session',
    async run(args) {
      const email = parseFlags(args).positional[0];
      if (!email) {
        console.error('usage: npm run cli -- reset-admin <email>');
        process.exitCode = 2;
        return;
      }
      await withServices(async (s, db) => {
        const row = await A.findAccountByEmail(db, email);
        if (!row) {
          console.error(`no admin with email ${email}`);
          process.exitCode = 1;
          return;
        }
        const password = randomId(15);
        await A.setPassword(db, row.id, await hashSecret(password), true, new Date());
        await s.accounts.resetTotp({ id: row.id, who: CLI_ACTOR });
        console.log(`one-time password for ${row.email}: ${password}`);
      });
    },
  },
];
