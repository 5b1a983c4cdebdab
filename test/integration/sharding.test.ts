/**
 * Sharded collections on real clusters: routing of writes, pruning of reads by id, match_* fanned out to every
 * partition (the shards' own pg_stat_activity as the witness), upserts on the owning shard, `check`, and refused layout changes.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { check } from '../../src/check.js';
import { explainMatch } from '../../src/query/run.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('sharding');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
// `flat` has no vector index (exact search: results comparable with brute force); `img` has HNSW over 4 partitions.
const collections = `  flat:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
  img:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 3
`;
const file = topologyFile(dbs, collections);
await apply(file.load(), { approve: async () => true });

const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`.replace(/fdw_\w+/, 'vecscale_fdw')));
const count = async (url: string, table: string) => (await sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM vecs.${table}`))[0]!.n;

/** Deterministic vectors: row g of 200. */
const rows = `SELECT 'r' || g AS id, ('[' || sin(g) || ',' || cos(g) || ',' || sin(g * 0.5) || ']')::vector AS embedding,
                     jsonb_build_object('g', g, 'kind', CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END) AS metadata
                FROM generate_series(1, 200) g`;

test('each shard holds its partitions as vecs collections <c>_p<i>of<n>, with their indexes', async () => {
  const tables = async (url: string) =>
    (await sql<{ t: string }>(url, `SELECT relname::text AS t FROM pg_class WHERE relnamespace = 'vecs'::regnamespace AND relkind = 'r' ORDER BY 1`)).map((r) => r.t);
  assert.deepEqual(await tables(podA), ['flat_p0of2', 'img_p0of4', 'img_p2of4']);
  assert.deepEqual(await tables(podB), ['flat_p1of2', 'img_p1of4', 'img_p3of4']);
  const indexes = await sql<{ i: string }>(podA, `SELECT indexrelid::regclass::text AS i FROM pg_index WHERE indrelid = 'vecs.img_p2of4'::regclass AND NOT indisprimary`);
  assert.match(indexes[0]!.i, /^vecs\.ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}$/);
  assert.deepEqual(await steps(), []);
});

test('INSERT and COPY through public.<c> route every row to its shard; a read by id scans one partition', async () => {
  await sql(dbs.primary, `INSERT INTO public.flat (id, embedding, metadata) ${rows}`);
  const a = await count(podA, 'flat_p0of2');
  const b = await count(podB, 'flat_p1of2');
  assert.ok(a > 0 && b > 0, `both shards hold rows (${a}, ${b})`);
  assert.equal(a + b, 200);
  // COPY into the view (INSTEAD OF INSERT trigger), from a file the server reads.
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-copy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const csv = join(dir, 'rows.csv');
  writeFileSync(csv, Array.from({ length: 50 }, (_, i) => `c${i},"[${i},1,2]","{""copied"": true}"`).join('\n') + '\n', { mode: 0o644 });
  await sql(dbs.primary, `COPY public.img (id, embedding, metadata) FROM '${csv}' WITH (FORMAT csv)`);
  const parts = await Promise.all([count(podA, 'img_p0of4'), count(podB, 'img_p1of4'), count(podA, 'img_p2of4'), count(podB, 'img_p3of4')]);
  assert.equal(parts.reduce((x, y) => x + y, 0), 50);
  assert.ok(parts.every((n) => n > 0), `every partition got rows (${parts.join(', ')})`);
  const explained = await sql<{ 'QUERY PLAN': string }>(dbs.primary, `EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM public.flat WHERE id = 'r7'`);
  const text = explained.map((r) => r['QUERY PLAN']).join('\n');
  assert.equal((text.match(/Foreign Scan on/g) ?? []).length, 1, text);
  assert.match(text, /Remote SQL: SELECT .* FROM vecscale\.flat_p[01]of2 WHERE \(\(id = 'r7'\)\)/);
  assert.deepEqual(await sql(dbs.primary, `SELECT id, metadata->>'g' AS g FROM public.flat WHERE id = 'r7'`), [{ id: 'r7', g: '7' }]);
});

