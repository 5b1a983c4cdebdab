/**
 * A secondary that accepted vecscale's connections and then stopped answering (its sessions' processes stopped with
 * SIGSTOP: no answer, and no server-side statement_timeout either). `plan` and `apply` end with exit 1 within the
 * statement timeout plus its grace, naming the database and what vecscale was doing, without a stack trace; the
 * locks go with the connections, so once the secondary answers again the next apply goes through.
 *
 * To stop the run at a known point, a session of the test holds a lock that point waits for (pg_depend for the
 * catalog reads, the secondary's view for a DDL step), and the run's sessions are frozen while they wait.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { vecscale } from '../cli.js';
import { freezeSessions, freshDatabases, sql, testClusters } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('silent');
const podAdmin = Object.values((await testClusters()).secondaries)[0]!;
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
    columns: { lang: text }
`);
/** Generous: the bound is 2 s + 1 s of grace; process start and the other databases come on top. */
const BOUND_MS = 15_000;

/** Holds `lock` in an open transaction on pod_a's test database while `fn` runs. */
async function holding<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const holder = new pg.Client({ connectionString: podA });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(lock);
    return await fn();
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
  }
}

/** Waits until a session named `app` waits for a lock in pod_a's test database. */
async function waitingForLock(app: string): Promise<void> {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const rows = await sql(podAdmin, `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'`, [dbs.name, app]);
    if (rows.length > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no session "${app}" waited for the lock`);
}

/** Runs the CLI; once its session on pod_a waits for the held lock, freezes the run's sessions there. */
async function frozenRun(args: string[], app: string, lock: string): Promise<{ code: number; stderr: string; stdout: string; ms: number }> {
  return holding(lock, async () => {
    const t0 = Date.now();
    const run = vecscale(args, { env: file.env });
    let frozen: { pids: number[]; thaw: () => void } | undefined;
    try {
      await waitingForLock(app);
      frozen = await freezeSessions(podAdmin, dbs.name, `application_name LIKE 'vecscale%'`);
      assert.ok(frozen.pids.length > 0, 'froze the run');
      const r = await run;
      return { ...r, ms: Date.now() - t0 };
    } finally {
      frozen?.thaw();
      await run;
    }
  });
}

test('plan: a secondary that stops answering while its catalogs are read → exit 1 within the bound, naming it', { timeout: 60_000 }, async () => {
  const r = await frozenRun(['plan', file.path, '--statement-timeout', '2s'], 'vecscale plan', 'LOCK TABLE pg_catalog.pg_depend IN ACCESS EXCLUSIVE MODE');
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.ms < BOUND_MS, `took ${r.ms} ms`);
  assert.match(r.stderr, /secondary pod_a \(postgres(ql)?:\/\/[^)]*\) stopped answering: no answer within 3 s while reading its catalogs \(statement timeout 2 s\)/);
  assert.match(r.stderr, /hint: .*--statement-timeout/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
});

test('apply: a secondary that stops answering during a DDL step → exit 1 naming the step; after it answers again the next apply goes through', { timeout: 120_000 }, async () => {
  const first = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(first.code, 0, first.stderr);
  // A new column replaces the secondary's view vecscale.docs: that step waits for the lock the test holds on it.
  file.write(`  docs:
    secondary: pod_a
    dimension: 3
    columns: { lang: text, year: integer }
`);
  const r = await frozenRun(
    ['apply', file.path, '--auto-approve', '--statement-timeout', '2s'],
    'vecscale apply',
    'LOCK TABLE vecscale.docs IN ACCESS SHARE MODE',
  );
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.ms < BOUND_MS, `took ${r.ms} ms`);
  assert.match(r.stderr, /pod_a failed; its transaction did not commit: secondary pod_a \([^)]*\) stopped answering: no answer within 3 s while running step \d+ of \d+ \(view vecscale\.docs\)/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');

  // Thawed, the frozen session notices its closed connection and ends: its lock goes with it.
  const again = await vecscale(['apply', file.path, '--auto-approve', '--lock-timeout', '20'], { env: file.env });
  assert.equal(again.code, 0, again.stderr);
  const plan = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(plan.code, 0, plan.stderr);
});

test('--statement-timeout: a server that answers cancels a statement itself at the timeout (exit 1, said so)', { timeout: 60_000 }, async () => {
  const r = await holding('LOCK TABLE pg_catalog.pg_depend IN ACCESS EXCLUSIVE MODE', () =>
    vecscale(['plan', file.path, '--statement-timeout', '500ms'], { env: file.env }),
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /secondary pod_a \([^)]*\): reading its catalogs took longer than the statement timeout \(500 ms\) and was cancelled/);
});

test('--statement-timeout takes durations; anything else is exit 6', async () => {
  for (const bad of ['soon', '-1s', '2h', '1e3']) {
    const r = await vecscale(['plan', file.path, '--statement-timeout', bad], { env: file.env });
    assert.equal(r.code, 6, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /expected a duration such as 30s/);
  }
  const ok = await vecscale(['plan', file.path, '--statement-timeout', '0'], { env: file.env });
  assert.equal(ok.code, 0, ok.stderr);
});
