/**
 * Existing objects on real clusters: a collection the vecs client made is adopted as it is; what cannot be vecs'
 * is refused; pgvector in its own schema; secrets in mapping options; a leftover from an interrupted index build.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import type { Plan } from '../../src/plan/types.js';
import { renderPlan, planToJson } from '../../src/render/plan.js';
import { Chalk } from 'chalk';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const approve = async () => true;
const steps = (p: Plan) => p.databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`.replace(/fdw_\w+/, 'vecscale_fdw')));
const DOCS = '  docs:\n    secondary: pod_a\n    dimension: 3\n';

const vecsMade = await freshDatabases('adopt');
const partitioned = await freshDatabases('partitioned');
const extSchema = await freshDatabases('extschema_ok');
const leftovers = await freshDatabases('leftover');

test('a collection made by the vecs client is adopted as it is: rows, table and its randomly named index kept', async () => {
  const podA = Object.values(vecsMade.secondaries)[0]!;
  // Exactly what vecs 0.4 runs for create_collection + create_index(hnsw, cosine).
  await sql(podA, 'CREATE EXTENSION vector');
  await sql(podA, 'CREATE SCHEMA vecs');
  await sql(podA, `CREATE TABLE vecs.docs (id VARCHAR NOT NULL, vec VECTOR(3) NOT NULL, metadata JSONB DEFAULT '{}'::jsonb NOT NULL, PRIMARY KEY (id))`);
  await sql(podA, `CREATE INDEX ix_vector_cosine_ops_hnsw_m16_efc64_1f2e3d4 ON vecs.docs USING hnsw (vec vector_cosine_ops) WITH (m=16, ef_construction=64)`);
  await sql(podA, `INSERT INTO vecs.docs VALUES ('x', '[1,2,3]', '{}')`);
  const file = topologyFile(vecsMade, DOCS);
  const p = await plan(file.load());
  const podSteps = steps(p).filter((s) => s.startsWith('pod_a'));
  assert.deepEqual(podSteps, [
    'pod_a: create role vecscale_fdw',
    'pod_a: create schema vecscale',
    'pod_a: adopt table vecs.docs',
    'pod_a: adopt index vecs.ix_vector_cosine_ops_hnsw_m16_efc64_1f2e3d4 on docs',
    'pod_a: create function vecscale.upsert_row',
    'pod_a: create view vecscale.docs',
    'pod_a: create database defaults',
    'pod_a: create privileges of vecscale_fdw',
  ]);
  // Adopting makes the table's ACL exact: the wrapper role's privileges, granted as it is adopted.
  const adopt = p.databases.find((d) => d.database === 'pod_a')!.steps.find((s) => s.object === 'table vecs.docs')!;
  assert.match(adopt.sql.join('\n'), /^COMMENT ON TABLE "vecs"."docs" IS 'managed by vecscale'\nGRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "vecs"."docs" TO "fdw_\w+"$/);
  await apply(file.load(), { approve });
  assert.deepEqual(steps(await plan(file.load())), []);
  const idx = await sql(podA, `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'vecs.docs'::regclass AND NOT indisprimary`);
  assert.deepEqual(idx.map((r) => r.name), ['vecs.ix_vector_cosine_ops_hnsw_m16_efc64_1f2e3d4']);
  assert.deepEqual(await sql(vecsMade.primary, 'SELECT id FROM public.docs'), [{ id: 'x' }]);
});

test('a partitioned vecs.docs is not a vecs collection: the plan is blocked, nothing adopted', async () => {
  const podA = Object.values(partitioned.secondaries)[0]!;
  await sql(podA, 'CREATE EXTENSION vector');
  await sql(podA, 'CREATE SCHEMA vecs');
  await sql(podA, `CREATE TABLE vecs.docs (id VARCHAR NOT NULL, vec VECTOR(3) NOT NULL, metadata JSONB DEFAULT '{}'::jsonb NOT NULL, PRIMARY KEY (id)) PARTITION BY HASH (id)`);
  const p = await plan(topologyFile(partitioned, DOCS).load());
  assert.equal(p.blockers.length, 1);
  assert.match(p.blockers[0]!.reason, /was not created by vecscale, .*is a partitioned table/);
  assert.ok(!steps(p).some((s) => s.includes('vecs.docs')));
});

test('extension_schema: extensions on empty databases: the schema comes first, every statement qualifies pgvector', async () => {
  const file = topologyFile(extSchema, DOCS, 'extension_schema: extensions\n');
  const result = await apply(file.load(), { approve });
  assert.equal(result.status, 'applied');
  // The topology's databases: the primary and its two pods (test/topology-files.ts), not a third test secondary.
  for (const url of [extSchema.primary, ...Object.values(extSchema.secondaries).slice(0, 2)]) {
    const [row] = await sql(url, `SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'vector'`);
    assert.equal(row!.s, 'extensions');
  }
  const podA = Object.values(extSchema.secondaries)[0]!;
  await sql(podA, `INSERT INTO vecs.docs VALUES ('a', '[1,0,0]', '{}'), ('b', '[0,1,0]', '{}')`);
  const rows = await sql(extSchema.primary, `SELECT id FROM public.docs ORDER BY embedding OPERATOR(extensions.<=>) '[1,0,0]'::extensions.vector LIMIT 1`);
  assert.deepEqual(rows, [{ id: 'a' }]);
  assert.deepEqual(steps(await plan(file.load())), []);
});

test('options a user adds by hand to a mapping or a server are theirs: left alone, never shown', async () => {
  const file = topologyFile(leftovers, DOCS);
  await apply(file.load(), { approve });
  await sql(leftovers.primary, `ALTER USER MAPPING FOR PUBLIC SERVER pod_a OPTIONS (ADD sslpassword 'hunter2-canary')`);
  await sql(leftovers.primary, `ALTER SERVER pod_a OPTIONS (ADD fetch_size '500')`);
  const p = await plan(file.load());
  assert.deepEqual(steps(p), []);
  const text = renderPlan(p, new Chalk({ level: 0 })) + JSON.stringify(planToJson(p));
  assert.ok(!text.includes('hunter2-canary'));
  await apply(file.load(), { approve });
  const [srv] = await sql(leftovers.primary, `SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'pod_a'`);
  assert.ok((srv!.srvoptions as string[]).includes('fetch_size=500'));
});

test('a leftover index under the new name (an interrupted concurrent build) is cleared, not fatal', async () => {
  const file = topologyFile(leftovers, DOCS.replace('dimension: 3\n', 'dimension: 3\n    index: { method: hnsw, m: 8, ef_construction: 32 }\n'));
  const p = await plan(file.load());
  const replace = p.databases[0]!.steps[0]!;
  const newName = /CREATE INDEX CONCURRENTLY "([^"]+)"/.exec(replace.sql.join('\n'))![1]!;
  const podA = Object.values(leftovers.secondaries)[0]!;
  await sql(podA, `CREATE INDEX "${newName}" ON vecs.docs USING hnsw (vec vector_cosine_ops) WITH (m = 8, ef_construction = 32)`);
  const result = await apply(file.load(), { approve });
  assert.equal(result.status, 'applied');
  const idx = await sql(podA, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'vecs.docs'::regclass AND NOT i.indisprimary`);
  assert.deepEqual(idx.map((r) => r.relname), [newName]);
  assert.deepEqual(steps(await plan(file.load())), []);
});
