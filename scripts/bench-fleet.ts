/**
 * `npm run bench:fleet [-- --collections 3,50,500] [--runs 5]`: plan, apply and status at fleet scale on the local sandbox (3
 * pods). For each size, a topology of that many collections (every third one sharded over all pods) in databases of
 * its own (vecscale_bench_fleet, recreated each run): the first apply, a converged plan, status; each timed, and the
 * statements each database received counted (every query a pg client sent, connection set-up included). `--keep`
 * leaves the last size's databases in place (to profile against them).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { apply, plan } from '../src/api.js';
import { parseTopology } from '../src/config/index.js';
import type { Topology } from '../src/config/types.js';
import { hasChanges } from '../src/plan/types.js';
import { sandboxUp, sandboxUrls } from '../src/sandbox/sandbox.js';
import { status } from '../src/status/index.js';

const DB = 'vecscale_bench_fleet';
const { values: opts } = parseArgs({ options: { collections: { type: 'string', default: '3,50,500' }, runs: { type: 'string', default: '5' }, keep: { type: 'boolean', default: false } } });
const flags = { ...opts, runs: Number(opts.runs) };
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const sizes = flags.collections.split(',').map(Number);

// Every statement any pg client sends, by the port and database it went to.
const counts = new Map<string, number>();
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const key = `${this.port}/${this.database}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

const urls = sandboxUrls(await sandboxUp({ secondaries: 3 }));
const withDb = (url: string) => Object.assign(new URL(url), { pathname: `/${DB}` }).toString();
const admin = async (url: string, sql: string) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
};
const all = [urls.primary, ...Object.values(urls.secondaries)];
const pods = Object.keys(urls.secondaries);

function yaml(n: number): string {
  const lines = ['version: 1', 'primary:', `  url: ${withDb(urls.primary)}`, 'secondaries:'];
  for (const [name, url] of Object.entries(urls.secondaries)) lines.push(`  ${name}:`, `    url: ${withDb(url)}`, '    fdw_user: vecscale_bench_fleet');
  lines.push('collections:');
  for (let i = 0; i < n; i++) {
    lines.push(`  c${i}:`, i % 3 === 2 ? `    shards: [${pods.join(', ')}]` : `    secondary: ${pods[i % pods.length]}`, '    dimension: 16');
  }
  return lines.join('\n') + '\n';
}

function topology(n: number): Topology {
  const r = parseTopology(yaml(n), 'fleet.yaml', process.env);
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.topology;
}

const perDatabase = (): string => {
  const byName = new Map<string, string>([[new URL(urls.primary).port, 'primary'], ...Object.entries(urls.secondaries).map(([n, u]) => [new URL(u).port, n] as [string, string])]);
  return [...counts].filter(([k]) => k.endsWith(`/${DB}`)).map(([k, v]) => `${byName.get(k.split('/')[0]!) ?? k} ${v}`).sort().join(', ');
};

const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
  counts.clear();
  const t = performance.now();
  const r = await fn();
  console.log(`  ${label}: ${((performance.now() - t) / 1000).toFixed(2)} s; statements: ${perDatabase()}`);
  return r;
};

for (const n of sizes) {
  for (const url of all) {
    await admin(url, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin(url, `CREATE DATABASE ${DB}`);
  }
  const t = topology(n);
  console.log(`${n} collections (${Math.floor(n / 3)} sharded over ${pods.length} pods):`);
  await timed('apply', () => apply(t, { approve: async () => true }));
  const planTimes: number[] = [];
  for (let i = 0; i < flags.runs; i++) {
    const start = performance.now();
    const p = await timed('converged plan', () => plan(t));
    planTimes.push(performance.now() - start);
    if (hasChanges(p)) throw new Error('the plan after apply is not empty');
  }
  // What a user waits for: a fresh process (module loading and cold code included), `vecscale plan <file>`.
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-fleet-'));
  const file = join(dir, 'fleet.yaml');
  writeFileSync(file, yaml(n), { mode: 0o600 });
  const cliTimes: number[] = [];
  for (let i = 0; i < flags.runs; i++) {
    const start = performance.now();
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/vecscale', import.meta.url)), 'plan', file, '--detailed-exitcode'], { encoding: 'utf8' });
    cliTimes.push(performance.now() - start);
    if (r.status !== 0) throw new Error(`vecscale plan exited ${r.status}: ${r.stderr.slice(-500)}`);
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`  converged plan, ${flags.runs} runs: median ${seconds(median(planTimes))} (fastest ${seconds(Math.min(...planTimes))}) in this process; ` +
    `\`vecscale plan\` as a new process: median ${seconds(median(cliTimes))} (fastest ${seconds(Math.min(...cliTimes))})`);
  for (let i = 0; i < 3; i++) {
    const s = await timed('status', () => status(t));
    if (!s.healthy) throw new Error(`status not healthy: ${JSON.stringify(s.problems.slice(0, 3))}`);
  }
}
if (flags.keep) process.exit(0);
for (const url of all) await admin(url, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
await admin(urls.primary, 'DROP ROLE IF EXISTS vecscale_bench_fleet').catch(() => undefined);
for (const url of Object.values(urls.secondaries)) await admin(url, 'DROP ROLE IF EXISTS vecscale_bench_fleet').catch(() => undefined);
