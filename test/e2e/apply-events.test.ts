/**
 * `apply --json`: newline-delimited events on stdout, each one line of JSON with a type and a time, each valid against
 * templates/plan.schema.json (applyEvent): the plan first, every step started and finished, the summary last; and
 * a failure is an event line too.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { vecscale } from '../cli.js';
import { freshDatabases, ROOT } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('e2e_events');
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
    columns: { url: text }
  imgs:
    shards: [pod_a, pod_b]
    dimension: 3
`);
const run = (args: string[]) => vecscale(args, { env: file.env });
const ajv = new Ajv2020({ allErrors: true, strict: true });
const schema = JSON.parse(readFileSync(join(ROOT, 'templates', 'plan.schema.json'), 'utf8')) as object;
const validate = ajv.compile(schema);

type Event = { type: string; time: string; [k: string]: unknown };
function events(stdout: string): Event[] {
  const lines = stdout.split('\n').filter((l) => l !== '');
  return lines.map((l, i) => {
    const e = JSON.parse(l) as Event;
    assert.ok(validate(e), `line ${i + 1} (${e.type}): ${ajv.errorsText(validate.errors)}`);
    return e;
  });
}

test('a first apply streams plan, database-started, step-started/-finished for every step, summary', async () => {
  const r = await run(['apply', file.path, '--auto-approve', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const es = events(r.stdout);
  assert.equal(es[0]!.type, 'plan');
  assert.equal(es.at(-1)!.type, 'summary');
  assert.equal(es.at(-1)!.status, 'applied');
  const plan = es[0]!.plan as { databases: Array<{ database: string; steps: Array<{ id: string }> }> };
  const ids = plan.databases.flatMap((d) => d.steps.map((s) => s.id));
  const started = es.filter((e) => e.type === 'step-started').map((e) => e.step);
  const finished = es.filter((e) => e.type === 'step-finished').map((e) => e.step);
  assert.deepEqual([...started].sort(), [...ids].sort());
  assert.deepEqual([...finished].sort(), [...ids].sort());
  assert.deepEqual(es.filter((e) => e.type === 'database-started').map((e) => e.database), plan.databases.map((d) => d.database));
  // Times never go backwards.
  const times = es.map((e) => Date.parse(e.time));
  assert.deepEqual(times, [...times].sort((a, b) => a - b));
  // Converged: the plan and a summary with no_changes.
  const again = events((await run(['apply', file.path, '--auto-approve', '--json'])).stdout);
  assert.deepEqual(again.map((e) => e.type), ['plan', 'summary']);
  assert.equal(again[1]!.status, 'no_changes');
});

test('a failure is one event line too: an invalid topology, a database that refuses the login', async () => {
  const bad = join(file.dir, 'broken.yaml');
  writeFileSync(bad, 'version: 1\nprimary: {}\n');
  const invalid = await run(['apply', bad, '--auto-approve', '--json']);
  assert.equal(invalid.code, 6);
  assert.deepEqual(events(invalid.stdout).map((e) => e.type), ['invalid-topology']);
  const wrong = await vecscale(['apply', file.path, '--auto-approve', '--json'], { env: Object.fromEntries(Object.keys(file.env).map((k) => [k, 'wrong-password'])) });
  assert.notEqual(wrong.code, 0);
  const es = events(wrong.stdout);
  assert.equal(es.at(-1)!.type, 'error');
  assert.doesNotMatch(wrong.stdout, /wrong-password/);
});