test('match_<c> without a vector index returns exactly the brute-force top k, with and without a filter', async () => {
  const q = '[0.3,0.9,-0.2]';
  const exact = async (where: string, k: number) =>
    (await sql<{ id: string }>(dbs.primary, `SELECT id FROM (${rows}) r ${where} ORDER BY embedding <=> '${q}', id LIMIT ${k}`)).map((r) => r.id);
  const match = async (filter: string, k: number) =>
    (await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_flat('${q}', ${k}, '${filter}')`)).map((r) => r.id);
  assert.deepEqual(await match('{}', 10), await exact('', 10));
  assert.deepEqual(await match('{"kind": {"$eq": "a"}}', 7), await exact(`WHERE metadata->>'kind' = 'a'`, 7));
  assert.deepEqual(await match('{"g": {"$lt": 50}}', 25), await exact(`WHERE (metadata->>'g')::int < 50`, 25));
  const [first] = await sql<{ id: string; distance: number; metadata: unknown }>(dbs.primary, `SELECT * FROM public.match_flat('${q}', 1)`);
  assert.deepEqual(Object.keys(first!), ['id', 'metadata', 'distance']);
});

test('the partitions run at once: with every partition slowed by 500 ms, a call takes about 500 ms, not 2 s (4 partitions on 2 pods)', async () => {
  // A row-level policy whose uncorrelated subquery (an InitPlan: once per statement) sleeps: each partition's
  // statement, run as the wrapper role, takes 500 ms more. Sequentially the 4 would take 2 s.
  const fdwUser = file.load().secondaries[0]!.fdwUser;
  const slow = (table: string) => `ALTER TABLE vecs.${table} ENABLE ROW LEVEL SECURITY;
    CREATE POLICY slow ON vecs.${table} TO ${fdwUser} USING ((SELECT 1 FROM pg_catalog.pg_sleep(0.5)) = 1)`;
  const fast = (table: string) => `DROP POLICY slow ON vecs.${table}; ALTER TABLE vecs.${table} DISABLE ROW LEVEL SECURITY`;
  const parts = [[podA, 'img_p0of4'], [podB, 'img_p1of4'], [podA, 'img_p2of4'], [podB, 'img_p3of4']] as const;
  const client = new pg.Client({ connectionString: dbs.primary });
  await client.connect();
  try {
    await client.query(`SELECT * FROM public.match_img('[1,0,0]', 5)`); // the session's connections are open
    for (const [url, table] of parts) await sql(url, slow(table));
    const started = performance.now();
    const { rows: got } = await client.query(`SELECT id FROM public.match_img('[1,0,0]', 5)`);
    const ms = performance.now() - started;
    assert.equal(got.length, 5);
    assert.ok(ms >= 450, `${ms.toFixed(0)} ms: the policy did slow the partitions`);
    assert.ok(ms < 1500, `${ms.toFixed(0)} ms: the partitions ran one after another`);
  } finally {
    await client.end();
    for (const [url, table] of parts) await sql(url, fast(table));
  }
});

test('per-call settings: ef_search, probes and iterative_scan by name (as supabase-js rpc() sends them); absurd values refused', async () => {
  const q = '[0.3,0.9,-0.2]';
  const ids = async (args: string) => (await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_img('${q}', 10${args})`)).map((r) => r.id);
  const plain = await ids('');
  assert.deepEqual(await ids(', ef_search => 400'), plain);
  assert.deepEqual(await ids(`, '{}', ef_search => 40, iterative_scan => 'strict_order'`), plain);
  assert.equal((await ids(`, '{"kind": {"$eq": "a"}}', iterative_scan => 'off', probes => 3`)).length <= 10, true);
  await assert.rejects(sql(dbs.primary, `SELECT * FROM public.match_img('${q}', 10, ef_search => 1000000000)`), /ef_search must be between 1 and 1000/);
  await assert.rejects(sql(dbs.primary, `SELECT * FROM public.match_img('${q}', 10, iterative_scan => 'on')`), /iterative_scan must be one of/);
});

