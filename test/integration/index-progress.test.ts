/**
 * Progress of real index builds: an HNSW build over 30k × 128 rows, made slow on purpose (1 MB of
 * maintenance_work_mem: pgvector builds on disk), reports blocks done / total from pg_stat_progress_create_index,
 * polled from a second connection; nothing is reported after the build ends, and the poller's session goes with it.
 * Progress is best-effort: a poller that cannot connect leaves the build alone.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { apply } from '../../src/api.js';
import { backendPid, withIndexProgress } from '../../src/apply/index-progress.js';
import { close, connect, queryUnbounded, type Target } from '../../src/db/connect.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const ROWS = 30_000;
const dbs = await freshDatabases('index_progress');
const podA = Object.values(dbs.secondaries)[0]!;
const podB = Object.values(dbs.secondaries)[1]!;

/** 30k random 128-dimensional rows; builds on this database are slow (on disk, no parallel workers). */
async function slowBuildsOn(url: string, table: string): Promise<void> {
  await sql(url, `INSERT INTO ${table} (id, vec, metadata)
    SELECT i::text, (SELECT array_agg(random())::vector(128) FROM generate_series(1, 128) WHERE i > 0), '{}'
    FROM generate_series(1, ${ROWS}) i`);
  await sql(url, `ALTER DATABASE "${dbs.name}" SET maintenance_work_mem = '1MB'`);
  await sql(url, `ALTER DATABASE "${dbs.name}" SET max_parallel_maintenance_workers = 0`);
}

const pollerSessions = async (url: string) =>
  Number((await sql<{ n: string }>(url, `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'vecscale progress'`, [dbs.name]))[0]!.n);

/** Waits (bounded: a hang guard, not a timing claim) until the poller's session is gone. */
async function pollerGone(url: string): Promise<void> {
  for (let i = 0; i < 100 && (await pollerSessions(url)) > 0; i++) await sleep(100);
  assert.equal(await pollerSessions(url), 0, 'the poller closed its connection');
}

function checkStep(events: readonly ProgressEvent[], id: string): Extract<ProgressEvent, { type: 'progress' }>[] {
  const mine = events.filter((e) => e.id === id);
  assert.equal(mine[0]?.type, 'step-started');
  assert.equal(mine.at(-1)?.type, 'step-finished');
  assert.equal(mine.filter((e) => e.type !== 'progress').length, 2, 'one start, one finish');
  return mine.filter((e): e is Extract<ProgressEvent, { type: 'progress' }> => e.type === 'progress');
}

test('a slow HNSW build reports blocks done / total while it runs, and nothing after it ends', async () => {
  await sql(podB, 'CREATE EXTENSION IF NOT EXISTS vector');
  await sql(podB, 'CREATE TABLE raw (id text PRIMARY KEY, vec vector(128), metadata jsonb)');
  await slowBuildsOn(podB, 'raw');
  const target: Target = { database: 'pod_b', url: podB };
  const db = await connect(target);
  try {
    const pid = await backendPid(db);
    assert.ok(pid);
    const events: ProgressEvent[] = [];
    const step = { id: 'index:pod_b:raw_vec', label: 'building index raw_vec (pod_b)' };
    await withIndexProgress(target, pid, step, (e) => events.push(e), () =>
      queryUnbounded(db, 'CREATE INDEX raw_vec ON public.raw USING hnsw (vec public.vector_l2_ops) WITH (m = 8, ef_construction = 24)', { local: false }),
    );
    const progress = checkStep(events, step.id);
    const blocks = progress.filter((e) => e.unit === 'blocks' && (e.total ?? 0) > 0);
    assert.ok(blocks.length >= 1, `a blocks event with a total: ${JSON.stringify(progress)}`);
    for (const e of blocks) assert.ok(e.done! <= e.total!, JSON.stringify(e));
    assert.ok(progress.every((e) => e.database === 'pod_b' && e.label === step.label));
    const after = events.length;
    await sleep(2_500); // more than two poll intervals
    assert.equal(events.length, after, 'no event after the build ended');
    await pollerGone(podB);
  } finally {
    await close(db);
  }
});

test('a poller that cannot connect leaves the build alone; a failed build finishes its step not ok and throws', async () => {
  const events: ProgressEvent[] = [];
  const nowhere: Target = { database: 'pod_x', url: 'postgres://postgres:pw@127.0.0.1:1/none' };
  const value = await withIndexProgress(nowhere, 1, { id: 'ix', label: 'building ix' }, (e) => events.push(e), async () => 'built');
  assert.equal(value, 'built');
  assert.deepEqual(events.map((e) => e.type), ['step-started', 'step-finished']);
  assert.equal((events[1] as { ok: boolean }).ok, true);

  const failed: ProgressEvent[] = [];
  await assert.rejects(
    withIndexProgress(nowhere, 1, { id: 'ix', label: 'building ix' }, (e) => failed.push(e), async () => {
      throw new Error('could not create unique index\nDETAIL: …');
    }),
    /could not create unique index/,
  );
  assert.deepEqual(failed.at(-1), { type: 'step-finished', id: 'ix', database: 'pod_x', label: 'building ix', at: failed.at(-1)!.at, ok: false, detail: 'could not create unique index' });
});

test('apply reports an index rebuild to onProgress: blocks from PostgreSQL, the step framed, nothing after apply returns', async () => {
  const yaml = (m: number) => `  docs:
    secondary: pod_a
    dimension: 128
    metric: l2
    index: { method: hnsw, m: ${m}, ef_construction: 24, build: { maintenance_work_mem: 1MB, parallel_workers: 0 } }
`;
  const file = topologyFile(dbs, yaml(8));
  assert.equal((await apply(file.load(), { approve: async () => true })).status, 'applied');
  await slowBuildsOn(podA, 'vecs.docs');
  // index.build keeps apply's build on disk too: unset, vecscale would raise maintenance_work_mem to the graph's size.
  file.write(yaml(6));
  const events: ProgressEvent[] = [];
  const result = await apply(file.load(), { approve: async () => true, events: { onProgress: (e) => events.push(e) } });
  assert.equal(result.status, 'applied');
  const ids = [...new Set(events.map((e) => e.id))];
  assert.equal(ids.length, 1, `one index step: ${ids.join(', ')}`);
  assert.match(ids[0]!, /^index:pod_a:vecs\.docs$/);
  assert.match(events[0]!.label, /^building index vecs\.\S+ on \S+ \(pod_a\)$/);
  const progress = checkStep(events, ids[0]!);
  assert.ok(progress.some((e) => e.unit === 'blocks' && (e.total ?? 0) > 0), JSON.stringify(progress));
  const after = events.length;
  await sleep(2_500);
  assert.equal(events.length, after, 'no event after apply returned');
  await pollerGone(podA);
});
