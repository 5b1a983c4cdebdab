/**
 * Failure paths of the real CLI on real clusters: a database failing after earlier ones committed (exit 8),
 * pgvector in different schemas (exit 1), and the approval prompt on a terminal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { vecscale } from '../cli.js';
import { freshDatabases, ROOT, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const DOCS = `  docs:
    secondary: pod_a
    dimension: 3
`;

const partial = await freshDatabases('partial');
const partialFile = topologyFile(partial, DOCS);
const schemas = await freshDatabases('extschema');
const schemasFile = topologyFile(schemas, DOCS);
const prompt = await freshDatabases('prompt');
const promptFile = topologyFile(prompt, DOCS);

test('a primary failing after the secondaries committed: exit 8 naming both; the primary is rolled back; apply again converges', async () => {
  await sql(partial.primary, `CREATE FUNCTION refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'foreign tables are frozen'; END $$`);
  await sql(partial.primary, `CREATE EVENT TRIGGER no_foreign_tables ON ddl_command_start WHEN TAG IN ('CREATE FOREIGN TABLE') EXECUTE FUNCTION refuse()`);
  const r = await vecscale(['apply', partialFile.path, '--auto-approve'], { env: partialFile.env });
  assert.equal(r.code, 8, r.stderr);
  assert.match(r.stderr, /partial apply: committed pod_a, pod_b; primary failed and was rolled back: foreign table vecscale_remote\.docs: foreign tables are frozen/);
  const [servers] = await sql(partial.primary, 'SELECT count(*)::int AS n FROM pg_foreign_server');
  assert.equal(servers!.n, 0, 'nothing of the primary committed');
  const podA = Object.values(partial.secondaries)[0]!;
  const [table] = await sql(podA, `SELECT to_regclass('vecs.docs')::text AS t`);
  assert.equal(table!.t, 'vecs.docs');

  await sql(partial.primary, 'DROP EVENT TRIGGER no_foreign_tables');
  const again = await vecscale(['apply', partialFile.path, '--auto-approve'], { env: partialFile.env });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /\+ table vecs\.docs/, 'the committed secondary is not planned again');
  const plan = await vecscale(['plan', partialFile.path, '--detailed-exitcode'], { env: partialFile.env });
  assert.equal(plan.code, 0, plan.stderr);
});

test('pgvector in another schema on the primary than on a secondary: exit 1, both named, nothing applied', async () => {
  await sql(schemas.primary, 'CREATE SCHEMA extensions');
  await sql(schemas.primary, 'CREATE EXTENSION vector WITH SCHEMA extensions');
  await sql(Object.values(schemas.secondaries)[0]!, 'CREATE EXTENSION vector WITH SCHEMA public');
  const r = await vecscale(['apply', schemasFile.path, '--auto-approve'], { env: schemasFile.env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /pgvector must sit in the same schema on the primary and every secondary .*found primary: extensions, pod_a: public/);
  assert.match(r.stderr, /hint: move it with ALTER EXTENSION vector SET SCHEMA/);
  const [servers] = await sql(schemas.primary, 'SELECT count(*)::int AS n FROM pg_foreign_server');
  assert.equal(servers!.n, 0);
});

/** Runs the CLI under a pseudo-terminal (util-linux `script`), typing `answer` at the prompt. */
function onTerminal(args: string[], env: Record<string, string>, answer: string): Promise<{ code: number; output: string }> {
  const cmd = [process.execPath, join(ROOT, 'bin', 'vecscale'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes("Only 'yes' is accepted")) child.stdin.end(`${answer}\n`);
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

test('on a terminal, apply asks: anything but "yes" cancels with exit 7; "yes" applies', async () => {
  const no = await onTerminal(['apply', promptFile.path], promptFile.env, 'no');
  assert.equal(no.code, 7, no.output);
  assert.match(no.output, /Apply cancelled\. Nothing applied\./);
  const [none] = await sql(prompt.primary, 'SELECT count(*)::int AS n FROM pg_foreign_server');
  assert.equal(none!.n, 0);

  const yes = await onTerminal(['apply', promptFile.path], promptFile.env, 'yes');
  assert.equal(yes.code, 0, yes.output);
  assert.match(yes.output, /Apply complete/);
  const [some] = await sql(prompt.primary, 'SELECT count(*)::int AS n FROM pg_foreign_server');
  assert.equal(some!.n, 2);
});
