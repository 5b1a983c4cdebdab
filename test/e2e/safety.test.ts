/**
 * End to end, the safety rails of the real CLI on the test clusters: destructive steps (a removed collection, a
 * changed dimension, `protect`), approval without a terminal, the cross-run lock, the wrapper role the primary logs in
 * as, an unreachable secondary, and wrapper passwords (configured and generated) that must appear in no output, no
 * file and no server log — with `log_statement = 'ddl'` on every database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, templated, topologyFile } from '../topology-files.js';
import { clusterLogs, filesUnder } from '../server-logs.js';
import type { SandboxUrls } from '../../src/sandbox/sandbox.js';

type Dbs = SandboxUrls & { readonly name: string };

const TWO = `  docs:
    secondary: pod_a
    dimension: 3
  images:
    secondary: pod_b
    dimension: 3
`;
const DOCS_ONLY = `  docs:
    secondary: pod_a
    dimension: 3
`;

// Fresh databases per scenario, at the top level (freshDatabases registers their removal when the file ends).
const removal = await freshDatabases('safety');
const dimension = await freshDatabases('safety_dim');
const protection = await freshDatabases('safety_protect');
const approval = await freshDatabases('safety_approve');
const race = await freshDatabases('safety_race');
const locked = await freshDatabases('safety_lock');
const wrapper = await freshDatabases('safety_role');
const down = await freshDatabases('safety_down');
const canary = await freshDatabases('safety_canary');
const generated = await freshDatabases('safety_genpw');

const podA = (dbs: Dbs): string => Object.values(dbs.secondaries)[0]!;
const podB = (dbs: Dbs): string => Object.values(dbs.secondaries)[1]!;

/** `SELECT count(*)` of a relation, or null when it does not exist. */
async function count(url: string, relation: string): Promise<number | null> {
  const [r] = await sql<{ t: string | null }>(url, 'SELECT to_regclass($1)::text AS t', [relation]);
  if (r!.t === null) return null;
  const [c] = await sql<{ n: number }>(url, `SELECT count(*)::int AS n FROM ${relation}`);
  return c!.n;
}

async function insertRows(dbs: Dbs, collection: string, ids: readonly string[]): Promise<void> {
  for (const [i, id] of ids.entries()) {
    await sql(dbs.primary, `INSERT INTO public.${collection} (id, embedding, metadata) VALUES ($1, $2, $3)`, [
      id,
      `[${i + 1},0,1]`,
      JSON.stringify({ n: i }),
    ]);
  }
}

/** `vector(3)` etc.: the declared type of vecs.<c>.vec on a secondary. */
async function vecType(url: string, collection: string): Promise<string> {
  const [r] = await sql<{ t: string }>(
    url,
    `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'vec'`,
    [`vecs.${collection}`],
  );
  return r!.t;
}

async function foreignServers(dbs: Dbs): Promise<number> {
  const [r] = await sql<{ n: number }>(dbs.primary, 'SELECT count(*)::int AS n FROM pg_foreign_server');
  return r!.n;
}

/**
 * A topology like topologyFile's, written by hand so a secondary can carry `fdw_password: ${VS_FDW_PW}` or point
 * pod_b at another port. Written into `dir` (default: a temp folder of its own).
 */
