/**
 * Index builds that fit (index.build): an HNSW build over rows already in its table runs with the maintenance_work_mem
 * and parallel workers the plan shows, set for its CREATE INDEX only. The witnesses are pgvector's own messages on the
 * session that runs the plan's statements: "using N parallel workers" (DEBUG1) and, when the graph outgrows
 * maintenance_work_mem, the NOTICE "hnsw graph no longer fits into maintenance_work_mem"; and that same session's
 * settings afterwards (RESET, also after a build that failed).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { executePlan } from '../../src/apply/execute.js';
import { close, connect, type Db } from '../../src/db/connect.js';
import { formatBytes } from '../../src/util/bytes.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const ROWS = 3000;
const dbs = await freshDatabases('index_build');
const podA = Object.values(dbs.secondaries)[0]!;
const collection = (index: string) => `  big:
    secondary: pod_a
    dimension: 768
    index: ${index}
`;
const file = topologyFile(dbs, collection('{ method: none }'));
assert.equal((await apply(file.load(), { approve: async () => true })).status, 'applied', 'the table, without an index');
await sql(podA, `INSERT INTO vecs.big (id, vec) SELECT 'r' || g, ARRAY(SELECT (random() + g * 0)::real FROM generate_series(1, 768))::vector(768) FROM generate_series(1, ${ROWS}) g`);
await sql(podA, 'ANALYZE vecs.big');
// Every new session here starts with 1 MB (the graph cannot fit) and no parallel workers; a small table may still
// get a worker (min_parallel_table_scan_size 0), so a worker seen comes from the plan's SET.
for (const setting of ["maintenance_work_mem = '1MB'", 'max_parallel_maintenance_workers = 0', 'min_parallel_table_scan_size = 0']) {
  await sql(podA, `ALTER DATABASE "${dbs.name}" SET ${setting}`);
}

/** A session on pod_a that collects the messages its statements raise, DEBUG1 included. */
async function listening(): Promise<{ db: Db; messages: string[] }> {
  const db = await connect({ database: 'pod_a', url: podA });
  const messages: string[] = [];
  db.on('notice', (n) => messages.push(n.message ?? ''));
  await db.query('SET client_min_messages = debug1');
  return { db, messages };
}

const settings = async (db: Db) =>
  (await db.query<{ mwm: string; workers: string }>(`SELECT current_setting('maintenance_work_mem') AS mwm, current_setting('max_parallel_maintenance_workers') AS workers`)).rows[0]!;
const indexes = async () =>
  (await sql<{ name: string }>(podA, `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'vecs.big'::regclass AND NOT indisprimary`)).map((r) => r.name);
const podSteps = (p: Awaited<ReturnType<typeof plan>>) => p.databases.filter((d) => d.steps.length > 0);

test('control: on this database a session builds the graph with 1 MB, from disk, serially (the witnesses are real)', async () => {
  const { db, messages } = await listening();
  try {
    await db.query('CREATE INDEX control_ix ON vecs.big USING hnsw (vec public.vector_cosine_ops) WITH (m = 4, ef_construction = 8)');
    await db.query('DROP INDEX vecs.control_ix');
  } finally {
    await close(db);
  }
  assert.ok(messages.some((m) => m.startsWith('hnsw graph no longer fits into maintenance_work_mem')), `the NOTICE: ${messages.join(' | ')}`);
  assert.ok(!messages.some((m) => /^using \d+ parallel workers/.test(m)), `no workers: ${messages.join(' | ')}`);
});

