/**
 * `vecscale recall` on real clusters. Its figures are checked against ones this file computes itself, in plain SQL:
 * the exact answer by a sequential scan on the pod, match_<c> through the primary with ef_search, the overlap counted
 * here. A collection without an index must measure recall 1; a small HNSW graph clearly less at ef_search 10, more
 * at 200; a sharded collection's exact answer is the brute-force top k over every partition on both pods.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { exactTopK, measureRecall, sampleQueries } from '../../src/recall/run.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('recall');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(dbs, `  flat:
    secondary: pod_a
    dimension: 16
    metric: inner_product
    index: { method: none }
  graph:
    secondary: pod_a
    dimension: 48
    metric: cosine
    index: { method: hnsw, m: 4, ef_construction: 8 }
  spread:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 32
    metric: l2
    index: { method: hnsw, m: 4, ef_construction: 8 }
`);
const topology = file.load();
await apply(topology, { approve: async () => true });

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const vec = (dim: number) => `[${Array.from({ length: dim }, () => (rand() * 2 - 1).toFixed(5)).join(',')}]`;
const rows = (prefix: string, n: number, dim: number) => Array.from({ length: n }, (_, i) => [`${prefix}-${i}`, vec(dim)] as const);

async function insert(url: string, table: string, data: ReadonlyArray<readonly [string, string]>, cols = '(id, vec, metadata)'): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = 0; i < data.length; i += 1000) {
      const chunk = data.slice(i, i + 1000);
      await client.query(`INSERT INTO ${table} ${cols} SELECT i, v::vector, '{}'::jsonb FROM unnest($1::text[], $2::text[]) AS u(i, v)`, [chunk.map((r) => r[0]), chunk.map((r) => r[1])]);
    }
  } finally {
    await client.end();
  }
}

// Straight into the pod tables (flat, graph); through the primary for the sharded one (it routes each row).
await insert(podA, 'vecs.flat', [...rows('f', 500, 16), ['f-dup-a', '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]'], ['f-dup-b', '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]']]);
await insert(podA, 'vecs.graph', rows('g', 3000, 48));
await insert(dbs.primary, 'public.spread', rows('s', 2000, 32), '(id, embedding, metadata)');
for (const t of ['vecs.flat', 'vecs.graph']) await sql(podA, `ANALYZE ${t}`);

/** recall@k of match_graph at this ef_search, computed here without src/recall. */
async function independentRecall(efSearch: number, k: number, n: number): Promise<number> {
  const pod = new pg.Client({ connectionString: podA });
  const primary = new pg.Client({ connectionString: dbs.primary });
  await pod.connect();
  await primary.connect();
  try {
    const queries = (await pod.query<{ v: string }>(`SELECT vec::text AS v FROM vecs.graph ORDER BY md5(id) LIMIT $1`, [n])).rows.map((r) => r.v);
    await pod.query('BEGIN');
    await pod.query('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off');
    let sum = 0;
    for (const q of queries) {
      const exact = (await pod.query<{ id: string }>(`SELECT id FROM vecs.graph ORDER BY vec <=> $1::vector LIMIT $2`, [q, k])).rows.map((r) => r.id);
      const approx = (await primary.query<{ id: string }>(`SELECT id FROM public.match_graph($1, $2, '{}', ef_search => $3)`, [q, k, efSearch])).rows.map((r) => r.id);
      sum += approx.filter((id) => exact.includes(id)).length / exact.length;
    }
    await pod.query('ROLLBACK');
    return sum / queries.length;
  } finally {
    await pod.end();
    await primary.end();
  }
}

test('no index: recall is 1.0 for every query (exact duplicates included: ties count)', async () => {
  const r = await measureRecall(topology, { collection: 'flat', queries: 50, k: 10 });
  assert.equal(r.settings.length, 1);
  const s = r.settings[0]!;
  assert.deepEqual([s.name, s.value, s.queries], [null, null, 50]);
  assert.equal(s.recall.mean, 1, `mean recall ${s.recall.mean}`);
  assert.equal(s.recall.min, 1, `min recall ${s.recall.min}`);
  assert.ok(s.latencyMs.p50 > 0 && s.latencyMs.p95 >= s.latencyMs.p50, `latencies ${JSON.stringify(s.latencyMs)}`);
  // The two identical vectors as queries: each is at distance -1 from both, whichever the search keeps.
  const dup = await measureRecall(topology, { collection: 'flat', vectors: [[1, ...Array(15).fill(0)]], k: 1 });
  assert.equal(dup.settings[0]!.recall.mean, 1, 'a tie at the k-th distance counts');
});

