/**
 * The real CLI: every way `vecscale explain` ends — one secondary and sharded, filtered, --json, the failing path
 * (exit 1) and bad input (exit 6) — ends each stream it writes to with a newline, and prints no empty last line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('e2e_explain');
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
    columns: { year: integer }
  images:
    shards: [pod_a, pod_b]
    dimension: 3
`);
const run = (args: string[]): Promise<CliResult> => vecscale([...args, '-f', file.path], { env: file.env });

function endsWithNewline(r: CliResult, what: string): void {
  assert.ok(r.stderr.length > 0, `${what}: nothing on stderr`);
  for (const [name, text] of [['stderr', r.stderr], ['stdout', r.stdout]] as const) {
    if (text.length === 0) continue;
    assert.ok(text.endsWith('\n'), `${what}: ${name} ends without a newline: ${JSON.stringify(text.slice(-80))}`);
    assert.ok(!text.endsWith('\n\n'), `${what}: ${name} ends with an empty line`);
  }
}

test('setup: apply', async () => {
  const r = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(r.code, 0, r.stderr);
});

test('explain ends its output with a newline, on every path', async () => {
  const cases: Array<[string[], number]> = [
    [['explain', 'docs'], 0],
    [['explain', 'docs', '--filter', '{"year": {"$gt": 2000}}'], 0],
    [['explain', 'docs', '--json'], 0],
    [['explain', 'images'], 0],
    [['explain', 'images', '--filter', '{"g": {"$eq": 1}}', '--json'], 0],
    [['explain', 'docs', '--filter', '{"year": {"$nope": 1}}'], 6],
    [['explain', 'docs', '--vector', '[1,0]'], 6],
    [['explain', 'nope'], 6],
  ];
  for (const [args, code] of cases) {
    const r = await run(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    endsWithNewline(r, args.join(' '));
  }
});

test('explain that fails (ORDER BY stays on the primary) ends with a newline too', async () => {
  await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (DROP extensions)`);
  for (const args of [['explain', 'docs'], ['explain', 'docs', '--json']]) {
    const r = await run(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /✗ ORDER BY distance/);
    endsWithNewline(r, args.join(' '));
  }
});
