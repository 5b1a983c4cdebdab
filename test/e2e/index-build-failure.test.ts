/**
 * A CREATE INDEX CONCURRENTLY whose session dies mid-build (here: its backend terminated while the build waits for
 * a writer — what a stopped or restarted secondary does to it too) commits its catalog entry first, so it leaves an
 * INVALID index behind. apply says so — not "rolled back" — and marks it as vecscale's (its mark comes after the build
 * and never ran), so the next plan replaces it instead of refusing an index vecscale did not make.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { vecscale } from '../cli.js';
import { freshDatabases, sql, testClusters } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('index_build_failure');
const podAdmin = Object.values((await testClusters()).secondaries)[0]!;
const podA = Object.values(dbs.secondaries)[0]!;
const collection = (index: string) => `  docs:
    secondary: pod_a
    dimension: 3
    index: ${index}
`;
const file = topologyFile(dbs, collection('{ method: none }'));

const indexes = () =>
  sql<{ name: string; valid: boolean }>(podA, `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'vecs.docs'::regclass AND NOT i.indisprimary ORDER BY 1`);

test('a concurrent index build killed midway: apply reports the INVALID index it left; the next apply rebuilds it', { timeout: 120_000 }, async () => {
  const first = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(first.code, 0, first.stderr);
  await sql(podA, `INSERT INTO vecs.docs (id, vec, metadata) SELECT 'r' || g, ('[' || sin(g) || ',' || cos(g) || ',1]')::vector, '{}' FROM generate_series(1, 200) g`);
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64 }'));

  // An open write transaction on the table: the concurrent build, its catalog entry committed, waits for it.
  const writer = new pg.Client({ connectionString: podA });
  await writer.connect();
  let r: Awaited<ReturnType<typeof vecscale>>;
  try {
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO vecs.docs (id, vec) VALUES ('w', '[1,1,1]')`);
    const run = vecscale(['apply', file.path, '--auto-approve', '--statement-timeout', '2s'], { env: file.env });
    const building = `datname = $1 AND application_name = 'vecscale apply' AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'`;
    let seen = false;
    for (const until = Date.now() + 30_000; !seen && Date.now() < until; ) {
      seen = (await sql(podAdmin, `SELECT 1 FROM pg_stat_activity WHERE ${building}`, [dbs.name])).length > 0;
      if (!seen) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(seen, 'the build waits for the writer');
    // Index builds are not cut off by --statement-timeout: past it, the build still waits.
    await new Promise((res) => setTimeout(res, 3_000));
    const [hit] = await sql<{ ok: boolean }>(podAdmin, `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE ${building}`, [dbs.name]);
    assert.equal(hit?.ok, true, 'the build was still running past the statement timeout, and was killed');
    r = await run;
  } finally {
    await writer.query('ROLLBACK').catch(() => undefined);
    await writer.end();
  }
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /failed and was rolled back/);
  assert.match(
    r.stderr,
    /pod_a failed at a step outside any transaction \(nothing of it is rolled back\): index .*; the interrupted build left the INVALID index vecs\.\S+ \(queries do not use it; marked as vecscale's: the next apply drops and rebuilds it\)/,
  );
  const left = await indexes();
  assert.equal(left.length, 1, JSON.stringify(left));
  assert.equal(left[0]!.valid, false);
  assert.ok(r.stderr.includes(`INVALID index vecs.${left[0]!.name} `), r.stderr);

  const plan = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(plan.code, 2, plan.stderr);
  assert.match(plan.stderr, /index is invalid/);
  const again = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(again.code, 0, again.stderr);
  const rebuilt = await indexes();
  assert.deepEqual(rebuilt.map((x) => x.valid), [true], JSON.stringify(rebuilt));
  const clean = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(clean.code, 0, clean.stderr);
});
