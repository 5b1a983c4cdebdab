/**
 * Convergence on real clusters: apply from nothing, read the catalogs back, the next plan is empty; data flows from a
 * secondary through the primary; drift is planned back; adding a collection or changing an index keeps rows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { hasChanges, type Plan } from '../../src/plan/types.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile, type TopologyFile } from '../topology-files.js';

const DOCS = `  docs:
    secondary: pod_a
    dimension: 3
    metric: cosine
    index: { method: hnsw, m: 16, ef_construction: 64 }
    columns:
      url: text
      year: integer
`;

// Per-file setup at the top level: cleanup registered with after() then runs when the file ends.
const dbs = await freshDatabases('converge');
const podA = Object.values(dbs.secondaries)[0]!;
const podB = Object.values(dbs.secondaries)[1]!;
// Roles are cluster-wide: the API role the topology names exists before the first apply.
await sql(dbs.primary, `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vs_reader') THEN CREATE ROLE vs_reader; END IF; END $$`);
const file: TopologyFile = topologyFile(dbs, DOCS, 'api_roles: [vs_reader]\n');

const approve = async () => true;
const steps = (p: Plan) => p.databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`.replace(/fdw_\w+/, 'vecscale_fdw')));

test('apply from empty databases creates the exact objects; the next plan is empty', async () => {
  const first = await plan(file.load());
  assert.ok(hasChanges(first));
  const result = await apply(file.load(), { approve });
  assert.equal(result.status, 'applied');

  // Secondary: the vecs contract.
  const cols = await sql(podA, `SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull FROM pg_attribute
     WHERE attrelid = 'vecs.docs'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`);
  assert.deepEqual(cols, [
    { attname: 'id', type: 'character varying', attnotnull: true },
    { attname: 'vec', type: 'vector(3)', attnotnull: true },
    { attname: 'metadata', type: 'jsonb', attnotnull: true },
  ]);
  const [rel] = await sql(podA, `SELECT relkind FROM pg_class WHERE oid = 'vecs.docs'::regclass`);
  assert.equal(rel!.relkind, 'r');
  const [def] = await sql(podA, `SELECT pg_get_expr(adbin, adrelid) AS d FROM pg_attrdef WHERE adrelid = 'vecs.docs'::regclass`);
  assert.equal(def!.d, "'{}'::jsonb");
  const [pk] = await sql(podA, `SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'vecs.docs'::regclass AND contype = 'p'`);
  assert.equal(pk!.d, 'PRIMARY KEY (id)');
  const idx = await sql(podA, `SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
     WHERE i.indrelid = 'vecs.docs'::regclass AND am.amname IN ('hnsw', 'ivfflat')`);
  assert.equal(idx.length, 1);
  assert.match(idx[0]!.relname, /^ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}$/);
  const inVecs = await sql(podA, `SELECT relname, relkind FROM pg_class WHERE relnamespace = 'vecs'::regnamespace AND relkind IN ('r','v','f','p','m') ORDER BY 1`);
  assert.deepEqual(inVecs, [{ relname: 'docs', relkind: 'r' }], 'nothing else of vecscale in schema vecs');
  const viewCols = await sql(podA, `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = 'vecscale.docs'::regclass AND attnum > 0 ORDER BY attnum`);
  assert.deepEqual(viewCols, [
    { attname: 'id', type: 'character varying' },
    { attname: 'embedding', type: 'vector(3)' },
    { attname: 'metadata', type: 'jsonb' },
    { attname: 'url', type: 'text' },
    { attname: 'year', type: 'integer' },
  ]);

  // Primary: server with extensions 'vector', a mapping, the foreign table, the API view.
  const [srv] = await sql(dbs.primary, `SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'pod_a'`);
  assert.ok((srv!.srvoptions as string[]).includes('extensions=vector'));
  assert.ok(!(srv!.srvoptions as string[]).some((o) => o.startsWith('password')), 'no password in server options');
  const maps = await sql(dbs.primary, `SELECT srvname, usename FROM pg_user_mappings ORDER BY 1`);
  // One mapping per server, FOR PUBLIC: the API objects run as their callers.
  assert.deepEqual(maps, [{ srvname: 'pod_a', usename: 'public' }, { srvname: 'pod_b', usename: 'public' }]);
  const ftCols = await sql(dbs.primary, `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = 'vecscale_remote.docs'::regclass AND attnum > 0 ORDER BY attnum`);
  assert.deepEqual(ftCols, viewCols);
  const [api] = await sql(dbs.primary, `SELECT relkind FROM pg_class WHERE oid = 'public.docs'::regclass`);
  assert.equal(api!.relkind, 'v');

  const again = await plan(file.load());
  assert.deepEqual(steps(again), [], 'converged');
});

test('rows written on the secondary are read through the primary, extracted columns included, kNN shipped', async () => {
  await sql(podA, `INSERT INTO vecs.docs (id, vec, metadata) VALUES
    ('a', '[1,0,0]', '{"url": "https://a", "year": 2020}'),
    ('b', '[0,1,0]', '{"url": "https://b", "year": 2021}'),
    ('c', '[0.9,0.1,0]', '{"year": 2022}')`);
  const rows = await sql(dbs.primary, `SELECT id, url, year, metadata FROM public.docs ORDER BY id`);
  assert.deepEqual(rows, [
    { id: 'a', url: 'https://a', year: 2020, metadata: { url: 'https://a', year: 2020 } },
    { id: 'b', url: 'https://b', year: 2021, metadata: { url: 'https://b', year: 2021 } },
    { id: 'c', url: null, year: 2022, metadata: { year: 2022 } },
  ]);
  const knn = `SELECT id FROM public.docs ORDER BY embedding <=> '[1,0,0]' LIMIT 2`;
  assert.deepEqual((await sql(dbs.primary, knn)).map((r) => r.id), ['a', 'c']);
  const explain = (await sql(dbs.primary, `EXPLAIN (VERBOSE, COSTS OFF) ${knn}`)).map((r) => r['QUERY PLAN'] as string).join('\n');
  assert.match(explain, /Remote SQL: .*ORDER BY \(embedding OPERATOR\(public\.<=>\) '\[1,0,0\]'\) ASC NULLS LAST LIMIT 2::bigint/);
  assert.deepEqual(steps(await plan(file.load())), [], 'data changes no plan');
});

test('a foreign table dropped by hand is planned back and restored', async () => {
  await sql(dbs.primary, 'DROP FOREIGN TABLE vecscale_remote.docs CASCADE');
  const drift = await plan(file.load());
  assert.deepEqual(steps(drift), ['primary: create foreign table vecscale_remote.docs', 'primary: create view public.docs']);
  await apply(file.load(), { approve });
  assert.equal((await sql(dbs.primary, 'SELECT count(*)::int AS n FROM public.docs'))[0]!.n, 3);
  assert.deepEqual(steps(await plan(file.load())), []);
});

test('a view edited by hand with the same columns is planned back and repaired', async () => {
  await sql(podA, `CREATE OR REPLACE VIEW vecscale.docs WITH (security_invoker = true) AS SELECT id, vec AS embedding, metadata,
    (metadata ->> 'link')::text AS url, ((metadata ->> 'year')::integer) AS year FROM vecs.docs`);
  const drift = await plan(file.load());
  // The rebuilt view gets its whole ACL (the wrapper role's SELECT) again as it is created.
  assert.deepEqual(steps(drift), ['pod_a: replace view vecscale.docs']);
  assert.equal(drift.databases[0]!.steps[0]!.reason, 'definition edited outside vecscale');
  await apply(file.load(), { approve });
  assert.deepEqual(steps(await plan(file.load())), []);
  assert.equal((await sql(dbs.primary, `SELECT url FROM public.docs WHERE id = 'a'`))[0]!.url, 'https://a');
});

test('a server option changed by hand is planned as an in-place change and repaired', async () => {
  await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (DROP extensions)`);
  const drift = await plan(file.load());
  assert.deepEqual(steps(drift), ['primary: alter server pod_a']);
  assert.match(drift.databases.find((d) => d.database === 'primary')!.steps[0]!.reason, /extensions: \(none\) → vector/);
  await apply(file.load(), { approve });
  assert.deepEqual(steps(await plan(file.load())), []);
});

test('adding a collection changes nothing else and keeps existing rows', async () => {
  file.write(`${DOCS}  images:
    secondary: pod_b
    dimension: 4
    metric: l2
    index: { method: ivfflat, lists: 10 }
`);
  const p = await plan(file.load());
  // Only the new collection's objects, and the wrapper role's privileges on them.
  assert.ok(steps(p).every((s) => s.includes('images') || s === 'pod_b: create schema vecscale' || s === 'pod_b: create function vecscale.upsert_row' || s === 'pod_b: create database defaults'), steps(p).join('\n'));
  await apply(file.load(), { approve });
  assert.equal((await sql(podA, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 3);
  assert.deepEqual(steps(await plan(file.load())), []);
});

const IMAGES = `  images:
    secondary: pod_b
    dimension: 4
    metric: l2
    index: { method: ivfflat, lists: 10 }
`;

const DOCS_M8 = DOCS.replace('m: 16, ef_construction: 64', 'm: 8, ef_construction: 32');

test('adding a metadata column changes the views in place: the API grant holds throughout', async () => {
  const [before] = await sql(dbs.primary, `SELECT has_table_privilege('vs_reader', 'public.docs', 'SELECT') AS ok`);
  assert.equal(before!.ok, true, 'api_roles are granted SELECT on the API view');
  const withLang = DOCS + '      lang: text\n';
  file.write(withLang + IMAGES);
  const p = await plan(file.load());
  assert.deepEqual(steps(p), [
    'pod_a: alter view vecscale.docs',
    'primary: alter foreign table vecscale_remote.docs',
    'primary: replace function public.match_docs',
    'primary: replace function vecscale.match_sql_docs',
    'primary: replace function vecscale.search_docs',
    'primary: alter view public.docs',
  ]);
  await apply(file.load(), { approve });
  const [grant] = await sql(dbs.primary, `SELECT has_table_privilege('vs_reader', 'public.docs', 'SELECT') AS ok`);
  assert.equal(grant!.ok, true);
  assert.deepEqual(await sql(dbs.primary, `SELECT lang FROM public.docs WHERE id = 'a'`), [{ lang: null }]);
  assert.deepEqual(steps(await plan(file.load())), []);
  // Removing the column again cannot be done in place: the views and the foreign table are replaced.
  file.write(DOCS + IMAGES);
  const back = await plan(file.load());
  assert.deepEqual(steps(back), [
    'pod_a: replace view vecscale.docs',
    'primary: replace foreign table vecscale_remote.docs',
    'primary: replace function public.match_docs',
    'primary: replace function vecscale.match_sql_docs',
    'primary: replace function vecscale.search_docs',
    'primary: replace view public.docs',
  ]);
  await apply(file.load(), { approve });
  assert.deepEqual(steps(await plan(file.load())), []);
  // Replaced objects get the API grants again.
  const [after] = await sql(dbs.primary, `SELECT has_table_privilege('vs_reader', 'public.docs', 'SELECT') AS view, has_function_privilege('vs_reader', 'public.match_docs(vector, integer, jsonb, integer, integer, text)', 'EXECUTE') AS fn`);
  assert.deepEqual(after, { view: true, fn: true });
});

test('changing the index parameters replaces the index and keeps the rows', async () => {
  file.write(DOCS_M8 + `  images:
    secondary: pod_b
    dimension: 4
    metric: l2
    index: { method: ivfflat, lists: 10 }
`);
  const p = await plan(file.load());
  assert.deepEqual(steps(p), ['pod_a: replace index vecs.' + p.databases[0]!.steps[0]!.object.split('.')[1]]);
  await apply(file.load(), { approve });
  const idx = await sql(podA, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
     WHERE i.indrelid = 'vecs.docs'::regclass AND am.amname = 'hnsw'`);
  assert.equal(idx.length, 1);
  assert.match(idx[0]!.relname, /^ix_vector_cosine_ops_hnsw_m8_efc32_/);
  assert.equal((await sql(podA, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 3);
  assert.deepEqual(steps(await plan(file.load())), []);
});

test('an empty collection removed from the file is dropped with its wrappers (RESTRICT); the others keep their rows', async () => {
  file.write(DOCS_M8);
  const p = await plan(file.load());
  assert.deepEqual(p.blockers, []);
  assert.ok(steps(p).every((s) => s.includes(': drop ') && (s.includes('images') || s === 'pod_b: drop function vecscale.upsert_row' || s === 'pod_b: drop database defaults')), steps(p).join('\n'));
  assert.ok(steps(p).includes('pod_b: drop table vecs.images'));
  await apply(file.load(), { approve });
  assert.deepEqual(steps(await plan(file.load())), []);
  assert.deepEqual(await sql(podB, `SELECT to_regclass('vecs.images') AS t`), [{ t: null }]);
  assert.deepEqual(await sql(dbs.primary, `SELECT to_regclass('public.images') AS v, to_regprocedure('public.match_images(vector, integer, jsonb, integer, integer, text)') AS f`), [{ v: null, f: null }]);
  assert.equal((await sql(podA, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 3);
});
