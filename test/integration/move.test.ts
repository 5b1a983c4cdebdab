/**
 * Issue 13, moves on real clusters: a single-pod collection (`docs`) and a sharded one (`imgs`), both without a
 * vector index and seeded with a few thousand rows, are moved to another pod, get a shard added and removed, have
 * their partitions doubled and halved, go single → sharded and back — each `apply` with a concurrent writer and
 * readers through the primary (test/move-writer.ts). After each: the exact row set (through the primary and on the
 * pods), `check` clean, the plan empty, no replication slot / publication / subscription anywhere, `match_<c>` equal
 * to brute force on the pods, no write or read errored. An HNSW collection (`vidx`, protect: true) moves too, its
 * index built on the target. Needs three secondaries (`sandbox up --secondaries 3`).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { check } from '../../src/check.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { isTableOf, partsOf } from '../../src/model/placement.js';
import { hasChanges } from '../../src/plan/types.js';
import { sql } from '../harness.js';
import {
  bruteForce,
  collectionOf,
  describeStats,
  MoveWriter,
  moveDatabases,
  podsTopology,
  replicationLeftovers,
  rowsOnPods,
  rowsThroughPrimary,
  type WriterStats,
} from '../move-writer.js';

const { dbs, admins, needs3 } = await moveDatabases('move');
const enough = needs3 === false;

const DIM = 8;
interface Placement {
  readonly docs: string;
  readonly imgs: string;
  readonly vidx: string;
}
const render = (p: Placement): string =>
  `  docs:\n    ${p.docs}\n    dimension: ${DIM}\n    index: { method: none }\n` +
  `  imgs:\n    ${p.imgs}\n    dimension: ${DIM}\n    index: { method: none }\n` +
  `  vidx:\n    ${p.vidx}\n    dimension: ${DIM}\n    protect: true\n`;
const single = (pod: string) => `secondary: ${pod}`;
const sharded = (pods: string[], partitions: number) => `shards: [${pods.join(', ')}]\n    partitions: ${partitions}`;

let placement: Placement = { docs: single('pod_1'), imgs: sharded(['pod_1', 'pod_2'], 2), vidx: single('pod_1') };
const file = podsTopology(dbs, render(placement));
const writers = {
  docs: new MoveWriter({ url: dbs.primary, collection: 'docs', dimension: DIM, seed: 11 }),
  imgs: new MoveWriter({ url: dbs.primary, collection: 'imgs', dimension: DIM, seed: 23 }),
  vidx: new MoveWriter({ url: dbs.primary, collection: 'vidx', dimension: DIM, seed: 37, exactReads: false, workers: 2, readers: 1 }),
};
type Name = keyof typeof writers;
const NAMES = Object.keys(writers) as Name[];

if (enough) {
  const first = await apply(file.load(), { approve: async () => true });
  assert.equal(first.status, 'applied');
  await writers.docs.seed(3000);
  await writers.imgs.seed(3000);
  await writers.vidx.seed(1500);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The collection's tables on every pod (anything `isTableOf` recognises, in any schema). */
async function tablesOf(collection: string): Promise<string[]> {
  const out: string[] = [];
  for (const [pod, url] of Object.entries(file.pods)) {
    const rows = await sql<{ s: string; t: string }>(url, `SELECT n.nspname::text AS s, c.relname::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`);
    out.push(...rows.filter((r) => isTableOf(collection, r.t)).map((r) => `${pod}:${r.s}.${r.t}`));
  }
  return out.sort();
}