function customTopology(
  dbs: Dbs,
  collections: string,
  opts: { fdwPassword?: boolean; podBPort?: number; dir?: string } = {},
): { path: string; dir: string; env: Record<string, string> } {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vecscale-safety-'));
  if (!opts.dir) after(() => rmSync(dir, { recursive: true, force: true }));
  const p = templated(dbs.primary, 'VS_PRIMARY_PW');
  const a = templated(podA(dbs), 'VS_POD_A_PW');
  const b = templated(podB(dbs), 'VS_POD_B_PW');
  const bUrl = opts.podBPort === undefined ? b.url : b.url.replace(/:\d+\//, `:${opts.podBPort}/`);
  const fdw = `    fdw_user: ${fdwUserFor(dbs)}\n${opts.fdwPassword ? '    fdw_password: ${VS_FDW_PW}\n' : ''}`;
  const text =
    `version: 1\nprimary:\n  url: ${p.url}\nsecondaries:\n  pod_a:\n    url: ${a.url}\n${fdw}  pod_b:\n    url: ${bUrl}\n${fdw}` +
    `collections:\n${collections}`;
  const path = join(dir, 'topology.yaml');
  writeFileSync(path, text);
  return { path, dir, env: { ...p.env, ...a.env, ...b.env } };
}

const apply = (path: string, env: Record<string, string>, ...more: string[]) =>
  vecscale(['apply', path, '--auto-approve', ...more], { env });

test('a removed collection that holds rows blocks apply (exit 3, nothing executed) until --allow-destructive names it', async () => {
  const file = topologyFile(removal, TWO);
  const first = await apply(file.path, file.env);
  assert.equal(first.code, 0, first.stderr);
  await insertRows(removal, 'docs', ['d1', 'd2', 'd3']);
  await insertRows(removal, 'images', ['i1', 'i2']);
  assert.equal(await count(podB(removal), 'vecs.images'), 2);

  file.write(DOCS_ONLY);
  const blocked = await apply(file.path, file.env);
  assert.equal(blocked.code, 3, blocked.stderr);
  // The blocked line names the table, its row count and the flag that allows it.
  assert.match(blocked.stderr, /^ {2}! pod_b: table vecs\.images: destructive: dropping it loses its 2 rows \(collection images\); run again with --allow-destructive images\b/m);
  assert.match(blocked.stderr, /- table vecs\.images \[destructive\]\n.*— 2 rows lost/);
  assert.match(blocked.stderr, /Nothing applied/);
  assert.equal(await count(podB(removal), 'vecs.images'), 2, 'rows intact on the secondary');
  assert.equal(await count(removal.primary, 'public.images'), 2, 'the primary still serves images');
  const [server] = await sql<{ n: number }>(removal.primary, `SELECT count(*)::int AS n FROM pg_foreign_server WHERE srvname = 'pod_b'`);
  assert.equal(server!.n, 1, 'the primary keeps its server for pod_b');

  const plan = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(plan.code, 3, `plan is blocked too: ${plan.stderr}`);

  const allowed = await apply(file.path, file.env, '--allow-destructive', 'images');
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(await count(podB(removal), 'vecs.images'), null, 'vecs.images is gone');
  assert.equal(await count(removal.primary, 'public.images'), null, 'public.images is gone on the primary');
  assert.equal(await count(podA(removal), 'vecs.docs'), 3, 'docs keeps its rows on pod_a');
  assert.equal(await count(removal.primary, 'public.docs'), 3, 'docs keeps its rows through the primary');
  const settled = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(settled.code, 0, settled.stderr);
});

test('changing the dimension of a collection that holds rows exits 3; the table keeps its rows and its dimension', async () => {
  const file = topologyFile(dimension, DOCS_ONLY);
  const first = await apply(file.path, file.env);
  assert.equal(first.code, 0, first.stderr);
  await insertRows(dimension, 'docs', ['a', 'b']);

  file.write(DOCS_ONLY.replace('dimension: 3', 'dimension: 4'));
  const blocked = await apply(file.path, file.env);
  assert.equal(blocked.code, 3, blocked.stderr);
  assert.match(blocked.stderr, /^ {2}! pod_a: table vecs\.docs: destructive: recreating it loses its 2 rows \(collection docs\); run again with --allow-destructive docs\b/m);
  assert.match(blocked.stderr, /Nothing applied/);
  assert.equal(await count(podA(dimension), 'vecs.docs'), 2);
  assert.equal(await vecType(podA(dimension), 'docs'), 'vector(3)');
  assert.equal(await count(dimension.primary, 'public.docs'), 2, 'the primary still reads the collection');
});

test('protect: true refuses dropping a removed collection even with --allow-destructive all (recorded on the table)', async () => {
  const file = topologyFile(protection, `${DOCS_ONLY}    protect: true\n  images:\n    secondary: pod_b\n    dimension: 3\n`);
  const first = await apply(file.path, file.env);
  assert.equal(first.code, 0, first.stderr);
  await insertRows(protection, 'docs', ['p1', 'p2', 'p3', 'p4']);

  file.write(`  images:\n    secondary: pod_b\n    dimension: 3\n`);
  const blocked = await apply(file.path, file.env, '--allow-destructive', 'all');
  assert.equal(blocked.code, 3, blocked.stderr);
  assert.match(blocked.stderr, /^ {2}! pod_a: table vecs\.docs: collection docs is protected \(protect: true, recorded on the table\): dropping it would lose its 4 rows, and --allow-destructive does not override protection/m);
  assert.equal(await count(podA(protection), 'vecs.docs'), 4, 'rows intact');
  assert.equal(await count(protection.primary, 'public.docs'), 4, 'nothing changed on the primary');

  // Dimension change of a protected collection still in the file: refused too.
  file.write(`  docs:\n    secondary: pod_a\n    dimension: 5\n    protect: true\n  images:\n    secondary: pod_b\n    dimension: 3\n`);
  const redim = await apply(file.path, file.env, '--allow-destructive', 'docs');
  assert.equal(redim.code, 3, redim.stderr);
  assert.match(redim.stderr, /^ {2}! pod_a: table vecs\.docs: collection docs is protected \(protect: true\): recreating it would lose its 4 rows/m);
  assert.equal(await vecType(podA(protection), 'docs'), 'vector(3)');
  assert.equal(await count(podA(protection), 'vecs.docs'), 4);
});

test('apply without a terminal and without --auto-approve exits 7 and applies nothing', async () => {
  const file = topologyFile(approval, DOCS_ONLY);
  const r = await vecscale(['apply', file.path], { env: file.env });
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, /--auto-approve/);
  assert.equal(await foreignServers(approval), 0);
  assert.equal(await count(podA(approval), 'vecs.docs'), null);
  const [role] = await sql<{ n: number }>(podA(approval), 'SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [fdwUserFor(approval)]);
  assert.equal(role!.n, 0, 'the wrapper role was not created');

  // The same with a change pending on a converged topology.
  const first = await apply(file.path, file.env);
  assert.equal(first.code, 0, first.stderr);
  file.write(TWO);
  const again = await vecscale(['apply', file.path], { env: file.env });
  assert.equal(again.code, 7, again.stderr);
  assert.equal(await count(podB(approval), 'vecs.images'), null);
  assert.equal(await count(approval.primary, 'public.images'), null);
  const pending = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(pending.code, 2, pending.stderr);
});

test('two applies started together: 0 and 0 (the second has nothing to do) or 0 and 4; never a collision', async () => {
  const file = topologyFile(race, TWO);
  const results = await Promise.all([apply(file.path, file.env), apply(file.path, file.env)]);
  const codes = results.map((r) => r.code).sort();
  assert.ok(
    (codes[0] === 0 && codes[1] === 0) || (codes[0] === 0 && codes[1] === 4),
    `codes ${codes.join(', ')}:\n${results.map((r) => r.stderr).join('\n---\n')}`,
  );
  for (const r of results) assert.doesNotMatch(r.stderr, /already exists/);
  const plan = await vecscale(['plan', file.path, '--detailed-exitcode'], { env: file.env });
  assert.equal(plan.code, 0, plan.stderr);
});

test('--lock-timeout: a session holding the lock on the primary makes apply exit 4 naming it; released, apply works', async () => {
  const file = topologyFile(locked, TWO);
  const holder = new pg.Client({ connectionString: locked.primary, application_name: 'holder-test' });
  await holder.connect();
  let released = false;
  try {
    const [row] = (await holder.query<{ pid: number }>('SELECT pg_advisory_lock(1986356083, 1667329125), pg_backend_pid() AS pid')).rows;
    const pid = row!.pid;
    const r = await apply(file.path, file.env, '--lock-timeout', '1');
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /holder-test/);
    assert.match(r.stderr, new RegExp(`pid ${pid}\\b`));
    assert.equal(await foreignServers(locked), 0, 'nothing applied on the primary');
    assert.equal(await count(podA(locked), 'vecs.docs'), null, 'nothing applied on the secondaries');
    await holder.query('SELECT pg_advisory_unlock(1986356083, 1667329125)');
    await holder.end();
    released = true;
    const ok = await apply(file.path, file.env, '--lock-timeout', '1');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await foreignServers(locked), 2);
  } finally {
    if (!released) await holder.end();
  }
});

