/**
 * Extracted columns on a sharded collection, on real clusters: the same rows in a sharded and a single-pod
 * collection with the same columns must read back identically (values that do not fit the type are NULL on both);
 * a filter on a column is shipped to every partition; match_<c> returns the columns; writes, upserts, UPDATE and
 * DELETE keep working; and a column added later is an in-place change on the primary (the shards' tables untouched).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { check } from '../../src/check.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('shcols');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const collections = (columns: string) => `  docs:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
    columns: { ${columns} }
  single:
    secondary: pod_a
    dimension: 3
    index: { method: none }
    columns: { ${columns} }
  img:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 3
    columns: { ${columns} }
`;
const file = topologyFile(dbs, collections('url: text, year: integer'));
await apply(file.load(), { approve: async () => true });

const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`));

/** 300 rows: url and year present, absent, of the wrong type, or out of range, in turn. */
const rows = `SELECT 'r' || g AS id, ('[' || sin(g) || ',' || cos(g) || ',' || sin(g * 0.5) || ']')::vector AS embedding,
  CASE g % 5
    WHEN 0 THEN jsonb_build_object('url', '/p/' || (g % 7), 'year', 2000 + g % 20, 'kind', 'a')
    WHEN 1 THEN jsonb_build_object('url', '/p/' || (g % 7), 'year', (2000 + g % 20)::text)
    WHEN 2 THEN jsonb_build_object('url', g, 'year', 'soon')
    WHEN 3 THEN jsonb_build_object('year', 1e12, 'lang', 'de')
    ELSE '{}'::jsonb END AS metadata
  FROM generate_series(1, 300) g`;

const text = async (q: string) => (await sql(dbs.primary, `EXPLAIN (VERBOSE, COSTS OFF) ${q}`)).map((r) => r['QUERY PLAN'] as string).join('\n');

