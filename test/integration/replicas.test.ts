/**
 * Read replicas on real clusters (`sandbox up --replicas 1`): reads through the primary run on pod_a's streaming
 * standby, fall back to pod_a while it is stopped, and go back to it afterwards; writes land on pod_a; plan blocks a
 * replica URL that is not a standby of its secondary. Skipped when the test clusters have no replicas.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { parseTopology } from '../../src/config/index.js';
import { findPostgres } from '../../src/sandbox/pg-bin.js';
import { isRoot } from '../../src/sandbox/run.js';
import { freshDatabases, sql, testClusters, withDatabase } from '../harness.js';

const clusters = await testClusters();
const [podAName, podBName] = Object.keys(clusters.secondaries);
const replicaAdmin = clusters.replicas?.[podAName!]?.[0];
const otherReplicaAdmin = clusters.replicas?.[podBName!]?.[0];
const skip = replicaAdmin === undefined ? 'the test clusters have no replicas (vecscale sandbox up --replicas 1)' : false;

const dbs = skip ? undefined : await freshDatabases('replicas');
const name = dbs?.name ?? '';
const fdw = `fdw_${name}`;
const podA = dbs ? Object.values(dbs.secondaries)[0]! : '';
const podB = dbs ? Object.values(dbs.secondaries)[1]! : '';
const replica = replicaAdmin ? withDatabase(replicaAdmin, name) : '';

const topologyText = (replicas: readonly string[]) => `version: 1
primary:
  url: ${dbs?.primary}
secondaries:
  pod_a:
    url: ${podA}
    fdw_user: ${fdw}
    replicas: [${replicas.map((r) => JSON.stringify(r)).join(', ')}]
  pod_b:
    url: ${podB}
    fdw_user: ${fdw}
collections:
  docs: { secondary: pod_a, dimension: 3 }
`;
const load = (replicas: readonly string[]) => {
  const r = parseTopology(topologyText(replicas), 'replicas.yaml', {});
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.topology;
};

/** The wrapper role's sessions on a cluster, in this file's database: what each is running or ran last. */
const wrapperSessions = async (url: string): Promise<string[]> =>
  (await sql<{ query: string }>(url, `SELECT query FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND datname = $2 AND pid <> pg_catalog.pg_backend_pid()`, [fdw, name])).map((r) => r.query);
