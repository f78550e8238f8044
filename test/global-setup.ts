/** Runs once before the suite: says which adapters this run proves, and what is skipped. */
import { existsSync } from 'node:fs';

export default function setup(): void {
  const db = process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite';
  const kv = process.env.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process store';
  console.log(`[wxbridge tests] Db: ${db}; Kv: ${kv}`);
  if (!existsSync('/usr/bin/chromium'))
    console.log('[wxbridge tests] Chromium not found at /usr/bin/chromium: browser tests are SKIPPED (apt-get install -y chromium to run them)');
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL)
    console.log('[wxbridge tests] DATABASE_URL/REDIS_URL not both set: tests that cut a real server mid-run are SKIPPED (.ci/run sets both)');
}
