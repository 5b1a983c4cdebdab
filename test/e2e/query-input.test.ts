/**
 * The real CLI on query input the database would refuse or answer with NaN: filters with numbers out of range,
 * strings jsonb cannot hold, nesting too deep; zero (or underflowing) cosine query vectors; numbers beyond single
 * precision. Each is exit 6 with a plain message, on every path (match_<c>, --direct, explain), and no stack trace.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const COLLECTIONS = `  docs:
    secondary: pod_a
    dimension: 3
    metric: cosine
    columns: { year: integer }
  flat:
    secondary: pod_b
    dimension: 3
    metric: l2
`;
const dbs = await freshDatabases('e2e_qinput');
const file = topologyFile(dbs, COLLECTIONS);
const run = (args: string[]): Promise<CliResult> => vecscale(args, { env: file.env });
const noStack = (r: CliResult) => assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/);

const query = (collection: string, vector: string, filter?: string, ...more: string[]) =>
  ['query', collection, '-f', file.path, '--vector', vector, ...(filter === undefined ? [] : ['--filter', filter]), ...more];

async function refused(args: string[], message: RegExp): Promise<void> {
  const r = await run(args);
  assert.equal(r.code, 6, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message, args.join(' '));
  noStack(r);
}

test('setup: apply, then rows', async () => {
  const r = await run(['apply', file.path, '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  await sql(dbs.primary, `INSERT INTO public.docs (id, embedding, metadata) SELECT 'd' || g, ('[' || g || ',1,0]')::vector, jsonb_build_object('year', 2000 + g) FROM generate_series(1, 20) g`);
  await sql(dbs.primary, `INSERT INTO public.flat (id, embedding, metadata) VALUES ('f1', '[0,0,0]', '{}')`);
});

test('a filter number the database cannot hold (1e999999 overflows numeric) is exit 6 on every path', async () => {
  const outOfRange = /--filter: the number 1e999999 is out of range: numbers must be 0 or between 1e-307 and 1e308 in magnitude/;
  const filter = '{"year": {"$gt": 1e999999}}';
  await refused(query('docs', '[1,0,0]', filter), outOfRange);
  await refused(query('docs', '[1,0,0]', filter, '--direct'), outOfRange);
  await refused(['explain', 'docs', '-f', file.path, '--filter', filter], outOfRange);
  const json = await run(query('docs', '[1,0,0]', filter, '--json'));
  assert.equal(json.code, 6);
  assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'config');
  for (const n of ['-1e999999', '1e-999999', '1e308', '-1e308', '9.9e-308', `1${'0'.repeat(400)}`]) {
    await refused(query('docs', '[1,0,0]', `{"year": {"$gt": ${n}}}`), /is out of range: numbers must be 0 or between 1e-307 and 1e308/);
  }
  // In range, but not a numeric PostgreSQL holds (more than 16383 digits after the point).
  for (const n of ['0e-999999', `1.${'0'.repeat(16384)}`, `0.${'0'.repeat(16380)}e-4`]) {
    await refused(query('docs', '[1,0,0]', `{"year": {"$gt": ${n}}}`), /overflows PostgreSQL's numeric \(at most 16383 digits after the decimal point\)/);
  }
});

test('numbers at the edges of the range, and zero however written, are accepted', async () => {
  for (const n of ['1e307', '-9.99e307', '1e-307', '0.00001e-302', '0e999999', '-0.0', `1.${'0'.repeat(16383)}`, `0.${'0'.repeat(16380)}e-3`, '2010']) {
    const r = await run(query('docs', '[1,0,0]', `{"year": {"$gt": ${n}}}`, '--json'));
    assert.equal(r.code, 0, `${n}: ${r.stderr}`);
  }
  const r = await run(query('docs', '[1,0,0]', '{"year": {"$gt": 2010}}', '--json'));
  assert.equal((JSON.parse(r.stdout) as { rows: unknown[] }).rows.length, 10);
});

test('strings jsonb cannot hold, nesting too deep, too many operators, and what the compiler refuses: exit 6', async () => {
  await refused(query('docs', '[1,0,0]', '{"year": {"$eq": "a\\u0000b"}}'), /--filter: the string .* holds \\u0000 or a lone surrogate/);
  await refused(query('docs', '[1,0,0]', '{"year": {"$eq": "\\ud800"}}'), /holds \\u0000 or a lone surrogate/);
  await refused(query('docs', '[1,0,0]', `{"year": {"$eq": ${'['.repeat(20000)}${']'.repeat(20000)}}}`), /--filter is nested deeper than 256 levels/);
  const many = `{"$and": [${Array.from({ length: 300 }, (_, i) => `{"k${i}": {"$eq": ${i}}}`).join(', ')}]}`;
  await refused(query('docs', '[1,0,0]', many), /--filter has more than 256 operators/);
  await refused(query('docs', '[1,0,0]', '{"year": {"$between": [1, 2]}}'), /unknown operator "\$between" for key "year"/);
  await refused(query('docs', '[1,0,0]', '{"year": {"$gt": 1}, "x": {"$eq": 2}}'), /max 1 entry per filter/);
  await refused(query('docs', '[1,0,0]', '[1]'), /--filter must be a JSON object/);
});

test('a zero query vector with cosine is exit 6 with a clear message, on every path; with l2 it is a fine query', async () => {
  const zero = /error: a zero vector has no cosine distance\n/;
  await refused(query('docs', '[0,0,0]'), zero);
  await refused(query('docs', '[0,-0,0]', undefined, '--direct'), zero);
  await refused(['explain', 'docs', '-f', file.path, '--vector', '[0,0,0]'], zero);
  // Every square underflows in single precision: pgvector's length is 0, its cosine distance NaN.
  await refused(query('docs', '[1e-25,0,0]'), /a zero vector has no cosine distance \(every component squared is 0 in single precision/);
  const tiny = await run(query('docs', '[1e-15,0,0]', undefined, '--json'));
  assert.equal(tiny.code, 0, tiny.stderr);
  const l2 = await run(query('flat', '[0,0,0]', undefined, '--json'));
  assert.equal(l2.code, 0, l2.stderr);
  assert.deepEqual((JSON.parse(l2.stdout) as { rows: Array<{ id: string }> }).rows.map((r) => r.id), ['f1']);
});

test('a query vector number beyond single precision is exit 6', async () => {
  await refused(query('docs', '[1e39,0,1]'), /the query vector's number 1e\+39 \(position 1\) does not fit pgvector's single precision/);
});

test('a --vector-file that never ends, blocks, is no file or is too large: exit 6 at once, naming the flag', async () => {
  const fifo = join(file.dir, 'vector.fifo');
  execFileSync('mkfifo', [fifo]);
  const big = join(file.dir, 'big.json');
  writeFileSync(big, '');
  truncateSync(big, 5 * 1024 * 1024); // sparse
  const vectorFile = (path: string) => ['query', 'docs', '-f', file.path, '--vector-file', path];
  const started = Date.now();
  await refused(vectorFile('/dev/zero'), /--vector-file \/dev\/zero: cannot read it: it is a character device, not a regular file/);
  await refused(vectorFile(fifo), /vector\.fifo: cannot read it: it is a named pipe \(FIFO\), not a regular file/);
  await refused(vectorFile(file.dir), /cannot read it: it is a directory, not a regular file/);
  await refused(vectorFile(big), /big\.json: cannot read it: it is larger than 4 MiB, the most vecscale reads/);
  await refused(vectorFile(join(file.dir, 'missing.json')), /missing\.json: cannot read it: no such file/);
  // A generous bound on a hang: before the fix, /dev/zero was read until memory ran out.
  assert.ok(Date.now() - started < 60_000, 'each refused at once');
  const good = join(file.dir, 'vector.json');
  writeFileSync(good, '[1, 0, 0]\n');
  const r = await run([...vectorFile(good), '--json']);
  assert.equal(r.code, 0, r.stderr);
});
