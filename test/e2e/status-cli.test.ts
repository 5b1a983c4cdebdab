/** `vecscale status` from the command line on bad input: a malformed file exits 6, located; databases that cannot be reached exit 2, each named, no stack trace, no password. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { vecscale } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vecscale-status-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'Tr0ub4dor-status';

test('a malformed topology: exit 6, the problem located, no connection', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'version: 1\nprimary:\n  url: [not a url\n');
  const r = await vecscale(['status', file]);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /bad\.yaml:\d+:\d+: invalid YAML/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('nothing reachable: exit 2, every database named with its fix, --json too; no stack trace, no password', async () => {
  const file = join(dir, 'down.yaml');
  writeFileSync(
    file,
    `version: 1
primary:
  url: postgres://postgres:\${PW}@127.0.0.1:1/app
secondaries:
  pod_a:
    url: postgres://postgres:\${PW}@127.0.0.1:2/vectors
collections:
  docs:
    secondary: pod_a
    dimension: 3
`,
  );
  const env = { PW: SECRET };
  const human = await vecscale(['status', file, '--connect-timeout', '2'], { env });
  assert.equal(human.code, 2, human.stderr);
  assert.match(human.stdout, /✗ primary: database: cannot connect to the primary \(postgres:\/\/postgres@127\.0\.0\.1:1\/app\): connection refused/);
  assert.match(human.stdout, /✗ pod_a: database: cannot connect to secondary pod_a .*\n\s+fix: check that it is up/);
  const json = await vecscale(['status', file, '--json', '--connect-timeout', '2'], { env });
  assert.equal(json.code, 2, json.stderr);
  const doc = JSON.parse(json.stdout) as { healthy: boolean; problems: Array<{ database: string }> };
  assert.equal(doc.healthy, false);
  assert.deepEqual(doc.problems.map((p) => p.database).sort(), ['pod_a', 'primary']);
  for (const out of [human.stdout, human.stderr, json.stdout, json.stderr]) {
    assert.doesNotMatch(out, new RegExp(SECRET), 'no password');
    assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
  }
});
