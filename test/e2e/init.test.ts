import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { Chalk } from 'chalk';
import { parse } from 'yaml';
import { initCommand, schemaRef } from '../../src/cli/commands/init.js';
import { exitCodeForError } from '../../src/cli/exit.js';
import type { Output } from '../../src/cli/output.js';
import { loadTopology } from '../../src/config/index.js';
import { isVecscaleError } from '../../src/errors.js';
import { vecscale } from '../cli.js';
import { ROOT } from '../harness.js';

const TEMPLATE = join(ROOT, 'templates', 'topology.yaml');
const WORKFLOW = join(ROOT, 'templates', 'github-actions.yml');
const MODELINE = /^# yaml-language-server: \$schema=(.+)$/;

const dirs: string[] = [];
const tempDir = (parent = tmpdir()): string => {
  mkdirSync(parent, { recursive: true });
  const d = mkdtempSync(join(parent, 'vecscale-init-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** An Output that records what init prints, without colour. */
function capture(): Output & { readonly lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    json: false,
    color: new Chalk({ level: 0 }),
    interactive: false,
    info: (t) => void lines.push(t),
    result: (d) => void lines.push(JSON.stringify(d)),
    print: (t) => void lines.push(t),
  };
}

/** The ${NAME}s a YAML document reads in its values (commented-out lines do not count). */
function envVarsOf(text: string): string[] {
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') for (const m of v.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1] ?? '');
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(parse(text));
  return [...names];
}
const envFor = (text: string): Record<string, string> => Object.fromEntries(envVarsOf(text).map((n) => [n, `secret-${n.toLowerCase()}`]));

/** The schema reference of a written file, resolved against the file's folder. */
function schemaOf(file: string): string {
  const first = readFileSync(file, 'utf8').split('\n')[0] ?? '';
  const m = MODELINE.exec(first);
  assert.ok(m, `first line is the yaml-language-server modeline, got: ${first}`);
  return resolve(dirname(file), m[1] ?? '');
}

async function initError(file: string, opts: { force?: boolean }): Promise<{ exit: number; message: string }> {
  try {
    await initCommand(file, opts, capture());
  } catch (e) {
    assert.ok(isVecscaleError(e), `a VecscaleError, got ${String(e)}`);
    return { exit: exitCodeForError(e.code), message: e.message };
  }
  assert.fail('init succeeded');
}

test('init writes the starter with the $schema line first, pointing at the real schema file', async () => {
  const file = join(tempDir(), 'topology.yaml');
  const out = capture();
  await initCommand(file, {}, out);
  const written = readFileSync(file, 'utf8');
  const schema = schemaOf(file);
  assert.ok(existsSync(schema), `${schema} exists`);
  assert.equal(schema, join(ROOT, 'templates', 'topology.schema.json'));
  // Apart from the modeline, the file is the template.
  assert.deepEqual(written.split('\n').slice(1), readFileSync(TEMPLATE, 'utf8').split('\n').slice(1));
  const printed = out.lines.join('\n');
  assert.match(printed, /Wrote .*topology\.yaml/);
  for (const v of ['PRIMARY_PASSWORD', 'POD_A_PASSWORD', 'POD_B_PASSWORD']) assert.match(printed, new RegExp(`export ${v}=`));
  assert.match(printed, /vecscale validate/);
  assert.match(printed, /vecscale plan/);
  assert.doesNotMatch(printed, /\x1b/);
});

test('the written file is a valid topology once its variables are set', async () => {
  const file = join(tempDir(), 'vectors.yaml');
  await initCommand(file, {}, capture());
  const text = readFileSync(file, 'utf8');
  const env = envFor(text);
  assert.deepEqual(Object.keys(env).sort(), ['POD_A_PASSWORD', 'POD_B_PASSWORD', 'PRIMARY_PASSWORD']);
  const r = loadTopology(file, env);
  assert.ok(r.ok, `valid, got: ${r.ok ? '' : JSON.stringify(r.problems, null, 2)}`);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.topology.apiRoles, ['anon', 'authenticated']);
  assert.deepEqual(r.topology.secondaries.map((s) => s.name), ['pod_a', 'pod_b']);
  assert.deepEqual(r.topology.collections.map((c) => [c.name, c.secondary, c.dimension, c.metric]), [['docs', 'pod_a', 384, 'cosine']]);
  const [docs] = r.topology.collections;
  assert.equal(docs?.protect, true);
  assert.deepEqual(docs?.index, { method: 'hnsw', m: 16, efConstruction: 64 });
  // Without the variables it is not: every missing one is named.
  const missing = loadTopology(file, {});
  assert.ok(!missing.ok);
  assert.match(missing.problems.map((p) => p.message).join('\n'), /PRIMARY_PASSWORD.*POD_A_PASSWORD.*POD_B_PASSWORD/s);
});

test('the commented-out sharded example is valid too once uncommented', () => {
  const text = readFileSync(TEMPLATE, 'utf8');
  const sharded = text.replace(/^ {2}# (images:| {2}.*)$/gm, '  $1');
  assert.match(sharded, /^ {2}images:\n {4}shards: \[pod_a, pod_b\]\n {4}partitions: 2$/m);
  const dir = tempDir();
  writeFileSync(join(dir, 'sharded.yaml'), sharded);
  const r = loadTopology(join(dir, 'sharded.yaml'), envFor(text));
  assert.ok(r.ok, `valid, got: ${r.ok ? '' : JSON.stringify(r.problems, null, 2)}`);
  assert.deepEqual(r.topology.collections.map((c) => [c.name, c.shards ?? c.secondary]), [['docs', 'pod_a'], ['images', ['pod_a', 'pod_b']]]);
});

test('init refuses to overwrite without --force (exit 6, file unchanged); --force overwrites', async () => {
  const file = join(tempDir(), 'topology.yaml');
  writeFileSync(file, 'mine\n');
  const e = await initError(file, {});
  assert.equal(e.exit, 6);
  assert.equal(e.message, `${file} exists; pass --force to overwrite it`);
  assert.equal(readFileSync(file, 'utf8'), 'mine\n');
  await initCommand(file, { force: true }, capture());
  assert.match(readFileSync(file, 'utf8'), /^# yaml-language-server: \$schema=.*\nversion: 1$/ms);
});

test('init does not create folders: a missing one is a config error', async () => {
  const file = join(tempDir(), 'missing', 'topology.yaml');
  const e = await initError(file, {});
  assert.equal(e.exit, 6);
  assert.match(e.message, /does not exist/);
  assert.equal(existsSync(dirname(file)), false);
});

test('the schema reference is relative inside one project, absolute otherwise', async () => {
  // Inside vecscale's own tree (.vecscale/ is git-ignored): relative, climbing to templates/.
  const inside = tempDir(join(ROOT, '.vecscale'));
  await initCommand(join(inside, 'topology.yaml'), {}, capture());
  const first = readFileSync(join(inside, 'topology.yaml'), 'utf8').split('\n')[0];
  assert.equal(first, '# yaml-language-server: $schema=../../templates/topology.schema.json');
  assert.ok(existsSync(schemaOf(join(inside, 'topology.yaml'))));
  // A project with vecscale installed in node_modules.
  const project = tempDir();
  writeFileSync(join(project, 'package.json'), '{}');
  const installed = join(project, 'node_modules', 'vecscale', 'templates', 'topology.schema.json');
  assert.equal(schemaRef(project, installed), './node_modules/vecscale/templates/topology.schema.json');
  mkdirSync(join(project, 'db'));
  assert.equal(schemaRef(join(project, 'db'), installed), '../node_modules/vecscale/templates/topology.schema.json');
  // A schema outside the project (a global install): its absolute path.
  const global = join(tempDir(), 'lib', 'node_modules', 'vecscale', 'templates', 'topology.schema.json');
  const ref = schemaRef(project, global);
  assert.ok(isAbsolute(ref));
  assert.equal(ref, global);
});

test('templates/github-actions.yml: plans on pull requests, applies a fresh saved plan on main', () => {
  const wf = parse(readFileSync(WORKFLOW, 'utf8')) as {
    name: string;
    on: Record<string, unknown>;
    jobs: Record<string, { if?: string; concurrency?: { group: string; 'cancel-in-progress': boolean }; steps: { run?: string; env?: Record<string, string> }[] }>;
  };
  assert.equal(wf.name, 'vecscale');
  assert.ok('pull_request' in wf.on && 'push' in wf.on);
  const jobs = Object.values(wf.jobs);
  const runs = (job: (typeof jobs)[number]) => job.steps.map((s) => s.run ?? '').join('\n');
  const plan = jobs.find((j) => runs(j).includes('plan --detailed-exitcode'));
  const apply = jobs.find((j) => runs(j).includes('apply plan.json'));
  assert.ok(plan, 'a job runs plan --detailed-exitcode');
  assert.ok(apply, 'a job runs apply plan.json');
  assert.notEqual(plan, apply);
  assert.match(plan.if ?? '', /pull_request/);
  assert.match(apply.if ?? '', /refs\/heads\/main/);
  // Exit 2 (changes pending) passes the pull request check; the apply job plans again itself.
  assert.match(runs(plan), /set \+e[\s\S]*code=\$\?[\s\S]*\[ \$code -eq 0 \] \|\| \[ \$code -eq 2 \]/);
  assert.match(runs(apply), /plan --out plan\.json[\s\S]*apply plan\.json/);
  assert.doesNotMatch(JSON.stringify(wf), /upload-artifact|download-artifact/);
  assert.deepEqual(apply.concurrency, { group: 'vecscale-apply', 'cancel-in-progress': false });
  // Every step that runs vecscale gets every variable the starter topology reads, from secrets.
  const vars = envVarsOf(readFileSync(TEMPLATE, 'utf8'));
  for (const step of jobs.flatMap((j) => j.steps).filter((s) => s.run?.includes('npx vecscale'))) {
    for (const v of vars) assert.equal(step.env?.[v], `\${{ secrets.${v} }}`, `${v} in the env of: ${step.run}`);
  }
});

// The real CLI: needs `npm run build`, and `vecscale init [file] [--force]` wired in src/cli/main.ts.
test('CLI: vecscale init writes topology.yaml in the working directory; no colour; a second run exits 6', async () => {
  const cwd = tempDir();
  const r = await vecscale(['init'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /Wrote topology\.yaml/);
  assert.doesNotMatch(r.stderr, /\x1b/);
  const file = join(cwd, 'topology.yaml');
  assert.ok(existsSync(schemaOf(file)));
  const written = readFileSync(file, 'utf8');

  const again = await vecscale(['init'], { cwd });
  assert.equal(again.code, 6);
  assert.match(again.stderr, /topology\.yaml exists; pass --force to overwrite it/);
  assert.doesNotMatch(again.stderr, /\n\s+at /);
  assert.equal(readFileSync(file, 'utf8'), written);

  writeFileSync(file, 'mine\n');
  const forced = await vecscale(['init', '--force'], { cwd });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(readFileSync(file, 'utf8'), written);

  const valid = await vecscale(['validate'], { cwd, env: envFor(written) });
  assert.equal(valid.code, 0, valid.stderr);
});

test('CLI: without NO_COLOR the output still has no colour (not a terminal); a named file in a missing folder exits 6', async () => {
  const cwd = tempDir();
  const r = await vecscale(['init', 'vectors.yaml'], { cwd, env: { NO_COLOR: undefined } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /\x1b/);
  assert.match(r.stderr, /vecscale validate vectors\.yaml/);
  assert.ok(existsSync(join(cwd, 'vectors.yaml')));

  const missing = await vecscale(['init', 'no/such/dir/topology.yaml'], { cwd, env: { NO_COLOR: undefined } });
  assert.equal(missing.code, 6);
  assert.match(missing.stderr, /does not exist/);
  assert.doesNotMatch(missing.stderr, /\x1b/);
});
