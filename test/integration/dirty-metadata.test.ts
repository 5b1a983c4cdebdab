/**
 * vecs accepts any metadata: rows whose value for an extracted column does not fit its type must read NULL there,
 * and nothing that touches them — searches, filters, reads, deletes through the primary — may fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('dirty');
const podA = Object.values(dbs.secondaries)[0]!;
const COLUMNS = {
  i: 'integer', big: 'bigint', small: 'smallint', n: 'numeric', r: 'real', d: 'double precision', flag: 'boolean',
  day: 'date', ts: 'timestamp', tz: 'timestamptz', u: 'uuid', j: 'jsonb', t: 'text',
} as const;
const file = topologyFile(dbs, `  dirty:
    secondary: pod_a
    dimension: 3
    index: { method: hnsw, m: 16, ef_construction: 64 }
    columns: { ${Object.entries(COLUMNS).map(([k, v]) => `${k}: ${v}`).join(', ')} }
`);
await apply(file.load(), { approve: async () => true });

const GOOD = {
  i: 2012, big: 9007199254740991, small: -7, n: 1.25, r: 0.5, d: 1e300, flag: true, day: '2024-02-29',
  ts: '2024-05-01T10:30:00', tz: '2024-05-01T10:30:00Z', u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', j: { a: [1] }, t: 'hello',
};
// Per column, values that do not fit: each row below takes the i-th bad value of every column.
const BAD: Record<keyof typeof COLUMNS, readonly unknown[]> = {
  i: [2012.5, true, 'n/a', { from: 2012 }, [2012], 1e20, '2012'],
  big: [1.5, false, 'x', {}, [], 1e19, '1'],
  small: [40000, true, 'x', {}, [1], -32769, 0.1],
  n: [true, 'n/a', {}, [], '1.5', false, 'NaN'],
  r: [1e39, 1e-45, 'x', true, {}, [], 'infinity'],
  d: [true, 'x', {}, [], '1', false, 'NaN'],
  flag: ['true', 't', 1, 0, {}, [], 'yes'],
  day: ['2023-02-29', '2024-13-01', 'today', '2024-1-1', 20240101, true, '0000-01-01'],
  ts: ['2024-05-01T24:00:00', 'epoch', '2024-05-01T10:61', 'x', 1, {}, '2024-02-30T00:00'],
  tz: ['2024-05-01T10:30:00+16:00', 'now', 'infinity', 'x', 1, [], '2024-05-01T10:30:00 PST8PDT'],
  u: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'zz', 1, true, {}, '٠'],
  j: [], // jsonb takes every value
  t: [1, true, { a: 1 }, ['x'], 2.5, false, 0],
};
const BAD_ROWS = 7;
const client = new pg.Client({ connectionString: podA });
await client.connect();
const insert = (id: string, metadata: unknown, vec: string) =>
  client.query('INSERT INTO vecs.dirty (id, vec, metadata) VALUES ($1, $2, $3)', [id, vec, JSON.stringify(metadata)]);
await insert('good', GOOD, '[1,0,0]');
await insert('integral-float', { ...GOOD, i: 2012.0, small: 7.0 }, '[0.9,0.1,0]');
for (let k = 0; k < BAD_ROWS; k++) {
  const m = Object.fromEntries(Object.keys(COLUMNS).map((c) => [c, BAD[c as keyof typeof COLUMNS][k] ?? (GOOD as Record<string, unknown>)[c]]));
  await insert(`bad-${k}`, m, `[1,${(k + 1) / 10},0]`);
}
// A literal the JSON writer cannot make: a number far outside every float type (jsonb holds it exactly).
await client.query(`INSERT INTO vecs.dirty (id, vec, metadata) VALUES ('huge', '[1,0.05,0]', '{"i": 1e400, "r": 1e400, "d": -1e400, "n": 1e400, "big": -1e400}')`);
await client.end();

test('every column of a row with ill-typed metadata reads NULL through the primary, the others keep their values', async () => {
  const rows = await sql<Record<string, unknown>>(dbs.primary, `SELECT * FROM public.dirty ORDER BY id`);
  assert.equal(rows.length, BAD_ROWS + 3);
  const byId = new Map(rows.map((r) => [r.id as string, r]));
  for (let k = 0; k < BAD_ROWS; k++) {
    const row = byId.get(`bad-${k}`)!;
    for (const c of Object.keys(COLUMNS) as (keyof typeof COLUMNS)[]) {
      if (BAD[c][k] === undefined) continue;
      assert.equal(row[c], null, `bad-${k}.${c} (${JSON.stringify(BAD[c][k])}) reads NULL`);
    }
    assert.deepEqual(row.j, BAD.j[k] ?? GOOD.j);
  }
  const huge = byId.get('huge')!;
  assert.deepEqual([huge.i, huge.r, huge.d, huge.big], [null, null, null, null]);
  assert.equal(String(huge.n), `1${'0'.repeat(400)}`, 'numeric holds any JSON number');

  const [good] = await sql<Record<string, string>>(dbs.primary, `SELECT i::text, big::text, small::text, n::text, r::text, d::text, flag::text,
    day::text, ts::text, (tz AT TIME ZONE 'UTC')::text AS tz, u::text, j::text, t FROM public.dirty WHERE id = 'good'`);
  assert.deepEqual(good, {
    i: '2012', big: '9007199254740991', small: '-7', n: '1.25', r: '0.5', d: '1e+300', flag: 'true', day: '2024-02-29',
    ts: '2024-05-01 10:30:00', tz: '2024-05-01 10:30:00', u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', j: '{"a": [1]}', t: 'hello',
  });
  const [integral] = await sql<{ i: number; small: number }>(dbs.primary, `SELECT i, small FROM public.dirty WHERE id = 'integral-float'`);
  assert.deepEqual(integral, { i: 2012, small: 7 }, 'a number with an integral value fits an integer column');
});

test('a filter on such a column is "no match", evaluated on the secondary', async () => {
  const rows = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.dirty WHERE i = 2012 OR day = '2024-02-29' ORDER BY id`);
  assert.deepEqual(rows.map((r) => r.id), ['good', 'integral-float'], "'2012' (a string) is not the integer 2012");
  const plan = await sql<{ 'QUERY PLAN': string }>(dbs.primary, `EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM public.dirty WHERE i = 2012`);
  const text = plan.map((r) => r['QUERY PLAN']).join('\n');
  assert.match(text, /Remote SQL: .*WHERE \(\(i = 2012\)\)/, text);
  for (const [c, v] of [['flag', 'true'], ['u', "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"], ['r', '0.5'], ['tz', "'2024-05-01T10:30:00Z'"], ['t', "'hello'"]] as const) {
    const hits = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.dirty WHERE ${c} = ${v} ORDER BY id`);
    assert.ok(hits.every((h) => !h.id.startsWith('bad-') || BAD[c][Number(h.id.slice(4))] === undefined), `${c}: ${JSON.stringify(hits)}`);
    assert.ok(hits.some((h) => h.id === 'good'), c);
  }
});

test('match_<c> and a metadata filter scan the ill-typed rows without an error', async () => {
  const all = await sql<{ id: string; i: number | null }>(dbs.primary, `SELECT id, i FROM public.match_dirty('[1,0,0]', 20)`);
  assert.equal(all.length, BAD_ROWS + 3);
  assert.equal(all.find((r) => r.id === 'bad-0')?.i, null);
  const filtered = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_dirty('[1,0,0]', 20, '{"i": {"$gt": 2000}}')`);
  assert.ok(filtered.some((r) => r.id === 'good'));
});

test('a row with ill-typed metadata can be deleted through the primary', async () => {
  await sql(dbs.primary, `DELETE FROM public.dirty WHERE id = 'bad-2'`);
  const left = await sql(podA, `SELECT 1 FROM vecs.dirty WHERE id = 'bad-2'`);
  assert.equal(left.length, 0);
});

test('a wrapper view made by an older vecscale (a plain cast) is redefined in place, and the plan converges', async () => {
  // What vecscale before the NULL-safe casts created: the same columns, a cast that fails on dirty rows.
  const cols = Object.entries(COLUMNS).map(([k, v]) => (v === 'jsonb' ? `(metadata -> '${k}') AS ${k}` : `((metadata ->> '${k}')::${v}) AS ${k}`));
  await sql(podA, `CREATE OR REPLACE VIEW vecscale.dirty WITH (security_invoker=true) AS SELECT id, vec AS embedding, metadata, ${cols.join(', ')} FROM vecs.dirty`);
  await sql(podA, `DO $$ BEGIN SET LOCAL search_path = pg_catalog; EXECUTE format('COMMENT ON VIEW vecscale.dirty IS %L', 'managed by vecscale; definition md5 ' || md5(pg_get_viewdef('vecscale.dirty'::regclass))); END $$`);
  await assert.rejects(sql(dbs.primary, `SELECT i FROM public.dirty`), /invalid input syntax/);

  const all = (p: Awaited<ReturnType<typeof plan>>) => p.databases.flatMap((d) => d.steps);
  const before = all(await plan(file.load()));
  const steps = before.filter((s) => s.sql.some((q) => q.includes('VIEW "vecscale"."dirty"')));
  assert.equal(before.length, 1, JSON.stringify(before.map((s) => s.id)));
  assert.equal(steps[0]!.risk, 'safe', 'CREATE OR REPLACE VIEW: nothing depends on it being dropped');
  assert.match(steps[0]!.sql.join('\n'), /CREATE OR REPLACE VIEW/);
  await apply(file.load(), { approve: async () => true });
  assert.equal((await sql(dbs.primary, `SELECT i FROM public.dirty`)).length, BAD_ROWS + 2);
  assert.deepEqual(all(await plan(file.load())), []);
});