/** vecs' shape: id varchar PRIMARY KEY, vec vector(n) NOT NULL, metadata jsonb NOT NULL DEFAULT '{}'. */
async function assertVecsShape(pod: string, table: string): Promise<void> {
  const cols = await sql(
    file.pods[pod]!,
    `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`vecs.${table}`],
  );
  assert.deepEqual(cols, [
    { name: 'id', type: 'character varying', notnull: true, def: null },
    { name: 'vec', type: `vector(${DIM})`, notnull: true, def: null },
    { name: 'metadata', type: 'jsonb', notnull: true, def: "'{}'::jsonb" },
  ], `${pod}: vecs.${table}`);
  const pk = await sql(file.pods[pod]!, `SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = $1::regclass AND indisprimary`, [`vecs.${table}`]);
  assert.equal(pk.length, 1, `${pod}: vecs.${table} has a primary key`);
  assert.match(pk[0]!.d as string, /\(id\)$/);
  // A move sets REPLICA IDENTITY FULL on a row-filtered source only while it runs: a table of vecs keeps DEFAULT.
  const ri = await sql(file.pods[pod]!, `SELECT relreplident::text AS r FROM pg_class WHERE oid = $1::regclass`, [`vecs.${table}`]);
  assert.equal(ri[0]!.r, 'd', `${pod}: vecs.${table} has REPLICA IDENTITY DEFAULT`);
}

async function assertRowsExact(name: Name): Promise<void> {
  const t = file.load();
  const w = writers[name];
  for (const [where, rows] of [
    ['through the primary', await rowsThroughPrimary(dbs.primary, name)],
    ['on the pods', await rowsOnPods(t, file.pods, name)],
  ] as const) {
    const d = w.compare(rows);
    const show = (xs: string[]) => `${xs.length}${xs.length ? ` (${xs.slice(0, 5).join('; ')})` : ''}`;
    assert.ok(
      d.missing.length + d.extra.length + d.different.length + d.duplicated.length === 0,
      `${name} ${where}: missing ${show(d.missing)}, extra ${show(d.extra)}, different ${show(d.different)}, duplicated ${show(d.duplicated)} of ${w.expectedRows().size} expected`,
    );
  }
}

async function assertMatchIsBruteForce(name: Name): Promise<void> {
  const t = file.load();
  const queries = ['[1,0,0,0,0,0,0,0]', '[0.5,-1,0.25,1,0,-0.75,0.125,1]', '[1,1,1,1,1,1,1,1]', '[0.1,0.9,-0.3,0.2,0.7,-0.6,0.4,-0.1]'];
  for (const q of queries) {
    for (const k of [10, 50]) {
      const want = await bruteForce(t, file.pods, name, q, k);
      const got = await sql<{ id: string; distance: number }>(dbs.primary, `SELECT id, distance FROM public.match_${name}($1, $2)`, [q, k]);
      assert.equal(got.length, want.length, `${name} k=${k}`);
      got.forEach((g, i) => {
        assert.ok(Math.abs(g.distance - want[i]!.distance) < 1e-9, `${name} ${q} k=${k} rank ${i}: ${g.id} ${g.distance} vs ${want[i]!.id} ${want[i]!.distance}`);
      });
      // Ids agree except where distances tie: with each other, or at the k-th distance with rows beyond the k.
      const last = want[want.length - 1]?.distance ?? 0;
      const unique = (xs: Array<{ id: string; distance: number }>) =>
        xs.filter((x) => Math.abs(x.distance - last) >= 1e-12 && xs.filter((y) => Math.abs(y.distance - x.distance) < 1e-12).length === 1).map((x) => x.id);
      assert.deepEqual(unique(got), unique(want), `${name} ${q} k=${k}`);
    }
  }
}

/** Everything the issue's acceptance lists, after a move. */
async function assertConverged(t: TestContext): Promise<void> {
  const topology = file.load();
  for (const name of NAMES) {
    await assertRowsExact(name);
    const parts = partsOf(collectionOf(topology, name));
    assert.deepEqual(await tablesOf(name), parts.map((p) => `${p.secondary}:vecs.${p.table}`).sort(), `${name}: its tables are the new layout's, nothing else`);
    for (const p of parts) await assertVecsShape(p.secondary, p.table);
    if (name === 'vidx') {
      for (const p of parts) {
        const ix = await sql(file.pods[p.secondary]!, `SELECT indexrelid::regclass::text AS i, indisvalid AS valid, pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = $1::regclass AND NOT indisprimary`, [`vecs.${p.table}`]);
        assert.equal(ix.length, 1, `${p.secondary}: vecs.${p.table} has its vector index: ${JSON.stringify(ix)}`);
        assert.equal(ix[0]!.valid, true);
        assert.match(ix[0]!.d as string, /USING hnsw \(vec vector_cosine_ops\)/);
        assert.match(ix[0]!.i as string, /^vecs\.ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}$/);
      }
    } else {
      await assertMatchIsBruteForce(name);
    }
  }
  const report = await check(topology);
  assert.equal(report.healthy, true, JSON.stringify(report.partitions.filter((p) => p.misplaced > 0)));
  assert.ok(report.partitions.every((p) => p.misplaced === 0));
  const after = await plan(topology);
  assert.deepEqual(after.blockers, []);
  assert.deepEqual(after.moves ?? [], []);
  assert.equal(hasChanges(after), false, JSON.stringify(after.databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`))));
  assert.deepEqual(await replicationLeftovers(admins, dbs.name), []);
  t.diagnostic(`rows: ${NAMES.map((n) => `${n} ${writers[n].expectedRows().size}`).join(', ')}`);
}

function assertWriterClean(name: Name, s: WriterStats): void {
  assert.ok(s.committed > 0, `${name}: the writer committed something (${describeStats(s)})`);
  assert.deepEqual(s.errors.slice(0, 10), [], `${name}: no write or read through the primary errors (${describeStats(s)})`);
  assert.deepEqual(s.readMismatches.slice(0, 10), [], `${name}: reads through the primary are exact (${describeStats(s)})`);
  assert.equal(s.uncertain, 0, `${name}: no COMMIT with an unknown outcome`);
}

/**
 * Changes the placement, checks that the plan shows the move, applies it with every writer running, and checks
 * what the acceptance lists.
 */
async function move(t: TestContext, change: Partial<Placement>, moving: Name[]): Promise<void> {
  placement = { ...placement, ...change };
  file.write(render(placement));
  const p = await plan(file.load());
  assert.deepEqual(p.blockers, [], 'a verified move needs no --allow-destructive, protect: true included');
  assert.deepEqual((p.moves ?? []).map((m) => m.collection).sort(), [...moving].sort(), 'the plan shows the move');
  for (const m of p.moves ?? []) {
    assert.equal(m.kind, 'move');
    assert.ok(m.steps.length > 0 && m.flows.length > 0, JSON.stringify(m));
    assert.match(m.writePause, /\S/, 'the plan says how long writes pause');
  }
  const events: ProgressEvent[] = [];
  for (const n of NAMES) await writers[n].start();
  let stats: Record<Name, WriterStats>;
  let r: Awaited<ReturnType<typeof apply>>;
  try {
    await sleep(300);
    r = await apply(file.load(), { approve: async () => true, events: { onProgress: (e) => events.push(e) } });
    await sleep(300);
  } finally {
    stats = { docs: await writers.docs.stop(), imgs: await writers.imgs.stop(), vidx: await writers.vidx.stop() };
  }
  for (const n of NAMES) t.diagnostic(`${n}: ${describeStats(stats[n])}`);
  const finished = events.filter((e) => e.type === 'step-finished').map((e) => `${e.id}: ${e.detail ?? ''}`);
  const reports = r.status === 'applied' ? (r.moves ?? []) : [];
  t.diagnostic(`moves: ${JSON.stringify(reports)}; progress: ${finished.join(' | ')}`);
  assert.equal(r.status, 'applied');
  for (const n of NAMES) assertWriterClean(n, stats[n]);
  // The pause is measured and reported: in the apply's result, or in its progress.
  for (const n of moving) {
    const rep = reports.find((m) => m.collection === n);
    assert.ok((rep && typeof rep.pauseMs === 'number') || finished.some((d) => d.includes(n) && /pause \d/i.test(d)), `${n}: the write pause is measured and reported`);
  }
  await assertConverged(t);
}

test('control: the writer and readers agree with an unchanging collection exactly, and the comparison sees a change behind their back', { skip: needs3 }, async (t) => {
  for (const n of NAMES) await writers[n].start();
  await sleep(1500);
  const stats = { docs: await writers.docs.stop(), imgs: await writers.imgs.stop(), vidx: await writers.vidx.stop() };
  for (const n of NAMES) {
    t.diagnostic(`${n}: ${describeStats(stats[n])}`);
    assertWriterClean(n, stats[n]);
    assert.ok(stats[n].rolledBack > 0 && stats[n].reads > 0);
  }
  await assertConverged(t);
  // A row changed straight on its pod is `different`; one deleted is `missing`; one added is `extra`.
  const [victim, gone] = [...writers.docs.expectedRows().keys()].filter((id) => id.startsWith('s'));
  await sql(file.pods.pod_1!, `UPDATE vecs.docs SET metadata = '{"behind": "its back"}' WHERE id = $1`, [victim]);
  await sql(file.pods.pod_1!, `DELETE FROM vecs.docs WHERE id = $1`, [gone]);
  await sql(file.pods.pod_1!, `INSERT INTO vecs.docs (id, vec) VALUES ('stranger', '[1,1,1,1,1,1,1,1]')`);
  const d = writers.docs.compare(await rowsOnPods(file.load(), file.pods, 'docs'));
  assert.deepEqual([d.missing, d.extra, d.different.map((x) => x.split(':')[0])], [[gone], ['stranger'], [victim]]);
  // Put them back as the writer knows them.
  const row = (id: string) => writers.docs.expectedRows().get(id)!;
  for (const id of [victim!, gone!]) await sql(dbs.primary, `SELECT public.upsert_docs($1::text, $2, $3::jsonb)`, [id, `[${row(id).embedding.join(',')}]`, JSON.stringify(row(id).metadata)]);
  await sql(file.pods.pod_1!, `DELETE FROM vecs.docs WHERE id = 'stranger'`);
  await assertRowsExact('docs');
});

test('docs moves pod_1 → pod_2 with the application writing; a direct write to the old copy fails loudly', { skip: needs3 }, async (t) => {
  await move(t, { docs: single('pod_2') }, ['docs']);
  await assert.rejects(sql(file.pods.pod_1!, `INSERT INTO vecs.docs (id, vec) VALUES ('late-direct', '[1,2,3,4,5,6,7,8]')`), 'a late direct writer to the old copy gets an error');
});

test('imgs splits its partitions 2 → 4', { skip: needs3 }, async (t) => {
  await move(t, { imgs: sharded(['pod_1', 'pod_2'], 4) }, ['imgs']);
});

test('imgs gets a shard added: [pod_1, pod_2] → [pod_1, pod_2, pod_3]', { skip: needs3 }, async (t) => {
  await move(t, { imgs: sharded(['pod_1', 'pod_2', 'pod_3'], 4) }, ['imgs']);
});

test('imgs gets the shard removed again: → [pod_1, pod_2]', { skip: needs3 }, async (t) => {
  await move(t, { imgs: sharded(['pod_1', 'pod_2'], 4) }, ['imgs']);
});

test('imgs merges its partitions 4 → 2', { skip: needs3 }, async (t) => {
  await move(t, { imgs: sharded(['pod_1', 'pod_2'], 2) }, ['imgs']);
});

test('docs moves back pod_2 → pod_1', { skip: needs3 }, async (t) => {
  await move(t, { docs: single('pod_1') }, ['docs']);
});

test('docs goes single → sharded [pod_1, pod_2], and back', { skip: needs3 }, async (t) => {
  await move(t, { docs: sharded(['pod_1', 'pod_2'], 2) }, ['docs']);
  await move(t, { docs: single('pod_1') }, ['docs']);
});

test('two collections move in one apply: imgs to 4 partitions over three shards and docs to pod_3, and back', { skip: needs3 }, async (t) => {
  await move(t, { docs: single('pod_3'), imgs: sharded(['pod_1', 'pod_2', 'pod_3'], 4) }, ['docs', 'imgs']);
  await move(t, { docs: single('pod_1'), imgs: sharded(['pod_1', 'pod_2'], 2) }, ['docs', 'imgs']);
});

test('an HNSW collection with protect: true moves pod_1 → pod_3 without --allow-destructive; its index is on the target', { skip: needs3 }, async (t) => {
  await move(t, { vidx: single('pod_3') }, ['vidx']);
});

