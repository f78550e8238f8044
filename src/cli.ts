/**
 * Operator commands: `npm run migrate`, `npm run cli -- <command>`.
 *   migrate            apply pending database migrations and exit
 */
import { ConfigError, loadConfig } from './config/index.ts';
import { openDb, StoreStartError } from './store/index.ts';
import { migrate } from './store/migrate.ts';
import { adminCommands } from './admin/admin.cli.ts';
import { keyCommands, runKeyCommand } from './oauth/keys.cli.ts';

const commands: Record<string, { help: string; run(args: string[]): Promise<void> }> = {
  migrate: {
    help: 'apply pending database migrations',
    async run() {
      const config = loadConfig();
      const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      try {
        const applied = await migrate(db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await db.close();
      }
    },
  },
};

export function registerCommand(name: string, help: string, run: (args: string[]) => Promise<void>): void {
  commands[name] = { help, run };
}

async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  const cmd = name ? commands[name] : undefined;
  if (!cmd) {
    console.log('usage: npm run cli -- <command>\n' + Object.entries(commands).map(([n, c]) => `  ${n.padEnd(18)} ${c.help}`).join('\n'));
    process.exit(name ? 2 : 0);
  }
  try {
    await cmd.run(args);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StoreStartError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

// [admin] create-admin, reset-admin
for (const c of adminCommands) registerCommand(c.name, c.help, (args) => c.run(args));
// [oauth] rotate-keys, list-keys, remove-key
for (const [name, c] of Object.entries(keyCommands)) registerCommand(name, c.help, (args) => runKeyCommand(c, args));

void main(process.argv.slice(2));
