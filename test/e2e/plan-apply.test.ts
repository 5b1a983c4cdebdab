/**
 * End to end: the real CLI on topology files over the test clusters — exit codes, approval, JSON, bad input,
 * unreachable databases, wrong passwords, and a canary password that must appear in no output.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile, type TopologyFile } from '../topology-files.js';

const CANARY = 'Canary-7f3a9c@pw/x';
const COLLECTIONS = `  docs:
    secondary: pod_a
    dimension: 3
    columns: { url: text }
  notes:
    secondary: pod_b
    dimension: 3
    metric: inner_product
    index: { method: none }
`;

const outputs: CliResult[] = [];
// Per-file setup at the top level: cleanup registered with after() then runs when the file ends.
const dbs = await freshDatabases('e2e');
const file: TopologyFile = topologyFile(dbs, COLLECTIONS);

async function run(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await vecscale(args, { env: { ...file.env, ...env } });
  outputs.push(r);
  return r;
}

const noStack = (r: CliResult) => assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/);

{
  // pod_a is reached as a role with a canary password: it must never show up anywhere.
  const podA = Object.values(dbs.secondaries)[0]!;
  await sql(podA, `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vs_canary') THEN CREATE ROLE vs_canary LOGIN SUPERUSER; END IF; END $$`);
  await sql(podA, `ALTER ROLE vs_canary PASSWORD '${CANARY.replace(/'/g, "''")}'`);
  const text = readFileSync(file.path, 'utf8').replace(/(pod_a:\n\s+url: postgres:\/\/)postgres:\$\{VS_POD_A_PW\}/, '$1vs_canary:${VS_POD_A_PW}');
  writeFileSync(file.path, text);
  file.env.VS_POD_A_PW = CANARY;
}

test('plan --detailed-exitcode exits 2 with changes pending; --json is one document on stdout', async () => {
  const r = await run(['plan', file.path, '--detailed-exitcode', '--json']);
  assert.equal(r.code, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { changes: boolean; databases: Array<{ database: string; steps: unknown[] }> };
  assert.equal(doc.changes, true);
  assert.deepEqual(doc.databases.map((d) => d.database), ['pod_a', 'pod_b', 'primary']);
  assert.match(r.stderr, /^secondary pod_a {2}postgres:\/\/vs_canary@127\.0\.0\.1:\d+\/e2e_/m);
  assert.match(r.stderr, /^ {2}\+ table vecs\.docs$/m);
  assert.match(r.stderr, /Plan: \d+ to create, 0 to change, 0 to replace, 0 to drop\./);
});

test('the plan is byte-identical from run to run', async () => {
  const a = await run(['plan', file.path]);
  const b = await run(['plan', file.path]);
  assert.equal(a.code, 0);
  assert.equal(a.stderr, b.stderr);
});

test('apply without a terminal and without --auto-approve exits 7 and applies nothing', async () => {
  const r = await run(['apply', file.path]);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, /--auto-approve/);
  const [row] = await sql(dbs.primary, `SELECT count(*)::int AS n FROM pg_foreign_server`);
  assert.equal(row!.n, 0);
});

test('apply --auto-approve converges; plan --detailed-exitcode then exits 0 with "No changes."', async () => {
  const r = await run(['apply', file.path, '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Apply complete: \d+ created/);
  const p = await run(['plan', file.path, '--detailed-exitcode']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stderr, /No changes\./);
  const again = await run(['apply', file.path, '--auto-approve']);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /No changes\./);
});

test('validate checks the file only', async () => {
  const r = await run(['validate', file.path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /is valid: 2 secondaries, 2 collections/);
});

test('every invalid fixture exits 6 with a located message and touches no database', async () => {
  const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'invalid');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    const r = await run(['plan', join(dir, f)], { PRIMARY_PORT: '1' });
    assert.equal(r.code, 6, `${f}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${f.replace('.', '\\.')}:\\d+:\\d+: `), f);
    noStack(r);
  }
});

test('a missing file exits 6', async () => {
  const r = await run(['plan', '/nonexistent/topology.yaml']);
  assert.equal(r.code, 6);
  noStack(r);
});

test('an unreachable secondary exits 1 naming it; nothing is applied anywhere', async () => {
  const text = readFileSync(file.path, 'utf8');
  const broken = join(file.dir, 'unreachable.yaml');
  writeFileSync(broken, text.replace(/(pod_b:\n\s+url: postgres:\/\/[^@]+@127\.0\.0\.1:)\d+/, '$11'));
  const r = await run(['apply', broken, '--auto-approve']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to secondary pod_b \(postgres:\/\/postgres@127\.0\.0\.1:1\/e2e_\w+\): connection refused/);
  noStack(r);
});

test('a wrong password exits 1 with a plain message and without the password', async () => {
  const r = await run(['plan', file.path, '--json'], { VS_POD_A_PW: 'wrong-Canary-pw' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot connect to secondary pod_a .*password authentication failed/);
  assert.ok(!(r.stderr + r.stdout).includes('wrong-Canary-pw'));
  assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'connection');
  noStack(r);
});

test('the canary password appears in no output of any command above', () => {
  assert.ok(outputs.length >= 10);
  for (const r of outputs) {
    for (const s of [CANARY, encodeURIComponent(CANARY)]) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), 'canary leaked');
    }
  }
});

test('vecscale query and explain: results, and bad input exits 6 with the reason', async () => {
  const ok = await run(['query', 'docs', '-f', file.path, '--vector', '[1,0,0]', '--limit', '2', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const doc = JSON.parse(ok.stdout) as { via: string; rows: unknown[] };
  assert.equal(doc.via, 'primary');
  const direct = await run(['query', 'docs', '-f', file.path, '--vector', '[1,0,0]', '--direct']);
  assert.equal(direct.code, 0, direct.stderr);
  assert.match(direct.stderr, /via secondary pod_a \(direct\)/);
  const bad: Array<[string[], RegExp]> = [
    [['query', 'dcos', '-f', file.path, '--vector', '[1,0,0]'], /no collection "dcos" .*did you mean "docs"/],
    [['query', 'docs', '-f', file.path, '--vector', '[1,0]'], /the query vector has 2 dimensions; collection docs has 3/],
    [['query', 'docs', '-f', file.path, '--vector', 'nope'], /--vector must be a non-empty list of finite numbers/],
    [['query', 'docs', '-f', file.path, '--vector', '[1,0,0]', '--filter', '{"url": {"$like": "x"}}'], /unknown operator "\$like" for key "url"/],
    [['query', 'docs', '-f', file.path, '--vector', '[1,0,0]', '--filter', '{oops'], /--filter is not valid JSON/],
    [['query', 'docs', '-f', file.path], /a query vector is needed/],
  ];
  for (const [args, message] of bad) {
    const r = await run(args);
    assert.equal(r.code, 6, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    noStack(r);
  }
  const explain = await run(['explain', 'docs', '-f', file.path]);
  assert.equal(explain.code, 0, explain.stderr);
  assert.match(explain.stderr, /✓ no filter {3}✓ ORDER BY distance {3}✓ LIMIT/);
});

test('vecscale explain exits 1 when the API view path stops shipping ORDER BY/LIMIT (extensions dropped by hand); apply repairs it', async () => {
  await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (DROP extensions)`);
  const broken = await run(['explain', 'docs', '-f', file.path]);
  assert.equal(broken.code, 1, broken.stderr);
  assert.match(broken.stderr, /✗ ORDER BY distance/);
  const repaired = await run(['apply', file.path, '--auto-approve']);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stderr, /~ server pod_a/);
  const vectorFile = join(file.dir, 'q.json');
  writeFileSync(vectorFile, '[0, 1, 0]\n');
  const ok = await run(['explain', 'docs', '-f', file.path, '--vector-file', vectorFile]);
  assert.equal(ok.code, 0, ok.stderr);
  const q = await run(['query', 'docs', '-f', file.path, '--vector-file', vectorFile, '--json']);
  assert.equal(q.code, 0, q.stderr);
});