test('the primary logs in to a secondary as the wrapper role: no superuser, no CREATE, only what the wrappers need', async () => {
  const role = fdwUserFor(wrapper);
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const file = customTopology(wrapper, TWO, { fdwPassword: true });
  const env = { ...file.env, VS_FDW_PW: password };
  const r = await apply(file.path, env);
  assert.equal(r.code, 0, r.stderr);
  await insertRows(wrapper, 'docs', ['w1', 'w2']);

  const [mapping] = await sql<{ umoptions: string[] }>(wrapper.primary, `SELECT umoptions FROM pg_user_mappings WHERE srvname = 'pod_a' AND usename = 'public'`);
  assert.ok(mapping!.umoptions.includes(`user=${role}`), `umoptions: user=${role} expected`);
  assert.ok(!mapping!.umoptions.includes('user=postgres'));

  const [attrs] = await sql<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolbypassrls: boolean; vecs_create: boolean; public_create: boolean; db_create: boolean }>(
    podA(wrapper),
    `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls,
            has_schema_privilege(rolname, 'vecs', 'CREATE') AS vecs_create,
            has_schema_privilege(rolname, 'public', 'CREATE') AS public_create,
            has_database_privilege(rolname, current_database(), 'CREATE') AS db_create
       FROM pg_roles WHERE rolname = $1`,
    [role],
  );
  assert.deepEqual(attrs, { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, vecs_create: false, public_create: false, db_create: false });

  const u = new URL(podA(wrapper));
  u.username = role;
  u.password = encodeURIComponent(password);
  const asRole = u.toString();
  await assert.rejects(sql(asRole, 'CREATE TABLE vecs.x (id int)'), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, '42501', e.message);
    assert.match(e.message ?? '', /permission denied/);
    return true;
  });
  await assert.rejects(sql(asRole, 'CREATE TABLE public.x (id int)'), /permission denied/);
  const [seen] = await sql<{ n: number }>(asRole, 'SELECT count(*)::int AS n FROM vecscale.docs');
  assert.equal(seen!.n, 2);
  // CREATE nowhere: not in vecscale's private schema either.
  await assert.rejects(sql(asRole, 'CREATE TABLE vecscale.x (id int)'), /permission denied/);
});