const SEARCH = /pg_catalog\.set_config\('statement_timeout'/;

async function session<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbs!.primary });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** pg_ctl on the replica's cluster (its data directory asked of itself), as the postgres OS user. */
async function replicaCtl(action: 'stop' | 'start', dataDir: string): Promise<void> {
  const pgCtl = `${findPostgres().bindir}/pg_ctl`;
  const args = ['-D', dataDir, '-w', '-t', '60', ...(action === 'start' ? ['-l', `${dataDir}.log`] : ['-m', 'fast']), action];
  execFileSync(isRoot() ? 'runuser' : pgCtl, isRoot() ? ['-u', 'postgres', '--', pgCtl, ...args] : args, { stdio: 'ignore', cwd: '/' });
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  // An error (the table not replayed yet) is a no.
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (!skip) {
  await apply(load([replica]), { approve: async () => true });
  // Rows written before the replica checks below: on pod_a, replayed on the standby.
  await sql(dbs!.primary, `INSERT INTO public.docs (id, embedding) VALUES ('a', '[1,0,0]'), ('b', '[0,1,0]')`);
  await waitFor('replay of the first rows', async () => (await sql(replica, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n === 2);
}

test('reads through the primary (match_<c>, SELECT on public.<c>) run on the standby, not on the secondary', { skip }, async () => {
  await session(async (c) => {
    assert.equal((await c.query(`SELECT id FROM public.match_docs('[1,0,0]', 1)`)).rows[0]?.id, 'a');
    assert.equal((await c.query('SELECT count(*)::int AS n FROM public.docs')).rows[0]?.n, 2);
    // The session keeps both connections (dblink's and postgres_fdw's) open: on the standby.
    const onReplica = await wrapperSessions(replica);
    assert.ok(onReplica.some((q) => SEARCH.test(q)), `match_docs ran on the standby: ${JSON.stringify(onReplica)}`);
    assert.ok(onReplica.some((q) => /docs|COMMIT/.test(q) && !SEARCH.test(q)), `the foreign scan ran on the standby: ${JSON.stringify(onReplica)}`);
    const onPod = await wrapperSessions(podA);
    assert.deepEqual(onPod, [], 'nothing of this session on pod_a');
  });
});

test('writes (INSERT through public.<c>, upsert_<c>, UPDATE, DELETE) land on the secondary and reach the standby by replay', { skip }, async () => {
  await sql(dbs!.primary, `INSERT INTO public.docs (id, embedding, metadata) VALUES ('w1', '[1,1,0]', '{"v": 1}')`);
  await sql(dbs!.primary, `SELECT public.upsert_docs('w2', '[0,1,1]', '{"v": 2}')`);
  await sql(dbs!.primary, `SELECT public.upsert_docs('[{"id": "w1", "embedding": [1,1,1], "metadata": {"v": 3}}]')`);
  // UPDATE and DELETE through public.<c> find their rows by reading it, i.e. on the standby: wait for the replay of
  // w2 first (README, "Read replicas": read-your-writes).
  await waitFor('replay of w2', async () => (await sql(replica, `SELECT count(*)::int AS n FROM vecs.docs WHERE id = 'w2'`))[0]!.n === 1);
  await sql(dbs!.primary, `UPDATE public.docs SET metadata = '{"v": 4}' WHERE id = 'w2'`);
  await sql(dbs!.primary, `DELETE FROM public.docs WHERE id = 'b'`);
  const want = [{ id: 'a', metadata: {} }, { id: 'w1', metadata: { v: 3 } }, { id: 'w2', metadata: { v: 4 } }];
  assert.deepEqual(await sql(podA, 'SELECT id, metadata FROM vecs.docs ORDER BY id'), want);
  await waitFor('replay on the standby', async () =>
    JSON.stringify(await sql(replica, 'SELECT id, metadata FROM vecs.docs ORDER BY id')) === JSON.stringify(want));
  // …and a read through the primary (the standby) then sees them.
  assert.deepEqual(await sql(dbs!.primary, 'SELECT id, metadata FROM public.docs ORDER BY id'), want);
});

test("SET vecscale.read_from = 'secondary': match_<c> reads pod_a itself (read-your-writes)", { skip }, async () => {
  await session(async (c) => {
    await c.query(`SET vecscale.read_from = 'secondary'`);
    await c.query(`SELECT public.upsert_docs('fresh', '[0,0,1]', '{}')`);
    // Right after the write, through the secondary: the row is there whatever the replay lag.
    assert.equal((await c.query(`SELECT id FROM public.match_docs('[0,0,1]', 1)`)).rows[0]?.id, 'fresh');
    assert.ok((await wrapperSessions(podA)).some((q) => SEARCH.test(q)), 'match_docs ran on pod_a');
    assert.equal((await wrapperSessions(replica)).filter((q) => SEARCH.test(q)).length, 0, 'not on the standby');
  });
});

test('with the standby stopped, reads fall back to the secondary (same session and new ones); restarted, new sessions read it again', { skip }, async () => {
  const dataDir = (await sql<{ d: string }>(replicaAdmin!, 'SELECT pg_catalog.current_setting(\'data_directory\') AS d'))[0]!.d;
  // The last test's upsert went to pod_a: the standby has it once it has replayed (reads go there).
  await waitFor('replay of the earlier writes', async () => (await sql(replica, `SELECT count(*)::int AS n FROM vecs.docs`))[0]!.n === 4);
  await session(async (c) => {
    assert.equal((await c.query(`SELECT count(*)::int AS n FROM public.match_docs('[1,0,0]', 10)`)).rows[0]?.n, 4);
    await replicaCtl('stop', dataDir);
    try {
      // This session's connections to the standby broke: both paths reconnect, to pod_a.
      assert.equal((await c.query(`SELECT count(*)::int AS n FROM public.match_docs('[1,0,0]', 10)`)).rows[0]?.n, 4);
      assert.equal((await c.query('SELECT count(*)::int AS n FROM public.docs')).rows[0]?.n, 4);
      await session(async (d) => {
        assert.equal((await d.query(`SELECT id FROM public.match_docs('[1,0,0]', 1)`)).rows[0]?.id, 'a');
      });
      assert.ok((await wrapperSessions(podA)).some((q) => SEARCH.test(q)), 'match_docs ran on pod_a');
      // Writes never needed the standby.
      await c.query(`SELECT public.upsert_docs('down', '[1,0,1]', '{}')`);
      // plan says so, as a warning, not a blocker.
      const p = await plan(load([replica]));
      assert.deepEqual(p.blockers, [], 'an unreachable standby does not block');
      assert.ok(p.notes.some((n) => n.database === 'pod_a' && /cannot check it/.test(n.message)), `a warning about the standby: ${JSON.stringify(p.notes)}`);
    } finally {
      await replicaCtl('start', dataDir);
    }
  });
  await waitFor('replay after the restart', async () => (await sql(replica, `SELECT count(*)::int AS n FROM vecs.docs WHERE id = 'down'`))[0]!.n === 1);
  await session(async (c) => {
    assert.equal((await c.query(`SELECT count(*)::int AS n FROM public.match_docs('[1,0,0]', 10)`)).rows[0]?.n, 5);
    assert.ok((await wrapperSessions(replica)).some((q) => SEARCH.test(q)), 'a new session reads the standby again');
  });
});

test('plan blocks a replica that is not a standby of its secondary: another secondary, another cluster\'s standby', { skip }, async () => {
  // localhost, not 127.0.0.1: the config rule that refuses the same URL twice does not see it; plan does.
  const notStandby = podB.replace('127.0.0.1', 'localhost');
  const urls = [notStandby, ...(otherReplicaAdmin ? [withDatabase(otherReplicaAdmin, name)] : [])];
  const p = await plan(load(urls));
  const reasons = p.blockers.filter((b) => b.database === 'pod_a').map((b) => b.reason);
  assert.ok(reasons.some((r) => /is not a standby \(pg_is_in_recovery\(\) is false\)/.test(r)), `not a standby: ${JSON.stringify(p.blockers)}`);
  if (otherReplicaAdmin) assert.ok(reasons.some((r) => /is a standby of another cluster \(system identifier/.test(r)), `another cluster: ${JSON.stringify(p.blockers)}`);
  const r = await apply(load(urls), { approve: async () => true });
  assert.equal(r.status, 'blocked', 'apply refuses');
  // And the real standby plans clean.
  assert.deepEqual((await plan(load([replica]))).blockers, []);
});
