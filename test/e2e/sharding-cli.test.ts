/** The real CLI on a sharded collection: apply, query, explain, check (exit 0 / 2), a re-layout that moves the rows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';
import { remainderSql } from '../../src/move/sql.js';

const COLLECTIONS = `  images:
    shards: [pod_a, pod_b]
    dimension: 3
    metric: l2
`;
const dbs = await freshDatabases('e2e_shard');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(dbs, COLLECTIONS);
const run = (args: string[]) => vecscale([...args], { env: file.env });

test('apply, then plan is empty; rows inserted through the primary are queried through match_<c>', async () => {
  const applied = await run(['apply', file.path, '--auto-approve']);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stderr, /create table vecscale_remote\.images|\+ table vecscale_remote\.images/);
  await sql(dbs.primary, `INSERT INTO public.images (id, embedding, metadata) SELECT 'i' || g, ('[' || g || ',0,0]')::vector, jsonb_build_object('g', g) FROM generate_series(1, 40) g`);
  const planned = await run(['plan', file.path, '--detailed-exitcode']);
  assert.equal(planned.code, 0, planned.stderr);
  const q = await run(['query', 'images', '-f', file.path, '--vector', '[10,0,0]', '--limit', '3', '--json']);
  assert.equal(q.code, 0, q.stderr);
  assert.deepEqual(JSON.parse(q.stdout).rows.map((r: { id: string }) => r.id), ['i10', 'i11', 'i9']);
  const direct = await run(['query', 'images', '-f', file.path, '--vector', '[10,0,0]', '--direct']);
  assert.equal(direct.code, 6);
  assert.match(direct.stderr, /sharded over pod_a, pod_b: --direct would search one shard only/);
  const explained = await run(['explain', 'images', '-f', file.path, '--filter', '{"g": {"$gt": 5}}']);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stderr, /✓ filter {3}✓ ORDER BY distance {3}✓ LIMIT {3}✓ 2 partitions at once/);
});

test('check: exit 0 when every row is home, 2 naming partition and id when a row sits on the wrong one', async () => {
  const healthy = await run(['check', file.path]);
  assert.equal(healthy.code, 0, healthy.stderr);
  assert.match(healthy.stderr, /✓ images: partition images_p0of2 on pod_a: every row belongs here/);
  // i1 lives on one shard: a copy on the other one is misplaced.
  const onA = (await sql(podA, `SELECT count(*)::int AS n FROM vecs.images_p0of2 WHERE id = 'i1'`))[0]!.n === 1;
  await sql(onA ? podB : podA, `INSERT INTO vecs.${onA ? 'images_p1of2' : 'images_p0of2'} (id, vec) VALUES ('i1', '[1,0,0]')`);
  const sick = await run(['check', file.path, '--json']);
  assert.equal(sick.code, 2, sick.stderr);
  assert.match(sick.stderr, new RegExp(`✗ images: partition images_p${onA ? 1 : 0}of2 on pod_${onA ? 'b' : 'a'}: 1 row on the wrong partition`));
  assert.match(sick.stderr, new RegExp(`id "i1" belongs to images_p${onA ? 0 : 1}of2`));
  assert.equal(JSON.parse(sick.stdout).healthy, false);
});

test('changing the partitions of a collection holding rows moves them; a misplaced row stops the move first', async () => {
  file.write(COLLECTIONS.replace('shards: [pod_a, pod_b]', 'shards: [pod_a, pod_b]\n    partitions: 4'));
  const planned = await run(['plan', file.path, '--detailed-exitcode']);
  assert.equal(planned.code, 2, planned.stderr);
  assert.match(planned.stderr, /move collection images \[online\]/);
  // The copy of i1 the test before put on the wrong partition belongs to no new partition: the move refuses to start.
  const refused = await run(['apply', file.path, '--auto-approve']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /1 row of vecs\.images_p[01]of2 belongs to another partition .*nothing of the move was done/);
  assert.match(refused.stderr, /vecscale check/);
  assert.equal((await sql(dbs.primary, `SELECT count(*)::int AS n FROM public.images`))[0]!.n, 41);
  // Put right as check advises (here: the copy is the stray one), and the move goes through.
  for (const [url, table, r] of [[podA, 'images_p0of2', 0], [podB, 'images_p1of2', 1]] as const) {
    await sql(url, `DELETE FROM vecs.${table} WHERE id = 'i1' AND ${remainderSql('id', 2)} <> ${r}`);
  }
  const moved = await run(['apply', file.path, '--auto-approve']);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stderr, /cutover of images: done .*40 rows verified, writes paused \d+ ms/);
  assert.equal((await sql(dbs.primary, `SELECT count(*)::int AS n FROM public.images`))[0]!.n, 40);
  assert.equal((await run(['plan', file.path, '--detailed-exitcode'])).code, 0);
  assert.equal((await run(['check', file.path])).code, 0);
  for (const url of [podA, podB]) {
    const left = await sql(url, `SELECT (SELECT count(*) FROM pg_replication_slots)::int + (SELECT count(*) FROM pg_publication)::int + (SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS n`);
    assert.equal(left[0]!.n, 0);
  }
});