test('an unreachable secondary: apply exits 1 naming it, and no database gained anything', async () => {
  const file = customTopology(down, TWO, { podBPort: 1 });
  const r = await apply(file.path, file.env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to secondary pod_b \(postgres:\/\/postgres@127\.0\.0\.1:1\//);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  const [schema] = await sql<{ n: number }>(down.primary, `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'vecscale_remote'`);
  assert.equal(schema!.n, 0, 'no vecscale_remote schema on the primary');
  assert.equal(await foreignServers(down), 0);
  assert.equal(await count(podA(down), 'vecs.docs'), null, 'nothing on the reachable secondary either');
});

// --- Secrets: outputs, files, server logs ---------------------------------------------------------------------

/** Sets log_statement = 'ddl' on every database of the set (as admin), for the sessions that connect from now on. */
async function logDdl(dbs: Dbs): Promise<void> {
  for (const url of [dbs.primary, ...Object.values(dbs.secondaries)]) {
    await sql(url, `ALTER DATABASE "${dbs.name}" SET log_statement = 'ddl'`);
  }
}

const forms = (secret: string): string[] => [...new Set([secret, encodeURIComponent(secret)])];

function assertAbsent(haystack: string, secrets: readonly string[], where: string): void {
  for (const s of secrets) {
    for (const f of forms(s)) assert.ok(!haystack.includes(f), `secret leaked in ${where}`);
  }
}

/** The password of the primary's user mapping for a server, read as admin. */
async function mappingPassword(dbs: Dbs, server: string): Promise<string> {
  const [m] = await sql<{ umoptions: string[] }>(dbs.primary, 'SELECT umoptions FROM pg_user_mappings WHERE srvname = $1', [server]);
  const opt = m?.umoptions.find((o) => o.startsWith('password='));
  assert.ok(opt, `a password option on the user mapping of ${server}`);
  return opt.slice('password='.length);
}

/** Collections named after the run's tag; `more` adds a metadata column to the two on one secondary. */
const COLLECTIONS_FOR = (tag: string, more = false) => `  docs_${tag}:
    secondary: pod_a
    dimension: 3
    columns: { url: text${more ? ', lang: text' : ''} }
  notes_${tag}:
    secondary: pod_b
    dimension: 3
${more ? '    columns: { lang: text }\n' : ''}  shard_${tag}:
    shards: [pod_a, pod_b]
    dimension: 3
`;

/**
 * Runs every command that reads the topology, from cwd = dir, against `dbs` (log_statement = 'ddl' set first), and
 * returns their outputs. Asserts the exit codes along the way. `capture` is called after each apply.
 */
async function runEverything(
  dbs: Dbs,
  tag: string,
  dir: string,
  env: Record<string, string>,
  capture: () => Promise<void>,
  rewrite: () => void,
): Promise<CliResult[]> {
  const outputs: CliResult[] = [];
  const run = async (args: string[], expect: number, extraEnv: Record<string, string> = {}) => {
    const r = await vecscale(args, { cwd: dir, env: { ...env, ...extraEnv } });
    outputs.push(r);
    assert.equal(r.code, expect, `vecscale ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  await run(['validate', 'topology.yaml'], 0);
  await run(['validate', 'topology.yaml', '--json'], 0);
  await run(['plan', 'topology.yaml'], 0);
  await run(['plan', 'topology.yaml', '--json'], 0);
  await run(['plan', 'topology.yaml', '--detailed-exitcode'], 2);
  await run(['plan', 'topology.yaml', '--out', 'plan.json'], 0);
  assert.equal(statSync(join(dir, 'plan.json')).mode & 0o777, 0o600, 'plan.json is mode 0600');
  assert.match(readFileSync(join(dir, 'plan.json'), 'utf8'), /\{\{secret:/, 'the saved plan carries the password statements, as placeholders');
  await run(['apply', 'plan.json'], 0);
  await capture();
  await run(['plan', 'topology.yaml', '--detailed-exitcode'], 0);
  await run(['plan', 'topology.yaml', '--json', '--detailed-exitcode'], 0);
  await run(['apply', 'topology.yaml', '--auto-approve', '--json'], 0);
  await capture();
  // A change that carries no password (a new metadata column): its transactions are logged like any DDL.
  rewrite();
  await run(['plan', 'topology.yaml', '--detailed-exitcode'], 2);
  await run(['apply', 'topology.yaml', '--auto-approve'], 0);
  await capture();
  // Rows through the primary (as admin, not through the CLI), so query and check have something to read.
  await insertRows(dbs, `docs_${tag}`, ['a', 'b', 'c']);
  await insertRows(dbs, `shard_${tag}`, ['x', 'y', 'z', 'w']);
  await run(['check', 'topology.yaml'], 0);
  await run(['check', 'topology.yaml', '--json'], 0);
  await run(['query', `docs_${tag}`, '-f', 'topology.yaml', '--vector', '[1,0,1]', '--limit', '2'], 0);
  await run(['query', `docs_${tag}`, '-f', 'topology.yaml', '--vector', '[1,0,1]', '--json'], 0);
  await run(['query', `docs_${tag}`, '-f', 'topology.yaml', '--vector', '[1,0,1]', '--direct'], 0);
  await run(['query', `shard_${tag}`, '-f', 'topology.yaml', '--vector', '[1,0,1]', '--json'], 0);
  await run(['explain', `docs_${tag}`, '-f', 'topology.yaml'], 0);
  await run(['explain', `shard_${tag}`, '-f', 'topology.yaml'], 0);
  // A failing run: a wrong admin password for pod_b (the wrapper password still resolves).
  await run(['plan', 'topology.yaml', '--json'], 1, { VS_POD_B_PW: 'not-the-password' });
  await run(['apply', 'topology.yaml', '--auto-approve'], 1, { VS_POD_B_PW: 'not-the-password' });
  await run(['destroy', 'topology.yaml', '--auto-approve'], 0);
  await run(['plan', 'topology.yaml', '--detailed-exitcode'], 2);
  return outputs;
}

function assertNoLeak(outputs: readonly CliResult[], dir: string, secrets: readonly string[]): void {
  assert.ok(outputs.length >= 15);
  for (const [i, r] of outputs.entries()) {
    assertAbsent(r.stdout, secrets, `stdout of command #${i}`);
    assertAbsent(r.stderr, secrets, `stderr of command #${i}`);
  }
  const files = filesUnder(dir);
  assert.ok(files.some(([p]) => p.endsWith('plan.json')), 'plan.json was written');
  for (const [p, text] of files) assertAbsent(text, secrets, p);
}

async function assertLogsClean(secrets: readonly string[], tag: string, t: { skip(msg: string): void }): Promise<boolean> {
  const logs = [...((await clusterLogs())?.values() ?? [])];
  if (logs.length === 0) {
    t.skip('the test clusters\' server logs are not reachable from this run');
    return false;
  }
  let ddlSeen = 0;
  for (const log of logs) {
    const text = readFileSync(log, 'utf8');
    assertAbsent(text, secrets, log);
    // Proof that statement logging was on for this run's databases: DDL naming its uniquely named collections.
    if (new RegExp(`LOG: {2}statement: [^\\n]*(docs|notes)_${tag}`).test(text)) ddlSeen++;
  }
  // The topology uses the primary and two pods; a third test secondary (the move suites') has nothing of this run.
  assert.equal(ddlSeen, Math.min(logs.length, 3), 'every cluster of the topology logged DDL of this run');
  return true;
}

test('a configured wrapper password (a canary) appears in no output, no file, and no server log with log_statement = ddl', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const secret = `canary-FDW-9f2!x@'/:${tag}`;
  await logDdl(canary);
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-canary-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = customTopology(canary, COLLECTIONS_FOR(tag), { fdwPassword: true, dir });
  const env = { ...file.env, VS_FDW_PW: secret };

  const outputs = await runEverything(canary, tag, dir, env, async () => {
    assert.equal(await mappingPassword(canary, 'pod_a'), secret, 'the mapping holds the configured password');
  }, () => customTopology(canary, COLLECTIONS_FOR(tag, true), { fdwPassword: true, dir }));
  assertNoLeak(outputs, dir, [secret]);
  await assertLogsClean([secret], tag, t);
});

test('a generated wrapper password appears in no output, no file, and no server log with log_statement = ddl', async (t) => {
  const tag = randomBytes(3).toString('hex');
  await logDdl(generated);
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-genpw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = customTopology(generated, COLLECTIONS_FOR(tag), { dir });
  const seen = new Set<string>();
  const outputs = await runEverything(generated, tag, dir, file.env, async () => {
    for (const server of ['pod_a', 'pod_b']) seen.add(await mappingPassword(generated, server));
  }, () => customTopology(generated, COLLECTIONS_FOR(tag, true), { dir }));
  // pod_a and pod_b are separate clusters: a role, and a password, each; the second apply kept them.
  assert.equal(seen.size, 2, 'one generated password per cluster, kept by the second apply');
  for (const s of seen) assert.ok(s.length >= 32, 'a generated password of 32 random bytes');
  assertNoLeak(outputs, dir, [...seen]);
  await assertLogsClean([...seen], tag, t);
});
