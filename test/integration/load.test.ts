/**
 * `vecscale load` on real clusters: JSON lines and CSV, a file and stdin, into a collection on one pod, two shards,
 * and four partitions on two pods. Every good row lands exactly as written and on the partition PostgreSQL's own hash
 * partitioning picks; bad lines are named; --upsert replaces; an empty collection's index is dropped for the load and
 * rebuilt with the same definition — also when the load fails midway; failures are plain, located and secret-free.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { check } from '../../src/check.js';
import type { Topology } from '../../src/config/types.js';
import { isVecscaleError, type VecscaleError } from '../../src/errors.js';
import { partitionRemainder } from '../../src/load/hash.js';
import { load, type LoadInput, type LoadReport } from '../../src/load/run.js';
import { vecscale } from '../cli.js';
import { freshDatabases, ROOT, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('load');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(
  dbs,
  `  docs:
    secondary: pod_a
    dimension: 3
  flat:
    secondary: pod_b
    dimension: 3
    index: { method: none }
  fails:
    secondary: pod_a
    dimension: 3
  sh2:
    shards: [pod_a, pod_b]
    dimension: 3
  sh4:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 3
    index: { method: ivfflat, lists: 2 }
`,
);
await apply(file.load(), { approve: async () => true });
const topology = file.load();
const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`));

function run(collection: string, text: string | Buffer | AsyncIterable<Buffer>, over: Partial<LoadInput> = {}, t: Topology = topology): Promise<LoadReport> {
  const input = typeof text === 'string' || Buffer.isBuffer(text) ? Readable.from([Buffer.from(text)]) : text;
  return load(t, { collection, input, format: 'jsonl', source: 'rows.jsonl', ...over });
}

async function failure(p: Promise<unknown>): Promise<VecscaleError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isVecscaleError(e), `a VecscaleError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a failure');
}

const vec = (g: number) => `[${Math.sin(g).toFixed(6)},${Math.cos(g).toFixed(6)},${(g % 7) / 7}]`;
const jsonLine = (id: string, g: number, meta: unknown = { g }) => JSON.stringify({ id, embedding: JSON.parse(vec(g)), metadata: meta });

/** The vector indexes of a table: name, definition, comment. */
const vectorIndexes = (url: string, table: string) =>
  sql<{ name: string; def: string; comment: string | null }>(
    url,
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, obj_description(i.indexrelid, 'pg_class') AS comment
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
      WHERE i.indrelid = $1::regclass AND am.amname IN ('hnsw', 'ivfflat') ORDER BY 1`,
    [`vecs.${table}`],
  );

/** Where PostgreSQL's hash partitioning puts each id for `modulus`: a real partitioned table, filled and read. */
async function postgresRouting(ids: readonly string[], modulus: number): Promise<Map<string, number>> {
  const parent = `route_${modulus}_${Math.random().toString(36).slice(2, 8)}`;
  const parts = Array.from({ length: modulus }, (_, r) => `CREATE TABLE ${parent}_${r} PARTITION OF ${parent} FOR VALUES WITH (MODULUS ${modulus}, REMAINDER ${r})`);
  await sql(podA, `CREATE TABLE ${parent} (id varchar PRIMARY KEY) PARTITION BY HASH (id); ${parts.join('; ')}`);
  await sql(podA, `INSERT INTO ${parent} SELECT unnest($1::text[])`, [ids]);
  const rows = await sql<{ id: string; r: number }>(podA, `SELECT id, substring(tableoid::regclass::text from '_(\\d+)$')::int AS r FROM ${parent}`);
  await sql(podA, `DROP TABLE ${parent}`);
  return new Map(rows.map((x) => [x.id, x.r]));
}

/** Which partition each row of a sharded collection sits in, read on the pods. */
async function placement(collection: string, modulus: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let r = 0; r < modulus; r++) {
    const url = r % 2 === 0 ? podA : podB;
    for (const row of await sql<{ id: string }>(url, `SELECT id FROM vecs.${collection}_p${r}of${modulus}`)) {
      assert.ok(!out.has(row.id), `id ${row.id} in one partition only`);
      out.set(row.id, r);
    }
  }
  return out;
}

test('JSON lines into one pod: every good row lands as written, bad lines are named, the index is rebuilt exactly', async () => {
  const before = await vectorIndexes(podA, 'docs');
  assert.equal(before.length, 1);
  assert.match(before[0]!.comment ?? '', /^managed by vecscale/);
  const lines: string[] = [];
  for (let g = 1; g <= 200; g++) lines.push(jsonLine(`r${g}`, g));
  lines[9] = '{"id": "r10", "embedding": [1, 2]}'; // line 10
  lines[19] = '{"id": "r20", "embedding": [1, 2, 3]'; // line 20
  lines[29] = '{"embedding": [1, 2, 3]}'; // line 30
  lines[39] = '{"id": "r40", "embedding": [1, 2, 3], "metadata": ["not", "an", "object"]}'; // line 40
  lines[49] = '{"id": "r50", "embedding": [1, 2, 1e39]}'; // line 50
  lines.push(jsonLine('r5', 5, { again: true })); // line 201 repeats line 5
  lines.push(''); // a blank line is no line
  lines.push('{"id": "exact", "embedding": [0.1, -2.5e-3, 3], "metadata": {"big": 12345678901234567890123, "s": "tab\\there", "u": "ü日😀"}}');
  const r = await run('docs', `${lines.join('\n')}\n`, { batchRows: 37 });
  assert.deepEqual(
    r.badLines.map((b) => [b.line, b.reason]),
    [
      [10, 'the embedding has 2 dimensions; the collection has 3'],
      [20, r.badLines[1]!.reason],
      [30, 'no id'],
      [40, 'the metadata must be a JSON object (got an array)'],
      [50, 'embedding[2] is not a finite number in single precision (|x| ≤ 3.4e38)'],
      [201, 'the id repeats line 5'],
    ],
  );
  assert.match(r.badLines[1]!.reason, /^not valid JSON/);
  assert.equal(r.badLineCount, 6);
  assert.equal(r.rowsLoaded, 196);
  assert.equal(r.linesRead, 202);
  assert.deepEqual(r.tables.map((t) => [t.secondary, t.table, t.rows]), [['pod_a', 'vecs.docs', 196]]);
  const [{ n }] = (await sql<{ n: number }>(podA, 'SELECT count(*)::int AS n FROM vecs.docs')) as [{ n: number }];
  assert.equal(n, 196);
  const [exact] = await sql<{ vec: string; same: boolean; g: string }>(
    podA,
    `SELECT vec::text AS vec, metadata = '{"big": 12345678901234567890123, "s": "tab\\there", "u": "ü日😀"}'::jsonb AS same,
            (SELECT metadata->>'g' FROM vecs.docs WHERE id = 'r5') AS g
       FROM vecs.docs WHERE id = 'exact'`,
  );
  assert.deepEqual(exact, { vec: '[0.1,-0.0025,3]', same: true, g: '5' });
  // The table was empty: its index was dropped for the load and built again, name, definition and comment the same.
  assert.deepEqual(
    r.tables[0]!.indexesRebuilt.map((i) => i.name),
    before.map((i) => i.name),
  );
  assert.deepEqual(await vectorIndexes(podA, 'docs'), before);
  assert.deepEqual(await steps(), []);
  // Searches through the primary see the rows (and use the rebuilt index).
  const top = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_docs('${vec(77)}', 1, '{}')`);
  assert.deepEqual(top, [{ id: 'r77' }]);
});