test('public.<c> of a sharded collection has the typed columns; the same rows read back as on one pod', async () => {
  for (const c of ['docs', 'single', 'img']) await sql(dbs.primary, `INSERT INTO public.${c} (id, embedding, metadata) ${rows}`);
  const cols = await sql<{ n: string; t: string }>(dbs.primary,
    `SELECT attname::text AS n, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'public.docs'::regclass AND attnum > 0 ORDER BY attnum`);
  assert.deepEqual(cols.map((c) => `${c.n} ${c.t}`), ['id character varying', 'embedding vector(3)', 'metadata jsonb', 'url text', 'year integer']);
  const read = async (c: string) => sql(dbs.primary, `SELECT id, url, year, metadata FROM public.${c} ORDER BY id`);
  const single = await read('single');
  assert.equal(single.length, 300);
  assert.deepEqual(await read('docs'), single);
  assert.deepEqual(await read('img'), single);
  // The same rules as one pod: a value that does not fit the type (a number for text, a word for an integer) is NULL.
  const r2 = single.find((r) => r.id === 'r2')!;
  assert.deepEqual([r2.url, r2.year], [null, null]);
  const r3 = single.find((r) => r.id === 'r3')!;
  assert.deepEqual([r3.url, r3.year], [null, null]);
  // Both shards hold rows.
  for (const [url, t] of [[podA, 'docs_p0of2'], [podB, 'docs_p1of2']] as const) {
    assert.ok(((await sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM vecs.${t}`))[0]!.n) > 50, t);
  }
});

test('a filter on a column is evaluated on every shard (Remote SQL of each partition) and returns the brute-force answer', async () => {
  const q = `SELECT id FROM public.img WHERE url = '/p/3' AND year > 2005`;
  const explain = await text(q);
  for (const p of ['img_p0of4', 'img_p1of4', 'img_p2of4', 'img_p3of4']) {
    const remote = explain.split('\n').find((l) => l.includes(`Remote SQL: SELECT id FROM vecscale.${p} WHERE`)) ?? '';
    assert.ok(remote.includes(`url = '/p/3'`) && remote.includes('year > 2005'), explain);
  }
  const got = (await sql<{ id: string }>(dbs.primary, `${q} ORDER BY id`)).map((r) => r.id);
  // Brute force: every row, computed by hand from the metadata.
  const expected: string[] = [];
  for (let g = 1; g <= 300; g++) {
    const shaped = g % 5 === 0; // g % 5 = 1 has the year as a string: NULL, so not > 2005
    if (shaped && `/p/${g % 7}` === '/p/3' && 2000 + (g % 20) > 2005) expected.push(`r${g}`);
  }
  assert.ok(expected.length >= 5);
  assert.deepEqual(got, expected.sort());
  // ORDER BY distance with a column filter: the filter and the order are shipped to each partition (PostgreSQL
  // merges the partitions' ordered streams; the LIMIT stays on the primary, as for any sharded collection).
  const knn = `SELECT id FROM public.docs WHERE year >= 2010 ORDER BY embedding <=> '[1,0,0]' LIMIT 5`;
  assert.match(await text(knn), /Remote SQL: SELECT id, embedding FROM vecscale\.docs_p0of2 WHERE \(\(year >= 2010\)\) ORDER BY \(embedding OPERATOR/);
  const direct = (await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.single WHERE year >= 2010 ORDER BY embedding <=> '[1,0,0]', id LIMIT 5`)).map((r) => r.id);
  assert.deepEqual((await sql<{ id: string }>(dbs.primary, knn)).map((r) => r.id), direct);
});

test('match_<c> returns the columns, as for one pod', async () => {
  const call = (c: string, filter = '{}') =>
    sql(dbs.primary, `SELECT id, url, year FROM public.match_${c}('[1,0,0]', 8, $1::jsonb)`, [filter]);
  const single = await call('single');
  assert.equal(single.length, 8);
  assert.deepEqual(await call('docs'), single);
  const filtered = await call('docs', '{"kind": {"$eq": "a"}}');
  assert.deepEqual(filtered, await call('single', '{"kind": {"$eq": "a"}}'));
  assert.ok(filtered.every((r) => typeof r.url === 'string' && typeof r.year === 'number'), JSON.stringify(filtered));
});

test('writes through public.<c>, upserts, UPDATE and DELETE keep the columns in step on the owning shard', async () => {
  for (const c of ['docs', 'single']) {
    await sql(dbs.primary, `SELECT public.upsert_${c}('r5', '[0,0,1]', '{"url": "/new", "year": 2030}')`);
    await sql(dbs.primary, `SELECT public.upsert_${c}('[{"id": "n1", "embedding": [1,1,1], "metadata": {"url": "/n1", "year": "2031"}}, {"id": "r10", "embedding": [1,0,1]}]'::jsonb)`);
    await sql(dbs.primary, `UPDATE public.${c} SET metadata = '{"url": "/upd", "year": 1999}' WHERE id = 'r15'`);
    await sql(dbs.primary, `DELETE FROM public.${c} WHERE id = 'r20'`);
    await sql(dbs.primary, `INSERT INTO public.${c} (id, embedding, metadata) VALUES ('n2', '[0,1,1]', '{"url": "/n2"}')`);
  }
  const read = async (c: string) =>
    sql(dbs.primary, `SELECT id, url, year, embedding::text AS e FROM public.${c} WHERE id IN ('r5', 'n1', 'r10', 'r15', 'r20', 'n2') ORDER BY id`);
  const docs = await read('docs');
  assert.deepEqual(docs, await read('single'));
  // "2031" is a string: not an integer, as on one pod.
  assert.deepEqual(docs.map((r) => [r.id, r.url, r.year]), [['n1', '/n1', null], ['n2', '/n2', null], ['r10', null, null], ['r15', '/upd', 1999], ['r5', '/new', 2030]]);
  assert.equal((await check(file.load())).healthy, true, 'every row on its own partition');
  // The upserts are set-based on the shards: while the primary's session lasts, the wrapper's session on each shard
  // holds the upsert views' buffer.
  const c = new pg.Client({ connectionString: dbs.primary });
  await c.connect();
  try {
    for (const name of ['docs', 'single']) {
      await c.query(`SELECT public.upsert_${name}('[{"id": "r30", "embedding": [1,2,3]}, {"id": "r31", "embedding": [3,2,1]}, {"id": "r32", "embedding": [2,2,1]}, {"id": "r33", "embedding": [1,1,3]}]'::jsonb)`);
    }
    for (const url of [podA, podB]) {
      const n = (await sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'vecscale_upserts' AND relpersistence = 't'`))[0]!.n;
      assert.equal(n >= 1, true, url);
    }
  } finally {
    await c.end();
  }
});

test('adding a column to a sharded collection is in place: ALTER on the primary, CREATE OR REPLACE VIEW on the shards', async () => {
  file.write(collections('url: text, year: integer, lang: text'));
  const planned = await plan(file.load());
  const all = planned.databases.flatMap((d) => d.steps.map((s) => ({ db: d.database, ...s })));
  assert.ok(all.length > 0);
  // The functions returning the columns are redefined (their result type changes, as for one pod); nothing else is replaced.
  assert.deepEqual(all.filter((s) => s.action !== 'alter' && !s.object.startsWith('function ')).map((s) => `${s.db}: ${s.action} ${s.object}`), [], 'only in-place changes');
  assert.ok(!all.some((s) => s.object.startsWith('table vecs.')), 'no shard table is touched');
  const sqlText = all.flatMap((s) => s.sql).join('\n');
  assert.match(sqlText, /ALTER TABLE "vecscale_remote"."docs" ADD COLUMN "lang" text/);
  const before = await sql(podA, `SELECT relfilenode FROM pg_class WHERE oid = 'vecs.docs_p0of2'::regclass`);
  await apply(file.load(), { approve: async () => true });
  assert.deepEqual(await steps(), []);
  assert.deepEqual(await sql(podA, `SELECT relfilenode FROM pg_class WHERE oid = 'vecs.docs_p0of2'::regclass`), before);
  const de = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.docs WHERE lang = 'de' ORDER BY id`);
  assert.deepEqual(de, await sql(dbs.primary, `SELECT id FROM public.single WHERE lang = 'de' ORDER BY id`));
  assert.ok(de.length > 10);
  assert.match(await text(`SELECT id FROM public.docs WHERE lang = 'de'`), /Remote SQL: SELECT id FROM vecscale\.docs_p1of2 WHERE \(\(lang = 'de'(::text)?\)\)/);
  const m = await sql(dbs.primary, `SELECT id, lang FROM public.match_docs('[1,0,0]', 300, '{"lang": {"$eq": "de"}}')`);
  assert.equal(m.length, de.length);
  assert.ok(m.every((r) => r.lang === 'de'));
});
