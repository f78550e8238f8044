/** Runs once before the suite: reports which adapters this run proves. */
export default function setup(): void {
  const db = process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : 'embedded PGlite';
  const kv = process.env.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process store';
  console.log(`[wxbridge tests] Db: ${db}; Kv: ${kv}`);
}
