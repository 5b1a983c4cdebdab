/**
 * A zero query vector has no cosine distance: pgvector returns NaN for it, and NaN sorts after every number, so a
 * top-k came back as k arbitrary rows with distance NaN. match_<c> refuses it (22023) for metric cosine, on both
 * query paths, before any round trip; other metrics take it (a zero vector has an L2 distance).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('zero_vector');
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, `  cos:
    secondary: pod_a
    dimension: 3
  cos_sh:
    shards: [pod_a, pod_b]
    dimension: 3
  euclid:
    secondary: pod_a
    dimension: 3
    metric: l2
`);
await apply(file.load(), { approve: async () => true });
const rows = `SELECT 'r' || g, ('[' || sin(g) || ',' || cos(g) || ',1]')::vector, '{}'::jsonb FROM generate_series(1, 20) g`;
await sql(podA, `INSERT INTO vecs.cos (id, vec, metadata) ${rows}`);
await sql(podA, `INSERT INTO vecs.euclid (id, vec, metadata) ${rows}`);
await sql(dbs.primary, `INSERT INTO public.cos_sh (id, embedding, metadata) ${rows}`);

const call = (name: string, vector: string) => sql<{ id: string; distance: number }>(dbs.primary, `SELECT id, distance FROM public.match_${name}($1, 5)`, [vector]);

for (const name of ['cos', 'cos_sh']) {
  test(`${name} (cosine): a zero vector is refused with 22023; a non-zero one works`, async () => {
    // [1e-25,0,0] too: pgvector's cosine sums the squares in single precision, where it is zero (and gives NaN).
    for (const zero of ['[0,0,0]', '[1e-25,0,0]']) {
      await assert.rejects(call(name, zero), (e: pg.DatabaseError) => {
        assert.equal(e.code, '22023');
        assert.match(e.message, /a zero vector has no cosine distance/);
        return true;
      });
    }
    const r = await call(name, '[1,0,1]');
    assert.equal(r.length, 5);
    assert.ok(r.every((x) => Number.isFinite(x.distance)), JSON.stringify(r));
  });
}

test('euclid (l2): a zero vector is a fine query (distances are the rows\' norms)', async () => {
  const r = await call('euclid', '[0,0,0]');
  assert.equal(r.length, 5);
  assert.ok(r.every((x) => Number.isFinite(x.distance)), JSON.stringify(r));
});