test('without --upsert, ids already there are bad lines and the rows stay; with it, rows are replaced, the last line wins', async () => {
  const lines = [...Array.from({ length: 20 }, (_, i) => jsonLine(`r${i + 100}`, i, { v: 2 })), ...Array.from({ length: 30 }, (_, i) => jsonLine(`new${i}`, i, { v: 2 }))];
  const text = `${lines.join('\n')}\n`;
  const before = await vectorIndexes(podA, 'docs');
  const plainRun = await run('docs', text, { batchRows: 8 });
  assert.equal(plainRun.rowsLoaded, 30);
  assert.equal(plainRun.badLineCount, 20);
  assert.deepEqual(plainRun.badLines.map((b) => b.line), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(plainRun.badLines[0]!.reason, 'the id is already in vecs.docs on pod_a (--upsert replaces it)');
  // The table was not empty: the index stayed (no rebuild), and the rows that were there are unchanged.
  assert.deepEqual(plainRun.tables[0]!.indexesRebuilt, []);
  assert.deepEqual(await vectorIndexes(podA, 'docs'), before);
  assert.deepEqual(await sql(podA, `SELECT metadata->>'g' AS g FROM vecs.docs WHERE id = 'r100'`), [{ g: '100' }]);

  // --upsert: the same lines replace all 50; a repeated id (in the same batch, and in a later one) keeps the last line.
  const again = `${text}${jsonLine('new0', 0, { v: 3 })}\n${Array.from({ length: 9 }, (_, i) => jsonLine(`extra${i}`, i)).join('\n')}\n${jsonLine('r100', 1, { v: 4 })}\n`;
  const up = await run('docs', again, { upsert: true, batchRows: 8 });
  assert.equal(up.badLineCount, 0);
  assert.equal(up.rowsReplaced, 50);
  assert.equal(up.linesSuperseded, 2);
  assert.equal(up.rowsLoaded, 59);
  assert.deepEqual(await sql(podA, `SELECT id, metadata FROM vecs.docs WHERE id IN ('r100', 'r101', 'new0', 'new1', 'extra0') ORDER BY id`), [
    { id: 'extra0', metadata: { g: 0 } },
    { id: 'new0', metadata: { v: 3 } },
    { id: 'new1', metadata: { v: 2 } },
    { id: 'r100', metadata: { v: 4 } },
    { id: 'r101', metadata: { v: 2 } },
  ]);
  const [{ n }] = (await sql<{ n: number }>(podA, 'SELECT count(*)::int AS n FROM vecs.docs')) as [{ n: number }];
  assert.equal(n, 196 + 30 + 9);
});

test('CSV into 4 partitions on 2 pods: every row on the partition PostgreSQL routes its id to; indexes rebuilt', async () => {
  const ids = ['', 'ü', '日本語', '😀 emoji', 'comma, inside', 'quote " inside', 'tab\there', ...Array.from({ length: 493 }, (_, i) => `c${i}`)];
  const csvField = (s: string) => `"${s.replace(/"/g, '""')}"`;
  // Columns in the header's order, not the usual one.
  const body = ids.map((id, g) => `"{""g"": ${g}}",${csvField(id)},"${vec(g)}"`).join('\r\n');
  const before = await Promise.all([0, 1, 2, 3].map((r) => vectorIndexes(r % 2 === 0 ? podA : podB, `sh4_p${r}of4`)));
  const r = await run('sh4', `metadata,id,embedding\r\n${body}\r\n`, { format: 'csv', source: 'rows.csv', batchRows: 50 });
  assert.equal(r.badLineCount, 0);
  assert.equal(r.rowsLoaded, ids.length);
  assert.deepEqual(r.tables.map((t) => t.table), ['vecs.sh4_p0of4', 'vecs.sh4_p1of4', 'vecs.sh4_p2of4', 'vecs.sh4_p3of4']);
  assert.ok(r.tables.every((t) => t.rows > 0 && t.indexesRebuilt.length === 1));
  const placed = await placement('sh4', 4);
  const routed = await postgresRouting(ids, 4);
  assert.equal(placed.size, ids.length);
  for (const id of ids) {
    assert.equal(placed.get(id), routed.get(id), `id ${JSON.stringify(id)}`);
    assert.equal(placed.get(id), partitionRemainder(id, 4));
  }
  assert.equal((await check(topology)).healthy, true);
  // The primary finds each row where it looks for it (pruning by id), with the metadata as written.
  for (const id of ids.slice(0, 10)) {
    const rows = await sql<{ g: string }>(dbs.primary, `SELECT metadata->>'g' AS g FROM public.sh4 WHERE id = $1`, [id]);
    assert.deepEqual(rows, [{ g: String(ids.indexOf(id)) }], `id ${JSON.stringify(id)}`);
  }
  assert.deepEqual(await Promise.all([0, 1, 2, 3].map((x) => vectorIndexes(x % 2 === 0 ? podA : podB, `sh4_p${x}of4`))), before);
  assert.deepEqual(await steps(), []);
});

test('2 shards from stdin (a stream of unknown size): rows routed as PostgreSQL routes them', async () => {
  const ids = Array.from({ length: 300 }, (_, i) => (i % 10 === 0 ? `ид-${i}` : `s${i}`));
  async function* stdin() {
    // Pieces of arbitrary sizes, as a pipe delivers them.
    const bytes = Buffer.from(`${ids.map((id, g) => jsonLine(id, g)).join('\n')}\n`);
    for (let i = 0; i < bytes.length; i += 777) yield bytes.subarray(i, i + 777);
  }
  const r = await run('sh2', stdin(), { source: 'stdin' });
  assert.equal(r.rowsLoaded, 300);
  assert.equal(r.source, 'stdin');
  const placed = await placement('sh2', 2);
  const routed = await postgresRouting(ids, 2);
  for (const id of ids) assert.equal(placed.get(id), routed.get(id), `id ${id}`);
  assert.equal((await check(topology)).healthy, true);
});

test('a load that fails midway loads nothing, and the index dropped for it is built again, definition and comment the same', async () => {
  const before = await vectorIndexes(podA, 'fails');
  let during: { indexes: Array<{ name: string }>; steps: string[] } | undefined;
  async function* input() {
    yield Buffer.from(`${Array.from({ length: 100 }, (_, g) => jsonLine(`f${g}`, g)).join('\n')}\n`);
    // The first batches are written by now (batchRows 10). The drop is committed: the plan shows the index missing.
    await sleep(500);
    during = { indexes: await vectorIndexes(podA, 'fails'), steps: await steps() };
    await sql(podA, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vecscale load' AND datname = current_database()`);
    await sleep(100);
    yield Buffer.from(`${Array.from({ length: 100 }, (_, g) => jsonLine(`g${g}`, g)).join('\n')}\n`);
  }
  const e = await failure(run('fails', input(), { batchRows: 10 }));
  assert.equal(e.code, 'connection');
  assert.match(e.message, /^secondary pod_a \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/load_\w+\): /);
  assert.deepEqual(during?.indexes, []);
  assert.ok(during?.steps.some((x) => x.includes(before[0]!.name)), `the plan during the load: ${during?.steps.join('; ')}`);
  assert.deepEqual(await sql(podA, 'SELECT count(*)::int AS n FROM vecs.fails'), [{ n: 0 }]);
  assert.deepEqual(await vectorIndexes(podA, 'fails'), before);
  assert.deepEqual(await steps(), []);
});

test('readers are not blocked by a load into an empty collection; an apply meanwhile makes the index, and the load leaves it', async () => {
  await sql(podA, 'TRUNCATE vecs.fails');
  const before = await vectorIndexes(podA, 'fails');
  let applying: Promise<unknown> | undefined;
  let searchMs = Infinity;
  async function* input() {
    yield Buffer.from(`${Array.from({ length: 50 }, (_, g) => jsonLine(`h${g}`, g)).join('\n')}\n`);
    await sleep(300);
    // A search through the primary answers at once: nothing holds a lock readers wait for.
    const t0 = performance.now();
    await sql(dbs.primary, `SELECT * FROM public.match_fails('${vec(1)}', 3, '{}')`);
    searchMs = performance.now() - t0;
    // apply sees the index missing and builds it (CONCURRENTLY: its catalog entry first, the build after the load).
    applying = apply(file.load(), { approve: async () => true });
    for (let i = 0; i < 100 && (await vectorIndexes(podA, 'fails')).length === 0; i++) await sleep(100);
    yield Buffer.from(`${Array.from({ length: 50 }, (_, g) => jsonLine(`i${g}`, g)).join('\n')}\n`);
  }
  const r = await run('fails', input(), { batchRows: 10 });
  await applying;
  assert.ok(searchMs < 5000, `search took ${searchMs} ms`);
  assert.equal(r.rowsLoaded, 100);
  assert.deepEqual(r.tables[0]!.indexesRebuilt, [], 'apply had made it already');
  assert.deepEqual(await vectorIndexes(podA, 'fails'), before);
  assert.deepEqual(await steps(), []);
});

test("a load's ANALYZE skips a table an index build holds (waiting deadlocked with CREATE INDEX CONCURRENTLY's last phase)", async () => {
  // An apply's CREATE INDEX CONCURRENTLY holds SHARE UPDATE EXCLUSIVE on the table for the whole build; so does this.
  const builder = new pg.Client({ connectionString: podB });
  await builder.connect();
  try {
    await builder.query('BEGIN');
    await builder.query('LOCK TABLE vecs.flat IN SHARE UPDATE EXCLUSIVE MODE');
    const loading = run('flat', `${Array.from({ length: 5 }, (_, g) => jsonLine(`skip${g}`, g)).join('\n')}\n`);
    // A generous bound on a hang: before, the ANALYZE waited for the lock until the 30 s statement timeout.
    const r = await Promise.race([loading, sleep(15_000).then(() => 'waited' as const)]);
    assert.notEqual(r, 'waited', 'the load waited for the lock the index build holds');
    assert.equal((r as LoadReport).rowsLoaded, 5);
  } finally {
    await builder.query('ROLLBACK').catch(() => undefined);
    await builder.end();
  }
  const [{ n }] = (await sql<{ n: string }>(podB, `SELECT count(*) AS n FROM vecs.flat WHERE id LIKE 'skip%'`)) as [{ n: string }];
  assert.equal(Number(n), 5, 'the rows are committed');
});

test('errors: unknown collection, unreadable CSV header, unreachable pod, wrong password, collection not applied', async () => {
  const unknown = await failure(run('nope', '{}\n'));
  assert.equal(unknown.code, 'config');
  assert.match(unknown.message, /no collection "nope"/);
  const header = await failure(run('flat', 'id,vector\na,"[1,2,3]"\n', { format: 'csv', source: 'x.csv' }));
  assert.equal(header.code, 'config');
  assert.match(header.message, /^x\.csv: line 1: column 2 of the header is "vector"/);

  const withPod = (url: string): Topology => ({ ...topology, secondaries: topology.secondaries.map((s) => (s.name === 'pod_b' ? { ...s, url } : s)) });
  const b = new URL(topology.secondaries.find((s) => s.name === 'pod_b')!.url);
  const refused = new URL(b);
  refused.port = '1';
  const down = await failure(run('flat', '{}\n', {}, withPod(refused.toString())));
  assert.equal(down.code, 'connection');
  assert.match(down.message, /^cannot connect to secondary pod_b \(postgres:\/\/postgres@127\.0\.0\.1:1\/[^)]+\): connection refused/);
  const wrong = new URL(b);
  wrong.password = 'not-the-password-canary';
  const denied = await failure(run('sh2', '{}\n', {}, withPod(wrong.toString())));
  assert.equal(denied.code, 'connection');
  assert.match(denied.message, /secondary pod_b .*password authentication failed/);
  assert.doesNotMatch(`${denied.message} ${JSON.stringify(denied.meta)}`, /not-the-password-canary/);
  // A collection in the topology that apply has not made.
  const ahead: Topology = { ...topology, collections: [...topology.collections, { ...topology.collections[1]!, name: 'later' }] };
  const missing = await failure(run('later', '{}\n', {}, ahead));
  assert.equal(missing.code, 'precondition');
  assert.match(missing.message, /secondary pod_b .* has no table vecs\.later: the collection is not applied there/);
  assert.match(missing.hint ?? '', /vecscale apply/);
});

