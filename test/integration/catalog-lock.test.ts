/**
 * plan behind another session's ACCESS EXCLUSIVE lock on a collection's table (a migration, a transaction left
 * open): reading the catalogs opens the table for its size and waits. It waits a bounded time, then says which table,
 * which session holds it and how to end it — exit 4, as for a lock — instead of "took longer than the statement
 * timeout: check that the database is up and not overloaded". The holder's query is never shown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { VecscaleError } from '../../src/errors.js';
import { vecscale } from '../cli.js';
import { freshDatabases, outcome } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('catalog_lock');
const [podA] = Object.values(dbs.secondaries) as [string];
const file = topologyFile(dbs, '  docs:\n    secondary: pod_a\n    dimension: 3\n    index: none\n');
await apply(file.load(), { approve: async () => true });

test('a table held exclusively: plan names the table and the holder, exit 4, within a bound', async () => {
  const holder = new pg.Client({ connectionString: podA, application_name: 'nightly migration' });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE vecs.docs IN ACCESS EXCLUSIVE MODE`);
    await holder.query(`SELECT 'secret-token-in-a-query'`);
    const [{ pid }] = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
    const r = await outcome(plan(file.load()));
    assert.ok(r.ms < 60_000, 'bounded (generous bound on a hang)');
    const e = r.error as unknown as VecscaleError;
    assert.ok(e instanceof VecscaleError, `a VecscaleError: ${String(r.error)}`);
    assert.equal(e.code, 'lock');
    assert.match(e.message, new RegExp(`^pod_a: reading its catalogs waited 10 s for a table another session holds exclusively \\(ACCESS EXCLUSIVE\\): vecs\\.docs by pid ${pid} \\(nightly migration\\), idle in transaction`), e.message);
    assert.match(e.hint ?? '', new RegExp(`pg_terminate_backend\\(${pid}\\)`));
    const cli = await vecscale(['plan', file.path, '--statement-timeout', '3'], { env: file.env });
    assert.equal(cli.code, 4, cli.stderr);
    assert.match(cli.stderr, /^error: pod_a: reading its catalogs waited until the statement timeout for a table another session holds exclusively .*vecs\.docs by pid/m, cli.stderr);
    assert.doesNotMatch(cli.stderr + cli.stdout, /secret-token|at .*\.js:\d+/, 'no query text, no stack trace');
  } finally {
    await holder.end();
  }
  const after = await plan(file.load());
  assert.equal(after.databases.flatMap((d) => d.steps).length, 0, 'converged once the lock is gone');
});
