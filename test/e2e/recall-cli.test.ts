/**
 * `vecscale recall` through the real CLI: the --json document, the table, --min-recall as a CI gate (exit 2), a query
 * file, and every refusal — bad flags, the other index kind's setting, an unknown collection, a bad query file
 * (exit 6), an unreachable database (exit 1) — as a plain message, no stack trace, no password.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('e2e_recall');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(dbs, `  flat:
    secondary: pod_a
    dimension: 8
    metric: l2
    index: { method: none }
  graph:
    secondary: pod_a
    dimension: 32
    index: { method: hnsw, m: 4, ef_construction: 8 }
  ivf:
    secondary: pod_b
    dimension: 8
    index: { method: ivfflat, lists: 4 }
`);
const run = (args: string[], env: Record<string, string> = file.env): Promise<CliResult> => vecscale(args, { env });
const recall = (collection: string, ...more: string[]) => ['recall', collection, '-f', file.path, ...more];
const noStack = (r: CliResult) => assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/, 'no stack trace');

async function refused(args: string[], message: RegExp, code = 6): Promise<CliResult> {
  const r = await run(args);
  assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, message, args.join(' '));
  noStack(r);
  return r;
}

// Rows straight into the pod tables, random in SQL with a fixed seed.
const fill = (table: string, n: number, dim: number) =>
  `SELECT setseed(0.5); INSERT INTO vecs.${table} (id, vec, metadata)
   SELECT '${table}-' || g, (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, ${dim}) d WHERE g > 0)::real[]::vector, '{}' FROM generate_series(1, ${n}) g`;

test('setup: apply, then rows', async () => {
  const r = await run(['apply', file.path, '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  await sql(podA, fill('flat', 300, 8));
  await sql(podA, fill('graph', 2000, 32));
  await sql(podB, fill('ivf', 1000, 8));
  await sql(podB, 'REINDEX TABLE vecs.ivf'); // lists from rows, not from an empty table
});

test('--json: one document with the figures per setting', async () => {
  const r = await run(recall('graph', '--json', '--queries', '40', '--k', '10', '--ef-search', '10,200'));
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as Record<string, unknown> & { settings: Array<Record<string, unknown> & { recall: { mean: number; min: number }; latencyMs: { p50: number; p95: number } }> };
  assert.deepEqual([doc.collection, doc.index, doc.metric, doc.k, doc.source], ['graph', 'hnsw', 'cosine', 10, 'sample']);
  assert.deepEqual(doc.settings.map((s) => [s.name, s.value, s.effective, s.queries]), [['ef_search', 10, 10, 40], ['ef_search', 200, 200, 40]]);
  for (const s of doc.settings) {
    assert.ok(s.recall.min >= 0 && s.recall.min <= s.recall.mean && s.recall.mean <= 1, `recall ${JSON.stringify(s.recall)}`);
    assert.ok(s.latencyMs.p50 > 0 && s.latencyMs.p95 >= s.latencyMs.p50, `latency ${JSON.stringify(s.latencyMs)}`);
  }
  assert.ok(doc.settings[0]!.recall.mean < doc.settings[1]!.recall.mean, `recall rises with ef_search: ${JSON.stringify(doc.settings.map((s) => s.recall))}`);
});

test('IVFFlat: --probes; probing all 4 lists is exact', async () => {
  const r = await run(recall('ivf', '--json', '--queries', '30', '--probes', '1,4'));
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { settings: Array<{ name: string; value: number; recall: { mean: number } }> };
  assert.deepEqual(doc.settings.map((s) => [s.name, s.value]), [['probes', 1], ['probes', 4]]);
  assert.equal(doc.settings[1]!.recall.mean, 1, `probes 4 of 4 lists: ${JSON.stringify(doc.settings)}`);
  assert.ok(doc.settings[0]!.recall.mean <= 1, 'probes 1');
});

test('the table on stdout, the summary on stderr; no index measures 1.000', async () => {
  const r = await run(recall('flat', '--queries', '30'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^setting\s+recall@10 mean\s+min\s+p50 ms\s+p95 ms\s+queries\n-+/);
  assert.match(r.stdout, /\nexact \(no index\)\s+1\.000\s+1\.000\s+\d+\.\d\d\s+\d+\.\d\d\s+30\n$/);
  assert.match(r.stderr, /flat \(none, l2\): 30 stored vectors as queries/);
});

test('--min-recall: exit 2 when a setting is below it, naming it; 0 when all reach it', async () => {
  const low = await run(recall('graph', '--queries', '40', '--ef-search', '10,200', '--min-recall', '0.999'));
  assert.equal(low.code, 2, low.stderr);
  assert.match(low.stderr, /recall below --min-recall 0\.999: ef_search 10 0\.\d{3}/);
  const json = await run(recall('graph', '--queries', '40', '--ef-search', '10', '--min-recall', '0.999', '--json'));
  assert.equal(json.code, 2, json.stderr);
  assert.deepEqual(((d) => [d.minRecall, d.ok])(JSON.parse(json.stdout) as { minRecall: number; ok: boolean }), [0.999, false]);
  const ok = await run(recall('flat', '--queries', '20', '--min-recall', '1'));
  assert.equal(ok.code, 0, ok.stderr);
});

test('a query file: JSON lines or an array of arrays; a wrong dimension is exit 6 naming the line', async () => {
  const lines = join(file.dir, 'q.jsonl');
  writeFileSync(lines, '[1,0,0,0,0,0,0,0]\n[0,1,0,0,0,0,0,0]\n');
  const r = await run(recall('flat', '--query-file', lines, '--json'));
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { source: string; settings: Array<{ queries: number; recall: { mean: number } }> };
  assert.deepEqual([doc.source, doc.settings[0]!.queries, doc.settings[0]!.recall.mean], ['given', 2, 1]);
  const bad = join(file.dir, 'bad.jsonl');
  writeFileSync(bad, '[1,0,0,0,0,0,0,0]\n[1,2,3]\n');
  await refused(recall('flat', '--query-file', bad), /--query-file .*bad\.jsonl: line 2 has 3 dimensions; the collection has 8/);
  const array = join(file.dir, 'bad.json');
  writeFileSync(array, '[[1,0,0,0,0,0,0,0], [1,0,0,0,0,0,0,"x"]]');
  await refused(recall('flat', '--query-file', array), /bad\.json: vector 2 must hold finite numbers only/);
  const zero = join(file.dir, 'zero.jsonl');
  writeFileSync(zero, '[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]\n');
  await refused(recall('graph', '--query-file', zero), /zero\.jsonl: line 1: a zero vector has no cosine distance/);
  await refused(recall('flat', '--query-file', join(file.dir, 'missing.jsonl')), /--query-file .*missing\.jsonl: cannot read it: no such file/);
});

test('a query file that never ends, blocks or is no file at all: exit 6 at once, memory bounded', async () => {
  const fifo = join(file.dir, 'queries.fifo');
  execFileSync('mkfifo', [fifo]);
  const cases: Array<[string, RegExp]> = [
    ['/dev/zero', /--query-file \/dev\/zero: cannot read it: it is a character device, not a regular file/],
    [fifo, /queries\.fifo: cannot read it: it is a named pipe \(FIFO\), not a regular file/],
    [file.dir, /cannot read it: it is a directory, not a regular file/],
  ];
  for (const [path, message] of cases) {
    const started = Date.now();
    const r = await refused(recall('flat', '--query-file', path), message);
    assert.doesNotMatch(r.stderr, /hint:/, 'the size hint is for files too large only');
    // A generous bound on a hang: before the fix, /dev/zero was read until memory ran out.
    assert.ok(Date.now() - started < 20_000, `${path}: refused at once`);
  }
  const big = join(file.dir, 'big.jsonl');
  writeFileSync(big, '');
  truncateSync(big, 129 * 1024 * 1024); // sparse: 129 MiB of NUL bytes, no disk used
  const tooBig = await refused(recall('flat', '--query-file', big), /big\.jsonl: cannot read it: it is larger than 128 MiB, the most vecscale reads/);
  assert.match(tooBig.stderr, /hint: give fewer query vectors/);
});

test('bad flags, the other index kind\'s setting, an unknown collection: exit 6, plain', async () => {
  // Each names the flag it was given to.
  await refused(recall('graph', '--k', '0'), /--k: expected a whole number 1–1000, got "0"/);
  await refused(recall('graph', '--queries', '10001'), /--queries: expected a whole number 1–10000, got "10001"/);
  await refused(recall('graph', '--ef-search', '10,abc'), /--ef-search: expected a whole number 1–1000, got "abc"/);
  await refused(recall('graph', '--ef-search', '1001'), /--ef-search: expected a whole number 1–1000, got "1001"/);
  await refused(recall('graph', '--ef-search', '10,'), /--ef-search: expected whole numbers 1–1000 separated by commas/);
  await refused(recall('ivf', '--probes', '0'), /--probes: expected a whole number 1–32768, got "0"/);
  await refused(recall('graph', '--min-recall', '1.5'), /--min-recall: expected a number 0–1, got "1.5"/);
  await refused(recall('ivf', '--ef-search', '10'), /--ef-search applies to hnsw indexes; collection ivf has index method ivfflat/);
  await refused(recall('graph', '--probes', '10'), /--probes applies to ivfflat indexes; collection graph has index method hnsw/);
  const unknown = await refused(recall('grahp'), /no collection "grahp" in .*\(did you mean "graph"\?\)/);
  assert.doesNotMatch(unknown.stderr, /Error: .*\n\s+at /);
});

test('an unreachable database: exit 1, a plain message naming it, no password', async () => {
  const password = 'recall-secret-pw';
  const dead = join(file.dir, 'dead.yaml');
  writeFileSync(dead, `version: 1
primary:
  url: postgres://postgres:\${DEAD_PW}@127.0.0.1:1/nowhere
secondaries:
  pod_a:
    url: postgres://postgres:\${DEAD_PW}@127.0.0.1:2/nowhere
collections:
  flat:
    secondary: pod_a
    dimension: 8
`);
  for (const json of [[], ['--json']]) {
    const r = await run(['recall', 'flat', '-f', dead, '--connect-timeout', '2', ...json], { DEAD_PW: password });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot connect to secondary pod_a \(postgres:\/\/postgres@127\.0\.0\.1:2\/nowhere\): connection refused/);
    assert.ok(!(r.stderr + r.stdout).includes(password), 'no password in any output');
    noStack(r);
  }
});