// The CLI, when this tree's build has the command (bin/vecscale runs dist/, and main.ts registers `load`).
const cliBuilt =
  existsSync(join(ROOT, 'dist', 'cli', 'commands', 'load.js')) && /command\('load'\)/.test(readFileSync(join(ROOT, 'dist', 'cli', 'main.js'), 'utf8'));

test('CLI: exit 0, 2 with the bad lines in --json, stdin, 6 for an unknown collection, 1 for an unreachable pod', { skip: !cliBuilt && 'dist/ has no `load` command (build with main.patch applied)' }, async () => {
  const env = file.env;
  const path = join(file.dir, 'flat.jsonl');
  writeFileSync(path, `${jsonLine('cli1', 1)}\n${jsonLine('cli2', 2)}\n`);
  const ok = await vecscale(['load', 'flat', path, '-f', file.path], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /Loaded 2 rows into flat \(pod_b: vecs\.flat\)/);

  writeFileSync(path, `${jsonLine('cli3', 3)}\n{"id": "cli4", "embedding": [1]}\nnot json\n`);
  const some = await vecscale(['load', 'flat', path, '-f', file.path, '--json'], { env });
  assert.equal(some.code, 2, some.stderr);
  const doc = JSON.parse(some.stdout) as LoadReport & { status: string };
  assert.equal(doc.status, 'loaded_with_bad_lines');
  assert.equal(doc.rowsLoaded, 1);
  assert.deepEqual(doc.badLines.map((b) => b.line), [2, 3]);
  assert.ok(doc.rowsPerSecond >= 0);

  const piped = await vecscale(['load', 'flat', '-', '-f', file.path, '--json'], { env, input: `${jsonLine('cli5', 5)}\n` });
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal((JSON.parse(piped.stdout) as LoadReport).source, 'stdin');

  const csv = join(file.dir, 'rows.csv');
  writeFileSync(csv, `id,embedding\ncli6,"[1,2,3]"\n`);
  const fromCsv = await vecscale(['load', 'flat', csv, '-f', file.path], { env });
  assert.equal(fromCsv.code, 0, fromCsv.stderr);
  assert.deepEqual(await sql(podB, `SELECT id FROM vecs.flat WHERE id LIKE 'cli%' ORDER BY id`), ['cli1', 'cli2', 'cli3', 'cli5', 'cli6'].map((id) => ({ id })));

  const unknown = await vecscale(['load', 'nope', path, '-f', file.path], { env });
  assert.equal(unknown.code, 6);
  assert.match(unknown.stderr, /no collection "nope"/);
  const noFile = await vecscale(['load', 'flat', join(file.dir, 'missing.jsonl'), '-f', file.path], { env });
  assert.equal(noFile.code, 6);
  assert.match(noFile.stderr, /cannot read .*missing\.jsonl: no such file/);
  const noFormat = await vecscale(['load', 'flat', join(file.dir, 'rows.txt'), '-f', file.path], { env });
  assert.equal(noFormat.code, 6);
  assert.match(noFormat.stderr, /cannot tell the format/);

  // pod_b unreachable: its port closed. The message names it, shows no password and no stack trace.
  const broken = join(file.dir, 'broken.yaml');
  writeFileSync(broken, readFileSync(file.path, 'utf8').replace(/(pod_b:\n\s+url: postgres:\/\/[^@]+@[^:]+:)\d+/, '$11'));
  const down = await vecscale(['load', 'flat', path, '-f', broken], { env });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /cannot connect to secondary pod_b \(postgres:\/\/postgres@127\.0\.0\.1:1\/.*connection refused/);
  assert.doesNotMatch(down.stderr, /\n\s+at /);
  for (const secret of Object.values(env)) assert.ok(!down.stderr.includes(secret) && !down.stdout.includes(secret), 'no password printed');
});

test("an index vecscale did not make is never dropped for a load (apply could not make it again): it is kept, and said so", async () => {
  await sql(podB, 'TRUNCATE vecs.flat');
  await sql(podB, 'CREATE INDEX my_l2 ON vecs.flat USING hnsw (vec vector_l2_ops) WITH (m = 32)');
  try {
    const report = await run('flat', `${jsonLine('k1', 1)}\n${jsonLine('k2', 2)}\n`);
    assert.equal(report.rowsLoaded, 2);
    assert.match(report.tables[0]!.indexKept ?? '', /my_l2 is not vecscale's/);
    assert.deepEqual(report.tables[0]!.indexesRebuilt, []);
    assert.deepEqual((await vectorIndexes(podB, 'flat')).map((i) => i.name), ['my_l2'], 'the index is still there');
    const stats = await sql<{ n: number }>(podB, "SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = 'vecs' AND tablename = 'flat'");
    assert.ok(stats[0]!.n > 0, 'the loaded table was analyzed');
  } finally {
    await sql(podB, 'DROP INDEX vecs.my_l2');
    await sql(podB, 'TRUNCATE vecs.flat');
  }
});