test('every call of match_<c> sends ORDER BY … LIMIT k (and the filter) to every partition at once, each on its own connection', async () => {
  const client = new pg.Client({ connectionString: dbs.primary });
  await client.connect();
  const fdw = fdwUserFor(dbs);
  try {
    for (let i = 0; i < 10; i++) {
      const filter = i % 2 === 0 ? '{}' : '{"kind": {"$eq": "b"}}';
      await client.query(`SELECT * FROM public.match_img('[1,${i},0.5]', 5, '${filter}')`);
      // The session keeps its dblink connections: each shard's wrapper backends show what they ran last — this
      // call's statement (its vector), one backend per partition.
      const sent: Array<{ pid: number; query: string }> = [];
      for (const url of [podA, podB]) {
        sent.push(...(await sql<{ pid: number; query: string }>(url,
          `SELECT pid, query FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND datname = current_database() AND query LIKE $2`, [fdw, `%'[1,${i},0.5]'%`])));
      }
      assert.equal(sent.length, 4, `call ${i + 1}: one statement per partition, each on its own connection`);
      const tables = sent.map((m) => /FROM "vecs"\."(img_p\dof4)" t/.exec(m.query)?.[1]).sort();
      assert.deepEqual(tables, ['img_p0of4', 'img_p1of4', 'img_p2of4', 'img_p3of4']);
      for (const m of sent) {
        assert.match(m.query, /^SELECT pg_catalog\.concat\(pg_catalog\.set_config\('statement_timeout', '\d+', true\)/);
        assert.match(m.query, / ORDER BY t\.vec OPERATOR\("public"\.<=>\) '\[[^\]]+\]'::"public"\.vector LIMIT 5$/);
        if (i % 2 === 1) assert.match(m.query, / WHERE /);
        else assert.doesNotMatch(m.query, / WHERE /);
      }
    }
  } finally {
    await client.end();
  }
  const explained = await explainMatch(file.load(), { collection: 'img', limit: 5, filter: { kind: { $eq: 'b' } } });
  assert.ok(explained.ok, explained.match.plan);
  assert.deepEqual(explained.sharded, { partitions: 4, concurrent: 4 });
  // Each partition's statement, planned on its own secondary: the LIMIT and the filter run there (200 rows: a scan).
  assert.equal((explained.match.plan.match(/^Limit$/gm) ?? []).length, 4, explained.match.plan);
  assert.equal((explained.match.plan.match(/Filter: \(jsonb_path_query_first\(t\.metadata/g) ?? []).length, 4, explained.match.plan);
});

test('upsert_<c> runs INSERT … ON CONFLICT on the owning shard: one row cluster-wide, the newer metadata; batch form too', async () => {
  await sql(dbs.primary, `SELECT public.upsert_img('u1', '[1,1,0]', '{"v": 1}')`);
  await sql(dbs.primary, `SELECT public.upsert_img('u1', '[1,1,1]', '{"v": 2}')`);
  const everywhere = async (id: string) => [
    ...(await sql(podA, `SELECT vec::text AS vec, metadata FROM vecs.img_p0of4 WHERE id = $1 UNION ALL SELECT vec::text, metadata FROM vecs.img_p2of4 WHERE id = $1`, [id])),
    ...(await sql(podB, `SELECT vec::text AS vec, metadata FROM vecs.img_p1of4 WHERE id = $1 UNION ALL SELECT vec::text, metadata FROM vecs.img_p3of4 WHERE id = $1`, [id])),
  ];
  assert.deepEqual(await everywhere('u1'), [{ vec: '[1,1,1]', metadata: { v: 2 } }]);
  await sql(dbs.primary, `SELECT public.upsert_img('[{"id": "b1", "embedding": [1,0,0], "metadata": {"n": 1}}, {"id": "b2", "embedding": [0,1,0], "metadata": {"n": 2}},
                                                    {"id": "b1", "embedding": [0,0,1], "metadata": {"n": 3}}]')`);
  assert.deepEqual(await everywhere('b1'), [{ vec: '[0,0,1]', metadata: { n: 3 } }]);
  assert.deepEqual(await everywhere('b2'), [{ vec: '[0,1,0]', metadata: { n: 2 } }]);
  // In the caller's transaction: rolled back, nothing stays.
  const client = new pg.Client({ connectionString: dbs.primary });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT public.upsert_img('rolled-back', '[1,2,3]')`);
    await client.query('ROLLBACK');
  } finally {
    await client.end();
  }
  assert.deepEqual(await everywhere('rolled-back'), []);
  await assert.rejects(sql(dbs.primary, `SELECT public.upsert_img('x', '[1,2]')`), /expected 3 dimensions/);
});

test('check finds rows written straight into the wrong partition, naming partition and id', async () => {
  assert.equal((await check(file.load())).healthy, true);
  // r7 belongs to one partition of flat: put a copy on the other one, behind the primary's back.
  const home = (await sql<{ t: string }>(dbs.primary, `SELECT tableoid::regclass::text AS t FROM vecscale_remote.flat WHERE id = 'r7'`))[0]!.t;
  const [wrongUrl, wrongTable] = home.endsWith('p0of2') ? [podB, 'flat_p1of2'] : [podA, 'flat_p0of2'];
  await sql(wrongUrl, `INSERT INTO vecs.${wrongTable} (id, vec) VALUES ('r7', '[1,1,1]'), ('stray', '[1,0,1]')`);
  const report = await check(file.load());
  assert.equal(report.healthy, false);
  const bad = report.partitions.filter((p) => p.misplaced > 0);
  assert.equal(bad.length <= 1 && bad[0]?.partition, wrongTable);
  assert.ok(bad[0]!.rows.some((r) => r.id === 'r7' && r.belongs === home.split('.')[1]), JSON.stringify(bad));
  await sql(wrongUrl, `DELETE FROM vecs.${wrongTable} WHERE id IN ('r7', 'stray')`);
  // 'stray' may hash to wrongTable itself: then it was no problem; either way the collection is healthy again.
  assert.equal((await check(file.load())).healthy, true);
});

test('with data written, plan is empty; changing shards or partitions of a collection with rows plans a move, nothing destructive', async () => {
  assert.deepEqual(await steps(), []);
  for (const changed of [collections.replace('partitions: 4', 'partitions: 8'), collections.replace('shards: [pod_a, pod_b]\n    partitions', 'shards: [pod_b, pod_a]\n    partitions')]) {
    file.write(changed);
    const p = await plan(file.load());
    assert.deepEqual(p.blockers, []);
    assert.deepEqual(p.databases.flatMap((d) => d.steps).filter((s) => s.risk === 'destructive'), []);
    assert.deepEqual(p.moves?.map((m) => [m.collection, m.kind]), [['img', 'move']]);
  }
  file.write(collections);
  assert.deepEqual(await steps(), []);
  assert.equal(await count(podA, 'img_p0of4') + await count(podB, 'img_p1of4') + await count(podA, 'img_p2of4') + await count(podB, 'img_p3of4'), 53);
});

test('an empty sharded collection may change its layout: the primary re-partitions, the old empty tables are dropped', async () => {
  const t = `${collections}  empty:\n    shards: [pod_a, pod_b]\n    dimension: 3\n`;
  file.write(t);
  await apply(file.load(), { approve: async () => true });
  file.write(t.replace(/(empty:\n    shards: \[pod_a, pod_b\]\n)/, '$1    partitions: 4\n'));
  const p = await plan(file.load());
  assert.deepEqual(p.blockers, []);
  await apply(file.load(), { approve: async () => true });
  assert.deepEqual(await steps(), []);
  const parts = await sql<{ p: string }>(dbs.primary, `SELECT inhrelid::regclass::text AS p FROM pg_inherits WHERE inhparent = 'vecscale_remote.empty'::regclass ORDER BY 1`);
  assert.deepEqual(parts.map((r) => r.p), ['vecscale_remote.empty_p0of4', 'vecscale_remote.empty_p1of4', 'vecscale_remote.empty_p2of4', 'vecscale_remote.empty_p3of4']);
  assert.deepEqual(await sql(podA, `SELECT to_regclass('vecs.empty_p0of2') AS t, to_regclass('vecscale.empty_p0of2') AS v`), [{ t: null, v: null }]);
  await sql(dbs.primary, `INSERT INTO public.empty (id, embedding) VALUES ('x', '[1,2,3]')`);
  assert.equal((await sql(dbs.primary, `SELECT count(*)::int AS n FROM public.match_empty('[1,2,3]', 3)`))[0]!.n, 1);
});
