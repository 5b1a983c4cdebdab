/**
 * A table planned as empty is dropped (a collection taken out) or re-created (its dimension changed) without
 * --allow-destructive, under apply's guard: LOCK TABLE … ACCESS EXCLUSIVE, then IF EXISTS (SELECT FROM it) RAISE.
 * A writer whose row was not committed when vecscale planned, and commits while apply waits for that lock, must make
 * apply refuse — whatever the pod's default_transaction_isolation: under REPEATABLE READ (or SERIALIZABLE) an
 * earlier statement of apply's transaction fixed the snapshot, the guard did not see the row, and the table was
 * dropped with it (found by a hostile review). The order of events is forced, not timed: the writer commits only
 * once apply's session is seen waiting for the lock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('empty_guard');
const [podA] = Object.values(dbs.secondaries) as [string];
const podDb = new URL(podA).pathname.slice(1);
const collection = (dimension: number) => `  docs:
    secondary: pod_a
    dimension: ${dimension}
    index: none
`;
const keeper = `  other:
    secondary: pod_a
    dimension: 3
    index: none
`;
const withDocs = topologyFile(dbs, collection(3) + keeper);
const withoutDocs = topologyFile(dbs, keeper);
const wider = topologyFile(dbs, collection(4) + keeper);

/** Runs `change` while a writer holds an uncommitted row in vecs.docs; the writer commits once apply waits on it. */
async function race(change: () => Promise<unknown>): Promise<{ error?: Error }> {
  const writer = new pg.Client({ connectionString: podA });
  await writer.connect();
  try {
    await writer.query('BEGIN');
    // vecs.docs has dimension 3 here: each test applies withDocs first.
    await writer.query(`INSERT INTO vecs.docs (id, vec, metadata) VALUES ('late', '[1,2,3]', '{}')`);
    const running = change().then(
      () => ({}),
      (error: Error) => ({ error }),
    );
    // Apply's session waits for its ACCESS EXCLUSIVE lock on vecs.docs behind the writer.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [w] = await sql<{ n: number }>(
        podA,
        `SELECT count(*)::int AS n FROM pg_locks l WHERE NOT l.granted AND l.relation = 'vecs.docs'::regclass AND l.mode = 'AccessExclusiveLock'`,
      );
      if ((w?.n ?? 0) > 0) break;
      assert.ok(Date.now() < deadline, 'apply came to wait for the lock on vecs.docs (generous bound on a hang)');
      await new Promise((r) => setTimeout(r, 50));
    }
    await writer.query('COMMIT');
    return await running;
  } finally {
    await writer.end();
  }
}

const rows = async () =>
  (await sql<{ n: number | null }>(podA, `SELECT CASE WHEN to_regclass('vecs.docs') IS NULL THEN NULL ELSE (SELECT count(*)::int FROM vecs.docs) END AS n`))[0]?.n;

for (const isolation of ['read committed', 'repeatable read', 'serializable']) {
  for (const [what, target] of [['taken out of the topology', withoutDocs], ['re-created with another dimension', wider]] as const) {
    test(`a row committed while apply waits for its lock is not lost (${what}; database default ${isolation})`, async () => {
      await sql(podA, `ALTER DATABASE "${podDb}" RESET default_transaction_isolation`);
      await apply(withDocs.load(), { approve: async () => true, allowDestructive: ['docs'] });
      await sql(podA, `DELETE FROM vecs.docs`);
      await sql(podA, `ALTER DATABASE "${podDb}" SET default_transaction_isolation = '${isolation}'`);
      try {
        const r = await race(() => apply(target.load(), { approve: async () => true }));
        assert.ok(r.error, 'apply refused');
        assert.match(r.error.message, /vecs\.docs gained rows since it was planned; nothing dropped/, r.error.message);
        assert.equal(await rows(), 1, 'the committed row is still in vecs.docs');
      } finally {
        await sql(podA, `ALTER DATABASE "${podDb}" RESET default_transaction_isolation`);
      }
    });
  }
}