test('HNSW (m 4, ef_construction 8): recall rises from ef_search 10 to 200 and equals the one computed here', async () => {
  const r = await measureRecall(topology, { collection: 'graph', queries: 100, k: 10, efSearch: [10, 200] });
  assert.deepEqual(r.settings.map((s) => [s.name, s.value, s.queries]), [['ef_search', 10, 100], ['ef_search', 200, 100]]);
  const [low, high] = r.settings.map((s) => s.recall.mean) as [number, number];
  console.log(`graph recall@10: ef_search 10 → ${low}, 200 → ${high}; p50 ${r.settings.map((s) => s.latencyMs.p50.toFixed(2)).join(' / ')} ms`);
  assert.ok(low < 0.95, `recall at ef_search 10 should be clearly below 1, got ${low}`);
  assert.ok(high > low, `recall should rise with ef_search: ${low} → ${high}`);
  const mine = [await independentRecall(10, 10, 100), await independentRecall(200, 10, 100)];
  assert.ok(Math.abs(mine[0]! - low) < 1e-9, `ef_search 10: vecscale ${low}, computed here ${mine[0]}`);
  assert.ok(Math.abs(mine[1]! - high) < 1e-9, `ef_search 200: vecscale ${high}, computed here ${mine[1]}`);
  // No --ef-search: the collection's own (NULL to match_graph), reported as what it is.
  const own = await measureRecall(topology, { collection: 'graph', queries: 20 });
  assert.deepEqual([own.settings[0]!.value, own.settings[0]!.effective], [null, 100]);
});

test('sharded over two pods: the sample and the exact top k are the brute-force ones over every partition', async () => {
  const k = 10;
  const sample = await sampleQueries(topology, topology.collections.find((c) => c.name === 'spread')!, 20, { collection: 'spread' });
  const expected = (await sql<{ v: string }>(dbs.primary, `SELECT embedding::text AS v FROM public.spread ORDER BY md5(id) COLLATE "C" LIMIT 20`)).map((r) => r.v);
  assert.deepEqual(sample, expected, 'the sample is the 20 smallest md5(id) of the whole collection');
  const c = topology.collections.find((x) => x.name === 'spread')!;
  const exact = await exactTopK(topology, c, sample, k);
  // Brute force: every row's distance on both pods, from every partition table there, sorted here.
  const all = async (url: string, q: string) => {
    const tables = (await sql<{ t: string }>(url, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'vecs' AND tablename LIKE 'spread\\_p%'`)).map((r) => r.t);
    assert.equal(tables.length, 2, `two partitions on each pod: ${tables}`);
    return sql<{ id: string; distance: number }>(url, tables.map((t) => `SELECT id, (vec <-> $1::vector)::float8 AS distance FROM vecs."${t}"`).join(' UNION ALL '), [q]);
  };
  for (const [i, q] of sample.entries()) {
    const rows = [...(await all(podA, q)), ...(await all(podB, q))];
    assert.equal(rows.length, 2000, 'every row once');
    rows.sort((a, b) => a.distance - b.distance || (a.id < b.id ? -1 : 1));
    assert.deepEqual(exact[i], rows.slice(0, k), `query ${i}: the merged exact top ${k}`);
  }
  const r = await measureRecall(topology, { collection: 'spread', queries: 50, efSearch: [10, 400] });
  console.log(`spread recall@10: ${r.settings.map((s) => `ef_search ${s.value} → ${s.recall.mean}`).join(', ')}`);
  assert.ok(r.settings[1]!.recall.mean >= r.settings[0]!.recall.mean, `recall rises: ${JSON.stringify(r.settings.map((s) => s.recall))}`);
});

test('config errors before any connection: the other index kind\'s setting, bounds, unknown collection', async () => {
  await assert.rejects(measureRecall(topology, { collection: 'graph', probes: [3] }), /--probes applies to ivfflat indexes; collection graph has index method hnsw/);
  await assert.rejects(measureRecall(topology, { collection: 'flat', efSearch: [10] }), /--ef-search applies to hnsw indexes; collection flat has no index/);
  await assert.rejects(measureRecall(topology, { collection: 'graph', efSearch: [0] }), /--ef-search must be a whole number 1–1000/);
  await assert.rejects(measureRecall(topology, { collection: 'nope' }), /no collection "nope"/);
  await assert.rejects(measureRecall(topology, { collection: 'flat', vectors: [[1, 2]] }), /query vector 1 has 2 dimensions; collection flat has 16/);
});
