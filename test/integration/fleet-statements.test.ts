/**
 * Issue 16 §4 on real clusters: a converged `plan`, and `status`, send each database the same number of statements
 * for 3 collections as for 300 (placed and sharded, some holding rows, some empty, one never analyzed): reading a
 * fleet costs a fixed number of round trips, not one per collection. Every statement any pg client sends is counted,
 * by the database (cluster and name) it went to.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import type { Topology } from '../../src/config/types.js';
import { hasChanges, stepKey } from '../../src/plan/types.js';
import { status } from '../../src/status/index.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const counts = new Map<string, number>();
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const key = `${this.port}/${this.database}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return (original as (...a: unknown[]) => unknown).apply(this, args);
} as typeof original;
after(() => {
  pg.Client.prototype.query = original;
});

function collections(n: number): string {
  let yaml = '';
  for (let i = 0; i < n; i++) {
    yaml += `  c${i}:\n${i % 3 === 2 ? '    shards: [pod_a, pod_b]\n' : `    secondary: ${i % 3 === 0 ? 'pod_a' : 'pod_b'}\n`}    dimension: 4\n`;
  }
  return yaml;
}

/** Applies `n` collections in databases of their own, with rows in the first three (c0 analyzed, c1 not). */
async function fleet(n: number): Promise<{ topology: Topology; names: Record<'primary' | 'pod_a' | 'pod_b', string> }> {
  const dbs = await freshDatabases(`fleet${n}`);
  const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
  const topology = topologyFile(dbs, collections(n)).load();
  await apply(topology, { approve: async () => true });
  const vec = 'ARRAY(SELECT random()::real + g * 0 FROM generate_series(1, 4))::vector(4)';
  await sql(podA, `INSERT INTO vecs.c0 (id, vec, metadata) SELECT 'a' || g, ${vec}, '{}' FROM generate_series(1, 100) g`);
  await sql(podA, 'ANALYZE vecs.c0');
  await sql(podB, `INSERT INTO vecs.c1 (id, vec, metadata) SELECT 'b' || g, ${vec}, '{}' FROM generate_series(1, 50) g`);
  await sql(dbs.primary, `INSERT INTO public.c2 (id, embedding, metadata) SELECT 's' || g, ${vec}, '{}' FROM generate_series(1, 80) g`);
  // Every cluster has a database of this name: a database is told apart by its port too.
  const db = (url: string) => `${new URL(url).port}/${new URL(url).pathname.slice(1)}`;
  return { topology, names: { primary: db(dbs.primary), pod_a: db(podA), pod_b: db(podB) } };
}

async function statements<T>(names: Record<string, string>, fn: () => Promise<T>): Promise<{ result: T; per: Record<string, number> }> {
  counts.clear();
  const result = await fn();
  return { result, per: Object.fromEntries(Object.entries(names).map(([role, name]) => [role, counts.get(name) ?? 0])) };
}

const small = await fleet(3);
const large = await fleet(300);

test('a converged plan: the same statements to each database for 3 collections as for 300', async () => {
  const a = await statements(small.names, () => plan(small.topology));
  const b = await statements(large.names, () => plan(large.topology));
  assert.equal(hasChanges(a.result), false, 'the 3-collection plan is converged');
  assert.equal(hasChanges(b.result), false, 'the 300-collection plan is converged');
  assert.deepEqual(b.per, a.per, `statements per database: 3 collections ${JSON.stringify(a.per)}, 300 ${JSON.stringify(b.per)}`);
  assert.ok(a.per.pod_a! > 0 && a.per.primary! > 0, 'statements were counted');
});

