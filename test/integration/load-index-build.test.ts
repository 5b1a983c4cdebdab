/**
 * `vecscale load`'s rebuild of the vector index it dropped runs with the topology's `index.build`, as apply's builds
 * do (SET LOCAL in the rebuild's transaction): the progress step names the settings, the index is rebuilt exactly, and
 * the next plan is empty (build settings are not part of the index).
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { load } from '../../src/load/run.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { hasChanges } from '../../src/plan/types.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('load_build');
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
    index: { method: hnsw, m: 8, ef_construction: 32, build: { maintenance_work_mem: 96MB, parallel_workers: 1 } }
`);
await apply(file.load(), { approve: async () => true });

test('the rebuild after a load into an empty table runs with index.build', async () => {
  const before = await sql<{ def: string }>(podA, `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i WHERE i.indrelid = 'vecs.docs'::regclass AND NOT i.indisprimary`);
  const lines = Array.from({ length: 500 }, (_, g) => JSON.stringify({ id: `d${g}`, embedding: [Math.sin(g), Math.cos(g), g / 500], metadata: { g } })).join('\n');
  const events: ProgressEvent[] = [];
  const report = await load(file.load(), {
    collection: 'docs',
    input: Readable.from([lines]),
    format: 'jsonl',
    source: 'test',
    events: { onProgress: (e) => void events.push(e) },
  });
  assert.equal(report.tables[0]?.indexesRebuilt.length, 1, 'the index was dropped for the load and rebuilt');
  const started = events.find((e) => e.type === 'step-started' && e.id.startsWith('index:'));
  assert.match(started?.label ?? '', /building index vecs\.ix_\S+ on pod_a \(maintenance_work_mem 96 MB, 1 parallel workers\)/, JSON.stringify(events.slice(0, 3)));
  const after = await sql<{ def: string }>(podA, `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i WHERE i.indrelid = 'vecs.docs'::regclass AND NOT i.indisprimary`);
  assert.deepEqual(after, before, 'rebuilt exactly');
  assert.equal(hasChanges(await plan(file.load())), false, 'converged');
});
