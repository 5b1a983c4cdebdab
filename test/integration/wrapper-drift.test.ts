/**
 * What breaks the wrappers without showing in the catalogs the plan compares: a wrapper password changed on one
 * side only (an interrupted rotation, ALTER ROLE … PASSWORD by hand), settings on the wrapper role; and the
 * secondary's database defaults that make direct vecs queries return full results.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { podIterativeScan } from '../../src/desired/secondary.js';
import { collection } from '../topologies.js';
import { vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('wdrift');
const podA = Object.values(dbs.secondaries)[0]!;
const podDb = decodeURIComponent(new URL(podA).pathname.slice(1));
const fdw = fdwUserFor(dbs);
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 8
    index: { method: hnsw, m: 16, ef_construction: 64 }
`);
await apply(file.load(), { approve: async () => true });

// 2200 rows, one in 11 tagged: a 1-in-11 filter (as in the issue), over an HNSW index.
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const vec = () => `[${Array.from({ length: 8 }, () => (rand() * 2 - 1).toFixed(5)).join(',')}]`;
const ids = Array.from({ length: 2200 }, (_, i) => `d${i}`);
await sql(podA, `INSERT INTO vecs.docs (id, vec, metadata) SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])`, [
  ids,
  ids.map(vec),
  ids.map((_, i) => JSON.stringify({ tag: i % 11 === 0 ? 'rare' : 'common' })),
]);
await sql(podA, 'ANALYZE vecs.docs');

const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps);
const search = () => sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_docs('${vec()}', 5)`);
const cli = (...args: string[]) => vecscale([...args, file.path], { env: file.env });

test('a wrapper password changed on the secondary only is found by plan (exit 2) and repaired by apply', async () => {
  assert.equal((await search()).length, 5);
  // What a rotation killed after the secondary committed leaves, and what the wrapper role may do to itself.
  await sql(podA, `ALTER ROLE ${fdw} PASSWORD 'changed-by-hand-Pw1'`);
  await assert.rejects(search(), (e: { message: string; detail?: string }) => /password authentication failed/.test(`${e.message} ${e.detail}`));

  const p = await plan(file.load());
  const all = p.databases.flatMap((d) => d.steps);
  assert.ok(all.some((s) => s.database === 'pod_a' && s.kind === 'role' && /password/.test(s.reason)), JSON.stringify(all.map((s) => s.id)));
  assert.ok(all.some((s) => s.database === 'primary' && s.kind === 'user_mapping'), 'the mappings get the new password too');
  assert.ok(p.notes.some((n) => n.object === 'server pod_a' && /refused/.test(n.message)), JSON.stringify(p.notes));
  const shown = await cli('plan', '--detailed-exitcode');
  assert.equal(shown.code, 2, shown.stderr);
  assert.doesNotMatch(shown.stderr + shown.stdout, /changed-by-hand-Pw1/);

  const applied = await cli('apply', '--auto-approve');
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal((await search()).length, 5, 'match_<c> works again');
  assert.deepEqual(await steps(), []);
});

test('a rotation cut off after the secondary committed (the primary failed) is found by plan and repaired by apply', async () => {
  // The primary's transaction fails at its first ALTER USER MAPPING, after the secondary committed the new password.
  await sql(dbs.primary, `CREATE OR REPLACE FUNCTION public.vs_refuse_mapping() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'refused for the test'; END $$`);
  await sql(dbs.primary, `CREATE EVENT TRIGGER vs_refuse_mapping ON ddl_command_start WHEN TAG IN ('ALTER USER MAPPING') EXECUTE FUNCTION public.vs_refuse_mapping()`);
  try {
    const cut = await cli('apply', '--auto-approve', '--rotate-fdw-passwords');
    assert.equal(cut.code, 8, cut.stderr);
  } finally {
    await sql(dbs.primary, 'DROP EVENT TRIGGER vs_refuse_mapping');
    await sql(dbs.primary, 'DROP FUNCTION public.vs_refuse_mapping()');
  }
  await assert.rejects(search(), (e: { message: string; detail?: string }) => /password authentication failed/.test(`${e.message} ${e.detail}`));
  const shown = await cli('plan', '--detailed-exitcode');
  assert.equal(shown.code, 2, shown.stderr);
  assert.match(shown.stderr, /server pod_a: a login through this server was refused/);
  const applied = await cli('apply', '--auto-approve');
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal((await search()).length, 5);
  assert.deepEqual(await steps(), []);
});

test('settings on the wrapper role (any database) are drift: planned back with RESET ALL', async () => {
  await sql(podA, `ALTER ROLE ${fdw} SET default_transaction_read_only = on`);
  await sql(podA, `ALTER ROLE ${fdw} IN DATABASE "${podDb}" SET hnsw.ef_search = 1`);
  const drift = (await steps()).filter((s) => s.kind === 'role');
  assert.equal(drift.length, 1);
  assert.match(drift[0]!.reason, /settings .*default_transaction_read_only=on.* → none/);
  assert.deepEqual(drift[0]!.sql, [`ALTER ROLE "${fdw}" RESET ALL`, `ALTER ROLE "${fdw}" IN DATABASE "${podDb}" RESET ALL`]);
  await apply(file.load(), { approve: async () => true });
  const left = await sql(podA, `SELECT 1 FROM pg_db_role_setting WHERE setrole = '${fdw}'::regrole`);
  assert.equal(left.length, 0);
  assert.deepEqual(await steps(), []);
});

test("the secondary's default hnsw.iterative_scan gives a direct vecs-style query k rows; drift is planned back", async () => {
  const [d] = await sql<{ setconfig: string[] }>(podA, `SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  assert.deepEqual(d?.setconfig, ['hnsw.iterative_scan=relaxed_order']);

  // What vecs 0.4 sends: SET LOCAL hnsw.ef_search = 40, then ORDER BY distance LIMIT k with its filter.
  const direct = async () => {
    const c = new pg.Client({ connectionString: podA });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL hnsw.ef_search = 40');
      // At this size the planner may sort a sequential scan (exact, all rows); the index is what a large collection uses.
      await c.query('SET LOCAL enable_seqscan = off');
      const r = await c.query(`SELECT id FROM vecs.docs WHERE metadata @> '{"tag": "rare"}' ORDER BY vec <=> $1 LIMIT 10`, [vec()]);
      const plan = await c.query(`EXPLAIN SELECT id FROM vecs.docs WHERE metadata @> '{"tag": "rare"}' ORDER BY vec <=> '${vec()}' LIMIT 10`);
      await c.query('COMMIT');
      return { rows: r.rows.length, plan: (plan.rows as { 'QUERY PLAN': string }[]).map((x) => x['QUERY PLAN']).join('\n') };
    } finally {
      await c.end();
    }
  };
  const full = await direct();
  assert.match(full.plan, /Index Scan using ix_vector_cosine_ops_hnsw/, full.plan);
  for (let i = 0; i < 5; i++) assert.equal((await direct()).rows, 10);

  await sql(podA, `ALTER DATABASE "${podDb}" RESET hnsw.iterative_scan`);
  const missing = (await steps()).filter((s) => s.kind === 'settings');
  assert.equal(missing.length, 1);
  assert.equal(missing[0]!.action, 'create');
  assert.equal((await direct()).rows < 10, true, 'without the default, vecs gets fewer than k rows (the reason for it)');
  await apply(file.load(), { approve: async () => true });
  assert.equal((await direct()).rows, 10);
  assert.deepEqual(await steps(), []);

  // Turned off for the only collection here: the default goes.
  file.write(`  docs:
    secondary: pod_a
    dimension: 8
    index: { method: hnsw, m: 16, ef_construction: 64 }
    query: { iterative_scan: off }
`);
  const off = (await steps()).filter((s) => s.kind === 'settings');
  assert.deepEqual(off.map((s) => s.action), ['drop']);
});

test('collections on one pod that disagree: strict_order wins over relaxed_order, off only when all are off', () => {
  const c = (name: string, iterativeScan: 'off' | 'strict_order' | 'relaxed_order') =>
    collection(name, 'pod', { query: { efSearch: 100, probes: 10, iterativeScan } });
  assert.equal(podIterativeScan([c('a', 'relaxed_order'), c('b', 'strict_order')]), 'strict_order');
  assert.equal(podIterativeScan([c('a', 'relaxed_order'), c('b', 'off')]), 'relaxed_order');
  assert.equal(podIterativeScan([c('a', 'off')]), 'off');
});