test('a plan for HNSW over existing rows shows the estimate and the maintenance_work_mem it will use, in its note and its SQL', async () => {
  const sharedBuffers = Number((await sql<{ b: string }>(podA, `SELECT setting::bigint * pg_size_bytes(unit) AS b FROM pg_settings WHERE name = 'shared_buffers'`))[0]!.b);
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64 }'));
  const p = await plan(file.load());
  // (8 + 4 × 768) × 3,000 × 1.3 = 12,012,000 bytes: 11.5 MB, 12MB for the SET (the sandbox's shared_buffers is larger).
  assert.ok(sharedBuffers >= 12 * 1024 * 1024, `shared_buffers ${sharedBuffers} leaves room for the raise`);
  const notes = p.notes.filter((n) => n.database === 'pod_a' && n.object.startsWith('index vecs.ix_')).map((n) => n.message);
  assert.deepEqual(notes, [
    "the HNSW build over about 3,000 rows of vecs.big needs about 11 MB ((8 + 4 × 768) bytes a row × 1.3); it will run with maintenance_work_mem 12 MB (the session has 1.0 MB) and no parallel workers (the session's max_parallel_maintenance_workers)",
  ]);
  assert.equal(formatBytes(12_012_000), '11 MB');
  const step = podSteps(p)[0]!.steps[0]!;
  assert.deepEqual(step.sql.filter((s) => /^(SET|RESET|CREATE INDEX) /.test(s)).map((s) => s.replace(/ "ix_.*/, ' …')), [
    "SET maintenance_work_mem = '12MB'",
    'CREATE INDEX CONCURRENTLY …',
    'RESET maintenance_work_mem',
  ]);
});

test('apply with build: { maintenance_work_mem: 96MB, parallel_workers: 1 } builds with them, in memory with a worker, and resets them', async () => {
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64, build: { maintenance_work_mem: 96MB, parallel_workers: 1 } }'));
  const p = await plan(file.load());
  const step = podSteps(p)[0]!.steps[0]!;
  assert.deepEqual(step.sql.filter((s) => /^(SET|RESET) /.test(s)), [
    "SET maintenance_work_mem = '96MB'", 'SET max_parallel_maintenance_workers = 1', 'RESET maintenance_work_mem', 'RESET max_parallel_maintenance_workers',
  ]);
  assert.ok(p.notes.some((n) => n.message.endsWith('it will run with maintenance_work_mem 96 MB (index.build.maintenance_work_mem; the session has 1.0 MB) and up to 1 parallel worker (index.build.parallel_workers)')),
    JSON.stringify(p.notes));
  const { db, messages } = await listening();
  try {
    await executePlan(p, new Map([['pod_a', db]]), new Map());
    assert.ok(messages.includes('using 1 parallel workers'), `pgvector started the worker: ${messages.join(' | ')}`);
    assert.ok(messages.some((m) => /^worker processed \d+ tuples/.test(m)), `and the worker took rows: ${messages.join(' | ')}`);
    assert.ok(!messages.some((m) => m.startsWith('hnsw graph no longer fits')), `the graph stayed in memory: ${messages.join(' | ')}`);
    assert.deepEqual(await settings(db), { mwm: '1MB', workers: '0' }, "the session's own settings again after the build");
  } finally {
    await close(db);
  }
  assert.equal((await indexes()).length, 1, 'the index is built');
});

test('a changed build: plans nothing once converged (build settings are not what the index is)', async () => {
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64, build: { maintenance_work_mem: 96MB, parallel_workers: 1 } }'));
  assert.deepEqual(podSteps(await plan(file.load())).map((d) => d.database), [], 'converged');
  for (const build of ['{ maintenance_work_mem: 2GB, parallel_workers: 2 }', '{ parallel_workers: 0 }', '{}']) {
    file.write(collection(`{ method: hnsw, m: 16, ef_construction: 64, build: ${build} }`));
    const p = await plan(file.load());
    assert.deepEqual(p.databases.flatMap((d) => d.steps.map((s) => s.id)), [], build);
  }
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64 }'));
  assert.deepEqual((await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => s.id)), [], 'no build at all');
});

test('a build that fails outside the transaction still resets its settings on the session', async () => {
  file.write(collection('{ method: hnsw, m: 8, ef_construction: 32, build: { maintenance_work_mem: 96MB, parallel_workers: 1 } }'));
  const p = await plan(file.load());
  const { db } = await listening();
  // The build waits for this lock, and gives up after lock_timeout: an error, the session intact.
  const holder = new pg.Client({ connectionString: podA });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE vecs.big IN ACCESS EXCLUSIVE MODE');
    await db.query("SET lock_timeout = '200ms'");
    await assert.rejects(executePlan(p, new Map([['pod_a', db]]), new Map()), /lock timeout/);
    assert.deepEqual(await settings(db), { mwm: '1MB', workers: '0' }, 'RESET after the failed build');
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
    await close(db);
  }
});
