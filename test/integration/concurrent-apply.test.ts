/**
 * apply runs the secondaries at once (those on one cluster one after another), then the primary: both pods start
 * before either has run a step; two pods failing at once are both named, nothing committed, the primary not
 * attempted; and the next apply converges.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { VecscaleError } from '../../src/errors.js';
import { hasChanges } from '../../src/plan/types.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('concurrent');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(dbs, `  docs:\n    secondary: pod_a\n    dimension: 3\n  imgs:\n    secondary: pod_b\n    dimension: 3\n`);

test('two pods failing at once: both named, nothing committed, the primary not attempted', async () => {
  for (const pod of [podA, podB]) {
    await sql(pod, `CREATE FUNCTION refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'tables are frozen here'; END $$`);
    await sql(pod, `CREATE EVENT TRIGGER no_tables ON ddl_command_start WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION refuse()`);
  }
  const err = await apply(file.load(), { approve: async () => true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof VecscaleError, `a VecscaleError: ${String(err)}`);
  assert.equal(err.code, 'database', err.message);
  assert.match(err.message, /pod_a failed and was rolled back: .*tables are frozen here; pod_b failed and was rolled back: .*tables are frozen here/);
  assert.deepEqual(err.meta.failedAll, ['pod_a', 'pod_b']);
  assert.deepEqual(err.meta.notAttempted, ['primary']);
  for (const pod of [podA, podB]) {
    const [t] = await sql<{ n: number }>(pod, `SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('docs', 'imgs') AND relnamespace = 'vecs'::regnamespace`).catch(() => [{ n: 0 }]);
    assert.equal(t!.n, 0, 'nothing committed on the pods');
    await sql(pod, 'DROP EVENT TRIGGER no_tables');
  }
});

test('the pods start together, the primary after both; the next plan is empty', async () => {
  const order: string[] = [];
  await apply(file.load(), {
    approve: async () => true,
    events: {
      onDatabaseStart: (d) => order.push(`start ${d.database}`),
      onStepDone: (s) => {
        if (order.at(-1) !== `step ${s.database}`) order.push(`step ${s.database}`);
      },
    },
  });
  assert.deepEqual(order.slice(0, 2).sort(), ['start pod_a', 'start pod_b'], `both pods start before any step: ${order.join(', ')}`);
  const primaryStart = order.indexOf('start primary');
  assert.ok(primaryStart > 0 && order.slice(primaryStart + 1).every((x) => x === 'step primary'), `the primary after the pods: ${order.join(', ')}`);
  assert.equal(hasChanges(await plan(file.load())), false, 'converged');
});