test('status: the same statements to each database for 3 collections as for 300, and the rows right', async () => {
  const a = await statements(small.names, () => status(small.topology));
  const b = await statements(large.names, () => status(large.topology));
  assert.equal(a.result.healthy, true, JSON.stringify(a.result.problems.slice(0, 3)));
  assert.equal(b.result.healthy, true, JSON.stringify(b.result.problems.slice(0, 3)));
  assert.deepEqual(b.per, a.per, `statements per database: 3 collections ${JSON.stringify(a.per)}, 300 ${JSON.stringify(b.per)}`);
  const rows = new Map(b.result.collections.map((c) => [c.name, c.rows]));
  assert.deepEqual([rows.get('c0'), rows.get('c1'), rows.get('c2'), rows.get('c3')], [100, 50, 80, 0], 'rows of c0..c3');
  assert.equal(b.result.collections.length, 300, 'every collection listed');
});

test('a change that depends on rows asks only about the tables it touches: one more statement on their database', async () => {
  const before = await statements(large.names, () => plan(large.topology));
  // Without c1 (rows, never analyzed) and c4 (empty, no pages): c1's drop is destructive (its rows counted), c4's not.
  const fewer = { ...large.topology, collections: large.topology.collections.filter((c) => c.name !== 'c1' && c.name !== 'c4') };
  const after = await statements(large.names, () => plan(fewer, { allowDestructive: ['c1'] }));
  assert.equal(after.per.pod_b, before.per.pod_b! + 1, `pod_b: one statement asks about c1 (${JSON.stringify(before.per)} → ${JSON.stringify(after.per)})`);
  assert.equal(after.per.pod_a, before.per.pod_a, 'pod_a: nothing asked');
  const drops = after.result.databases.flatMap((d) => d.steps).filter((s) => s.kind === 'table' && s.database === 'pod_b');
  const c1 = drops.find((s) => stepKey(s) === 'relation:vecs.c1');
  const c4 = drops.find((s) => stepKey(s) === 'relation:vecs.c4');
  assert.equal(c1?.risk, 'destructive', 'dropping c1 loses rows');
  assert.match(c1?.reason ?? '', /50 rows/, `the count is in the reason: ${c1?.reason}`);
  assert.ok(c4 !== undefined, 'c4 is dropped');
  assert.notEqual(c4.risk, 'destructive', 'dropping the empty c4 is not destructive');
});

test('an empty sharded collection going to one pod: every partition asked in one round, a re-create, not a move', async () => {
  const dbs = await freshDatabases('reshard_empty');
  const spread = topologyFile(dbs, '  spread:\n    shards: [pod_a, pod_b]\n    partitions: 4\n    dimension: 4\n');
  await apply(spread.load(), { approve: async () => true });
  const vec = 'ARRAY(SELECT random()::real + g * 0 FROM generate_series(1, 4))::vector(4)';
  await sql(dbs.primary, `INSERT INTO public.spread (id, embedding, metadata) SELECT 's' || g, ${vec}, '{}' FROM generate_series(1, 80) g`);
  // Emptied: every partition keeps its pages, so each has to be asked.
  await sql(dbs.primary, 'DELETE FROM public.spread');
  const db = (url: string) => `${new URL(url).port}/${new URL(url).pathname.slice(1)}`;
  const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
  const names = { primary: db(dbs.primary), pod_a: db(podA), pod_b: db(podB) };
  const converged = await statements(names, () => plan(spread.load()));
  const placed = topologyFile(dbs, '  spread:\n    secondary: pod_a\n    dimension: 4\n');
  const r = await statements(names, () => plan(placed.load()));
  assert.equal(r.result.moves?.length ?? 0, 0, `no rows to move: ${JSON.stringify(r.result.moves?.map((m) => m.collection))}`);
  const created = r.result.databases.flatMap((d) => d.steps).find((s) => s.database === 'pod_a' && stepKey(s) === 'relation:vecs.spread');
  assert.ok(created, 'vecs.spread is created on pod_a');
  for (const pod of ['pod_a', 'pod_b'] as const) {
    assert.ok(r.per[pod]! <= converged.per[pod]! + 1, `${pod}: its partitions asked in one statement (${JSON.stringify(converged.per)} → ${JSON.stringify(r.per)})`);
  }
});
