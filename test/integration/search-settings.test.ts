/**
 * Per-call search settings of match_<c> on real clusters: a hard query set (a sparse HNSW graph) where ef_search
 * decides recall, on one secondary and sharded; by name, as supabase-js rpc() sends them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('search_settings');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
// m 4, ef_construction 8: a graph sparse enough that ef_search 10 misses neighbours ef_search 400 finds.
const file = topologyFile(
  dbs,
  `  hard:
    secondary: pod_a
    dimension: 32
    metric: l2
    index: { method: hnsw, m: 4, ef_construction: 8 }
    query: { ef_search: 40, iterative_scan: "off" }
  hardsh:
    shards: [pod_a, pod_b]
    dimension: 32
    metric: l2
    index: { method: hnsw, m: 4, ef_construction: 8 }
    query: { ef_search: 40, iterative_scan: "off" }
`,
);
await apply(file.load(), { approve: async () => true });

const N = 4000;
const rows = `SELECT 'r' || g AS id, ARRAY(SELECT sin(g * 7.3 + d * 1.9) * cos(g * 0.37 * d) FROM generate_series(1, 32) d)::real[]::vector AS v FROM generate_series(1, ${N}) g`;
await sql(dbs.primary, `INSERT INTO public.hard (id, embedding) SELECT id, v FROM (${rows}) r`);
await sql(dbs.primary, `INSERT INTO public.hardsh (id, embedding) SELECT id, v FROM (${rows}) r`);
for (const [url, table] of [[podA, 'hard'], [podA, 'hardsh_p0of2'], [podB, 'hardsh_p1of2']] as const) await sql(url, `VACUUM ANALYZE vecs.${table}`);

const queries = Array.from({ length: 25 }, (_, i) => `[${Array.from({ length: 32 }, (_, d) => Math.sin(i * 3.1 + d * 0.7).toFixed(4)).join(',')}]`);
/** The exact top 10 (no index involved). */
const exact = async (q: string) =>
  (await sql<{ id: string }>(dbs.primary, `SELECT id FROM (${rows}) r ORDER BY v <-> '${q}', id LIMIT 10`)).map((r) => r.id);
const truth = await Promise.all(queries.map(exact));

async function recall(collection: string, args: string, client?: pg.Client): Promise<number> {
  let hits = 0;
  for (const [i, q] of queries.entries()) {
    const text = `SELECT id FROM public.match_${collection}('${q}', 10${args})`;
    const got = (client ? (await client.query<{ id: string }>(text)).rows : await sql<{ id: string }>(dbs.primary, text)).map((r) => r.id);
    hits += got.filter((id) => truth[i]!.includes(id)).length;
  }
  return hits / (queries.length * 10);
}

for (const collection of ['hard', 'hardsh']) {
  test(`${collection}: ef_search => 400 raises recall over ef_search => 10 and the topology's 40`, async () => {
    const low = await recall(collection, ', ef_search => 10');
    const topology = await recall(collection, '');
    const high = await recall(collection, `, '{}', ef_search => 400`);
    assert.ok(high > low, `recall ef_search 10: ${low}, 400: ${high}`);
    assert.ok(high >= topology, `recall at the topology's 40: ${topology}, 400: ${high}`);
    assert.ok(high >= 0.95, `recall at ef_search 400: ${high}`);
  });
}

test("the settings are per call: in the same session (the same kept connection), the next call is back to the topology's", async () => {
  const client = new pg.Client({ connectionString: dbs.primary });
  await client.connect();
  try {
    const before = await recall('hard', '', client);
    assert.ok((await recall('hard', ', ef_search => 400', client)) > before);
    assert.equal(await recall('hard', '', client), before);
  } finally {
    await client.end();
  }
});

test('absurd or wrong settings are refused before any round trip, with the bounds in the message', async () => {
  const call = (args: string) => sql(dbs.primary, `SELECT * FROM public.match_hard('${queries[0]}', 10${args})`);
  await assert.rejects(call(', ef_search => 1000000000'), /ef_search must be between 1 and 1000 \(got 1000000000\)/);
  await assert.rejects(call(', ef_search => 0'), /ef_search must be between 1 and 1000/);
  await assert.rejects(call(', probes => 40000'), /probes must be between 1 and 32768/);
  await assert.rejects(call(", iterative_scan => 'loose'"), /iterative_scan must be one of off, relaxed_order, strict_order/);
});
