/**
 * A primary session calling match_<c> while its secondary has stopped answering (the secondary's sessions in the
 * test database stopped with SIGSTOP: they answer nothing and fire no timer of their own). On both query paths the
 * call must end: at the caller's statement_timeout, or at once on pg_cancel_backend, with 57014 — never a wait
 * without end. (On PG15, dblink's blocking calls wait in libpq without checking for interrupts: search_<c> waits in
 * an interruptible loop instead. postgres_fdw waits interruptibly itself.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { MAX_REMOTE_MS } from '../../src/query/fan-out.js';
import { freezeSessions, freshDatabases, outcome, sql, testClusters } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('frozen');
const admins = Object.values((await testClusters()).secondaries);
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
  shard:
    shards: [pod_a, pod_b]
    dimension: 3
`);
await apply(file.load(), { approve: async () => true });
const rows = `SELECT 'r' || g, ('[' || sin(g) || ',' || cos(g) || ',1]')::vector, '{}'::jsonb FROM generate_series(1, 50) g`;
await sql(podA, `INSERT INTO vecs.docs (id, vec, metadata) ${rows}`);
await sql(dbs.primary, `INSERT INTO public.shard (id, embedding, metadata) ${rows}`);

/** A primary session whose wrapper connections to the secondaries are open (one warm call per collection). */
async function session(statementTimeout: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: dbs.primary });
  c.on('error', () => undefined);
  await c.connect();
  await c.query(`SET statement_timeout = '${statementTimeout}'`);
  for (const name of ['docs', 'shard']) assert.equal((await c.query(`SELECT id FROM public.match_${name}('[1,0,1]', 5)`)).rows.length, 5);
  return c;
}

/** Freezes the secondaries' sessions in the test database while `fn` runs; thaws them, whatever happens. */
async function frozen<T>(which: readonly number[], fn: () => Promise<T>): Promise<T> {
  const held = [];
  try {
    for (const i of which) held.push(await freezeSessions(admins[i]!, dbs.name));
    assert.ok(held.some((h) => h.pids.length > 0), 'froze the wrapper sessions');
    return await fn();
  } finally {
    for (const h of held) h.thaw();
  }
}

const match = (c: pg.Client, name: string) => c.query(`SELECT id FROM public.match_${name}('[1,0,1]', 5)`);

for (const [name, path] of [['docs', 'one secondary (dblink)'], ['shard', 'sharded (dblink fan-out)']] as const) {
  test(`${path}: under statement_timeout = 2s a call to a frozen secondary fails with 57014 within a generous bound`, { timeout: 90_000 }, async (t) => {
    const c = await session('2s');
    try {
      const o = await frozen([0], () => outcome(match(c, name)));
      t.diagnostic(`ended after ${Math.round(o.ms)} ms: ${o.error?.code} ${o.error?.message}`);
      assert.equal(o.error?.code, '57014', String(o.error));
      assert.ok(o.ms < 10_000, `took ${Math.round(o.ms)} ms`);
      // The session is not left waiting on anything: its next statement answers at once.
      const t0 = performance.now();
      await c.query('SELECT 1');
      assert.ok(performance.now() - t0 < 2_000, 'the session answers');
    } finally {
      await c.end().catch(() => undefined);
    }
  });

  test(`${path}: pg_cancel_backend ends a call to a frozen secondary promptly`, { timeout: 90_000 }, async (t) => {
    // No statement_timeout: only the cancel (or the 60 s cap) can end the call.
    const c = await session('0');
    try {
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const o = await frozen([0], async () => {
        const call = outcome(match(c, name));
        await new Promise((r) => setTimeout(r, 500));
        const t0 = performance.now();
        const [sent] = await sql<{ ok: boolean }>(dbs.primary, 'SELECT pg_cancel_backend($1) AS ok', [pid]);
        assert.equal(sent?.ok, true);
        const r = await call;
        return { ...r, afterCancel: performance.now() - t0 };
      });
      t.diagnostic(`ended ${Math.round(o.afterCancel)} ms after the cancel: ${o.error?.code} ${o.error?.message}`);
      assert.equal(o.error?.code, '57014', String(o.error));
      assert.match(o.error!.message, /user request/);
      assert.ok(o.afterCancel < 5_000, `ended ${Math.round(o.afterCancel)} ms after the cancel`);
    } finally {
      await c.end().catch(() => undefined);
    }
  });
}

test('one secondary (dblink): after the secondary answers again, the same session\'s next call works', { timeout: 90_000 }, async () => {
  const c = await session('2s');
  try {
    const o = await frozen([0], () => outcome(match(c, 'docs')));
    assert.equal(o.error?.code, '57014', String(o.error));
    assert.equal((await match(c, 'docs')).rows.length, 5);
  } finally {
    await c.end().catch(() => undefined);
  }
});

test('one secondary (dblink): a caller without statement_timeout is bounded by the cap (MAX_REMOTE_MS, here lowered to 1.5 s)', { timeout: 90_000 }, async (t) => {
  // The cap as generated, lowered in this database only: waiting out the real 60 s is no test.
  const [fn] = await sql<{ def: string }>(dbs.primary, `SELECT pg_get_functiondef('vecscale.search_docs'::regproc) AS def`);
  const capped = fn!.def.replaceAll(String(MAX_REMOTE_MS), '1500');
  assert.notEqual(capped, fn!.def, 'the cap is in the body');
  await sql(dbs.primary, capped);
  const c = await session('0');
  try {
    const o = await frozen([0], () => outcome(match(c, 'docs')));
    t.diagnostic(`ended after ${Math.round(o.ms)} ms: ${o.error?.code} ${o.error?.message}`);
    assert.equal(o.error?.code, '57014', String(o.error));
    assert.match(o.error!.message, /vecscale: secondary pod_a did not answer within 1500 ms/);
    assert.ok(o.ms < 10_000, `took ${Math.round(o.ms)} ms`);
  } finally {
    await c.end().catch(() => undefined);
    await sql(dbs.primary, fn!.def);
  }
});
