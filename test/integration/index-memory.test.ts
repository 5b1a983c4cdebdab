/**
 * An HNSW index about to be built over rows already in its table: the plan states the graph memory it needs
 * ((8 + 4·dims) × rows × 1.3), from the table's statistics or, never analyzed, its rows counted (up to 1 GB), and the
 * maintenance_work_mem the build will run with (here the session's, which holds it; see index-build.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { formatBytes } from '../../src/util/bytes.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('index_memory');
const podA = Object.values(dbs.secondaries)[0]!;
const collection = (index: string) => `  big:
    secondary: pod_a
    dimension: 768
    index: ${index}
`;
const file = topologyFile(dbs, collection('{ method: none }'));
await apply(file.load(), { approve: async () => true });
// 5,000 rows of 768 dimensions, straight into the pod's table.
await sql(podA, `INSERT INTO vecs.big (id, vec) SELECT 'r' || g, ARRAY(SELECT (random() + g * 0)::real FROM generate_series(1, 768))::vector(768) FROM generate_series(1, 5000) g`);

const memoryNote = async () => {
  file.write(collection('{ method: hnsw, m: 16, ef_construction: 64 }'));
  const p = await plan(file.load());
  return p.notes.filter((n) => n.database === 'pod_a' && n.object.startsWith('index vecs.ix_')).map((n) => n.message);
};

test('never analyzed: rows counted; after ANALYZE, from its statistics; the session setting named', async () => {
  const mwm = formatBytes(Number((await sql<{ m: string }>(podA, `SELECT pg_size_bytes(current_setting('maintenance_work_mem')) AS m`))[0]!.m));
  const before = await memoryNote();
  assert.equal(before.length, 1, JSON.stringify(before));
  assert.match(before[0]!, /the HNSW build over about [\d,]+ rows of vecs\.big needs about [\d.]+ MB \(\(8 \+ 4 × 768\) bytes a row × 1\.3\); it will run with maintenance_work_mem/);
  const estimated = Number(/about ([\d,]+) rows/.exec(before[0]!)![1]!.replace(/,/g, ''));
  assert.equal(estimated, 5000, 'never analyzed: counted');
  await sql(podA, 'ANALYZE vecs.big');
  const after = await memoryNote();
  assert.match(after[0]!, /about 5,000 rows of vecs\.big needs about 19 MB/);
  assert.ok(after[0]!.includes(`it will run with maintenance_work_mem ${mwm} (the session's) and `), `${after[0]} names ${mwm}`);
});

test('analyzed, then bulk-loaded: rows estimated as PostgreSQL does, from the density the analyze saw and the pages there are now', async () => {
  await sql(podA, 'ANALYZE vecs.big');
  await sql(podA, `INSERT INTO vecs.big (id, vec) SELECT 's' || g, ARRAY(SELECT (random() + g * 0)::real FROM generate_series(1, 768))::vector(768) FROM generate_series(1, 5000) g`);
  const note = (await memoryNote())[0]!;
  const rows = Number(/about ([\d,]+) rows/.exec(note)![1]!.replace(/,/g, ''));
  assert.ok(rows > 9_000 && rows < 11_000, `about 10,000 rows now, not the 5,000 the analyze saw: ${note}`);
});
