/**
 * End to end (issue 11 §4), the real CLI on the test clusters: no wrapper password — generated, rotated or configured
 * — reaches `pg_stat_activity` (polled as fast as the clusters answer during eleven applies, ten of them with
 * --rotate-fdw-passwords) or the server log (`log_statement = 'all'`, `log_parameter_max_length = -1`), and a
 * `{{secret:…}}` / `{{verifier:…}}` placeholder written inside a value of the topology (a database name, a host) stays
 * the text it is: never expanded into a password in a statement, an output, a saved plan or a log.
 *
 * `pg_stat_statements` is not covered: the test clusters do not load it (shared_preload_libraries is empty), so
 * there is nothing to read. vecscale sets `pg_stat_statements.track_utility = off` around password statements where
 * the module is loaded (src/apply/secrets.ts); a cluster that loads it would need its own test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, sql, testClusters, TEST_SANDBOX_DIR, withDatabase } from '../harness.js';
import { fdwUserFor, templated } from '../topology-files.js';
import { clusterLogs, filesUnder } from '../server-logs.js';
import type { SandboxUrls } from '../../src/sandbox/sandbox.js';

type Dbs = SandboxUrls & { readonly name: string };

// Injection scenario (test 3): databases whose names carry placeholders, created by the test on the secondaries'
// clusters. This `after` is registered before freshDatabases('secact_inj') on purpose: hooks run in registration
// order, and the wrapper role freshDatabases drops at the end holds privileges inside these databases.
const injTag = randomBytes(3).toString('hex');
const INJ_SECRET_DB = `x{{secret:pod_b.fdw_password}}_${injTag}`;
const INJ_VERIFIER_DB = `x{{verifier:pod_b.fdw_password}}_${injTag}`;
after(async () => {
  const clusters = await testClusters();
  const [a, b] = Object.values(clusters.secondaries);
  await sql(a!, `DROP DATABASE IF EXISTS "${INJ_VERIFIER_DB}" WITH (FORCE)`);
  await sql(b!, `DROP DATABASE IF EXISTS "${INJ_SECRET_DB}" WITH (FORCE)`);
});

const polled = await freshDatabases('secact_poll');
const logged = await freshDatabases('secact_log');
const inj = await freshDatabases('secact_inj');

const podA = (dbs: Dbs): string => Object.values(dbs.secondaries)[0]!;
const podB = (dbs: Dbs): string => Object.values(dbs.secondaries)[1]!;

// --- Topologies -------------------------------------------------------------------------------------------------

interface Pod {
  /** Admin URL of the secondary database (the test clusters' `postgres` user and password). */
  readonly url: string;
  /** `fdw_password: ${VS_FDW_PW}` instead of a generated password. */
  readonly fdwPassword?: boolean;
}

/**
 * A topology like test/topology-files.ts writes (admin passwords through ${ENV}, `fdw_user: fdw_<dbname>`), written
 * by hand so each secondary can have its own URL and a configured `fdw_password`, like safety.test.ts customTopology.
 */
function writeTopology(
  dir: string,
  dbs: Dbs,
  pods: { readonly pod_a: Pod; readonly pod_b: Pod },
  collections: string,
): { path: string; env: Record<string, string> } {
  const p = templated(dbs.primary, 'VS_PRIMARY_PW');
  const a = templated(pods.pod_a.url, 'VS_POD_A_PW');
  const b = templated(pods.pod_b.url, 'VS_POD_B_PW');
  const fdw = (pod: Pod) => `    fdw_user: ${fdwUserFor(dbs)}\n${pod.fdwPassword ? '    fdw_password: ${VS_FDW_PW}\n' : ''}`;
  const text =
    `version: 1\nprimary:\n  url: ${p.url}\nsecondaries:\n` +
    `  pod_a:\n    url: ${a.url}\n${fdw(pods.pod_a)}  pod_b:\n    url: ${b.url}\n${fdw(pods.pod_b)}collections:\n${collections}`;
  const path = join(dir, 'topology.yaml');
  writeFileSync(path, text);
  return { path, env: { ...p.env, ...a.env, ...b.env } };
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One collection per secondary, named after the run's tag so its DDL can be found in the shared server logs. */
const collectionsFor = (tag: string): string => `  docs_${tag}:
    secondary: pod_a
    dimension: 3
  notes_${tag}:
    secondary: pod_b
    dimension: 3
`;

/** A configured wrapper password with the characters that would break naive quoting or format(). */
const canary = (label: string): string => `c4n'%s$1-${label}-${randomBytes(6).toString('hex')}`;

// --- Secrets ----------------------------------------------------------------------------------------------------

/** The shapes a leaked secret could take: as is, percent-encoded (a URL), quote-doubled (an SQL literal). */
const forms = (secret: string): string[] => [...new Set([secret, encodeURIComponent(secret), secret.replace(/'/g, "''")])];

function assertAbsent(haystack: string, secrets: Iterable<string>, where: string): void {
  for (const s of secrets) {
    for (const f of forms(s)) assert.ok(!haystack.includes(f), `a wrapper password leaked in ${where}`);
  }
}

/** The passwords of the primary's user mappings, by server, read as admin (what is in force right now). */
async function mappingPasswords(dbs: Dbs): Promise<Map<string, string>> {
  const rows = await sql<{ srvname: string; umoptions: string[] | null }>(
    dbs.primary,
    'SELECT srvname, umoptions FROM pg_catalog.pg_user_mappings ORDER BY srvname',
  );
  const out = new Map<string, string>();
  for (const r of rows) {
    const opt = (r.umoptions ?? []).find((o) => o.startsWith('password='));
    assert.ok(opt, `a password option on the user mapping of ${r.srvname}`);
    out.set(r.srvname, opt.slice('password='.length));
  }
  return out;
}

function assertOutputsClean(outputs: readonly CliResult[], secrets: Iterable<string>): void {
  const all = [...secrets];
  for (const [i, r] of outputs.entries()) {
    assertAbsent(r.stdout, all, `stdout of command #${i}`);
    assertAbsent(r.stderr, all, `stderr of command #${i}`);
  }
}

// --- Server logs ------------------------------------------------------------------------------------------------

interface LogMark {
  readonly port: number;
  readonly file: string;
  readonly offset: number;
}

/**
 * Where each cluster's log ends now: a test reads only what was written after (the logs are shared with the other
 * test files). Fails, never skips, when the logs cannot be found: the shared sandbox is running, so they can be.
 */
async function markLogs(): Promise<LogMark[]> {
  const logs = await clusterLogs();
  assert.ok(logs, `the test clusters' server logs must be readable (sandbox status of ${TEST_SANDBOX_DIR})`);
  return [...logs].map(([port, file]) => ({ port, file, offset: statSync(file).size }));
}

/** What each log gained since its mark, by port. */
function logsSince(marks: readonly LogMark[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of marks) {
    const size = statSync(m.file).size;
    const buf = Buffer.alloc(Math.max(0, size - m.offset));
    const fd = openSync(m.file, 'r');
    try {
      let read = 0;
      while (read < buf.length) {
        const n = readSync(fd, buf, read, buf.length - read, m.offset + read);
        if (n === 0) break;
        read += n;
      }
    } finally {
      closeSync(fd);
    }
    out.set(m.port, buf.toString('utf8'));
  }
  return out;
}

const portOf = (url: string): number => Number(new URL(url).port);

/** Turns on statement logging of everything, bound parameters in full, for sessions that connect from now on. */
async function logEverything(adminUrl: string, database: string): Promise<void> {
  await sql(adminUrl, `ALTER DATABASE "${database}" SET log_statement = 'all'`);
  await sql(adminUrl, `ALTER DATABASE "${database}" SET log_parameter_max_length = -1`);
}

// --- pg_stat_activity poller --------------------------------------------------------------------------------------

const POLL_SQL =
  'SELECT datname, query FROM pg_catalog.pg_stat_activity WHERE pid <> pg_catalog.pg_backend_pid() AND query <> \'\'';

/**
 * Reads the query text of every backend of each cluster, from an admin connection of its own per cluster, in a loop
 * with no sleep (one round trip per poll: about a millisecond apart on these local clusters). Keeps every
 * distinct text; `ours` holds those of backends connected to the given databases (vecscale's own sessions), on
 * which the statement-shape assertions run: other test files share the clusters and may send passwords of their own.
 */
class ActivityPoller {
  readonly all = new Set<string>();
  /** Distinct texts of vecscale's sessions, each with how many polls saw it. */
  readonly ours = new Map<string, number>();
  readonly polls: number[];
  private stopped = false;
  private loops: Promise<void>[] = [];
  /** A poll that failed ends its loop; stop() reports it (kept here so it is never an unhandled rejection). */
  private failure: unknown;
  private readonly clients: pg.Client[];

  constructor(
    adminUrls: readonly string[],
    private readonly databases: ReadonlySet<string>,
  ) {
    this.clients = adminUrls.map((u) => new pg.Client({ connectionString: u, application_name: 'secrets-activity-poller' }));
    this.polls = adminUrls.map(() => 0);
  }

  async start(): Promise<void> {
    for (const c of this.clients) await c.connect();
    this.loops = this.clients.map((c, i) => this.loop(c, i).catch((err: unknown) => void (this.failure ??= err)));
  }

  private async loop(client: pg.Client, i: number): Promise<void> {
    while (!this.stopped) {
      // A named (prepared) statement: parsed once, and about five times the polls of a simple query here.
      const r = await client.query<[string | null, string]>({ name: 'vecscale_poll', text: POLL_SQL, rowMode: 'array' });
      this.polls[i]!++;
      for (const [datname, query] of r.rows) {
        this.all.add(query);
        if (datname !== null && this.databases.has(datname)) this.ours.set(query, (this.ours.get(query) ?? 0) + 1);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    try {
      await Promise.all(this.loops);
    } finally {
      await Promise.all(this.clients.map((c) => c.end()));
    }
    if (this.failure !== undefined) throw this.failure;
  }
}

/** `password '…'` (or `"password" '…'`): a password written as a literal into a statement's text. */
const PASSWORD_LITERAL = /password"?\s+'/gi;
/** What may follow `password ` in a text sent to a database: only a placeholder, never a value. */
const PLACEHOLDER_AFTER = /^'?\{\{(secret|verifier):[a-z0-9_.]+\}\}/;

function assertNoPasswordLiteral(text: string): void {
  for (const m of text.matchAll(PASSWORD_LITERAL)) {
    const rest = text.slice(m.index! + m[0].length - 1);
    assert.match(rest, PLACEHOLDER_AFTER, `a password literal in a statement vecscale sent: ${text.slice(0, 200)}`);
  }
  if (/(CREATE|ALTER)\s+USER\s+MAPPING/i.test(text)) {
    assert.doesNotMatch(text, /password"?\s*'/i, `a user-mapping password literal in a statement vecscale sent: ${text.slice(0, 200)}`);
  }
}

// --- 1. pg_stat_activity -------------------------------------------------------------------------------------------

test('pg_stat_activity, polled without pause on all three clusters during 1 + 10 applies with --rotate-fdw-passwords, shows no wrapper password', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const dir = tempDir('vecscale-secact-poll-');
  // pod_a: a generated password, replaced by every --rotate-fdw-passwords; pod_b: a configured one (a canary),
  // "rotated" by giving the env a new value before each run.
  const file = writeTopology(dir, polled, { pod_a: { url: podA(polled) }, pod_b: { url: podB(polled), fdwPassword: true } }, collectionsFor(tag));
  const clusters = await testClusters();
  const poller = new ActivityPoller([clusters.primary, ...Object.values(clusters.secondaries)], new Set([polled.name]));

  const inForce = new Set<string>();
  const generated: string[] = [];
  const outputs: CliResult[] = [];
  let lastConfigured = '';
  await poller.start();
  try {
    for (let run = 0; run <= 10; run++) {
      const configured = canary(`poll${run}`);
      lastConfigured = configured;
      const args = ['apply', 'topology.yaml', '--auto-approve', ...(run > 0 ? ['--rotate-fdw-passwords'] : [])];
      const r = await vecscale(args, { cwd: dir, env: { ...file.env, VS_FDW_PW: configured } });
      outputs.push(r);
      assert.equal(r.code, 0, `run ${run}: ${r.stderr}`);
      const now = await mappingPasswords(polled);
      assert.equal(now.get('pod_b'), configured, `run ${run}: the mapping of pod_b holds the configured password`);
      const gen = now.get('pod_a');
      assert.ok(gen && gen.length >= 32, `run ${run}: a generated password on pod_a`);
      generated.push(gen);
      for (const s of now.values()) inForce.add(s);
    }
  } finally {
    await poller.stop();
  }
  assert.equal(new Set(generated).size, 11, 'every --rotate-fdw-passwords replaced the generated password');
  assert.equal(inForce.size, 22, 'eleven generated and eleven configured passwords to look for');
  t.diagnostic(`polls per cluster (primary, pod_a, pod_b): ${poller.polls.join(', ')}; distinct texts: ${poller.all.size} (vecscale's: ${poller.ours.size})`);
  for (const n of poller.polls) assert.ok(n >= 100, `the poller kept polling (${poller.polls.join(', ')} polls)`);

  // The poll proves something only if it saw vecscale's password path itself: the bound set_config, and the DO blocks
  // that build the password statements (user mappings on the primary, roles on the secondaries) from
  // vecscale.secret_<i>, and whole: pg_stat_activity cuts a text at track_activity_query_size (1 kB by default), and
  // these end with their closing dollar quote, so nothing past a cut could hide a password.
  const ours = [...poller.ours.keys()];
  const seen = (re: RegExp): number => [...poller.ours].reduce((n, [q, k]) => (re.test(q) ? n + k : n), 0);
  const mappingBlocks = seen(/^DO \$vecscale\$ BEGIN EXECUTE pg_catalog\.format\('(CREATE|ALTER) USER MAPPING [^]*vecscale\.secret_0[^]* END \$vecscale\$$/);
  const roleBlocks = seen(/^DO \$vecscale\$ BEGIN EXECUTE pg_catalog\.format\('(CREATE|ALTER) ROLE [^]*vecscale\.secret_0[^]* END \$vecscale\$$/);
  t.diagnostic(`polls that caught a password DO block: ${mappingBlocks} for a user mapping, ${roleBlocks} for a role`);
  assert.ok(ours.some((q) => q.includes('pg_catalog.set_config($1, $2, true)')), 'the poller saw the parameter-bound set_config');
  assert.ok(mappingBlocks > 0, 'the poller saw a DO block that sets a user-mapping password');
  assert.ok(roleBlocks > 0, 'the poller saw a DO block that sets a role password');

  for (const q of poller.all) assertAbsent(q, inForce, `pg_stat_activity.query (${q.slice(0, 80)}…)`);
  for (const q of ours) assertNoPasswordLiteral(q);
  assertOutputsClean(outputs, inForce);

  const settled = await vecscale(['plan', 'topology.yaml', '--detailed-exitcode'], { cwd: dir, env: { ...file.env, VS_FDW_PW: lastConfigured } });
  assert.equal(settled.code, 0, `converged after the rotations: ${settled.stderr}`);
});

// --- 2. Server log -------------------------------------------------------------------------------------------------

test("with log_statement = 'all' and log_parameter_max_length = -1, the server logs record vecscale's DDL but no wrapper password", async () => {
  const tag = randomBytes(3).toString('hex');
  const dir = tempDir('vecscale-secact-log-');
  for (const url of [logged.primary, ...Object.values(logged.secondaries)]) await logEverything(url, logged.name);
  const file = writeTopology(dir, logged, { pod_a: { url: podA(logged) }, pod_b: { url: podB(logged), fdwPassword: true } }, collectionsFor(tag));
  const marks = await markLogs();

  const secrets = new Set<string>();
  const outputs: CliResult[] = [];
  const apply = async (what: string, configured: string, ...more: string[]) => {
    const r = await vecscale(['apply', 'topology.yaml', '--auto-approve', ...more], { cwd: dir, env: { ...file.env, VS_FDW_PW: configured } });
    outputs.push(r);
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    const now = await mappingPasswords(logged);
    assert.equal(now.get('pod_b'), configured, `${what}: pod_b's mapping holds the configured password`);
    for (const s of now.values()) secrets.add(s);
    return now;
  };
  const first = canary('log1');
  const created = await apply('first apply', first);
  const rotated = await apply('apply --rotate-fdw-passwords', first, '--rotate-fdw-passwords');
  assert.notEqual(rotated.get('pod_a'), created.get('pod_a'), 'the generated password was rotated');
  const changed = await apply('apply with a new configured password', canary('log2'));
  assert.equal(changed.get('pod_a'), rotated.get('pod_a'), 'the generated password stayed');
  assert.equal(secrets.size, 4, 'two generated and two configured passwords were set');
  const settled = await vecscale(['plan', 'topology.yaml', '--detailed-exitcode'], { cwd: dir, env: { ...file.env, VS_FDW_PW: changed.get('pod_b')! } });
  assert.equal(settled.code, 0, settled.stderr);
  assertOutputsClean(outputs, secrets);

  const logs = logsSince(marks);
  for (const [port, text] of logs) assertAbsent(text, secrets, `the server log of the cluster on port ${port}`);
  // The logs were really recording this run's statements, bound parameters included.
  const primaryLog = logs.get(portOf(logged.primary))!;
  assert.match(primaryLog, new RegExp(`statement: CREATE FOREIGN TABLE [^\\n]*"docs_${tag}"`), "the primary's log has the wrappers' DDL");
  assert.match(logs.get(portOf(podA(logged)))!, new RegExp(`statement: CREATE TABLE [^\\n]*"docs_${tag}"`), "pod_a's log has the collection's DDL");
  assert.match(logs.get(portOf(podB(logged)))!, new RegExp(`statement: CREATE TABLE [^\\n]*"notes_${tag}"`), "pod_b's log has the collection's DDL");
  // …and the bound parameters with them: the last logged statement before each password statement is vecscale turning
  // statement logging off for it.
  assert.match(primaryLog, /DETAIL: {2}parameters: \$1 = 'log_statement', \$2 = 'none'/, 'bound parameters were logged in full');
});

// --- 3. Placeholders inside topology values --------------------------------------------------------------------

// The values of a secondary's URL that become options of the primary's foreign server are its host, port, dbname and
// sslmode. Only the database name can carry a placeholder and still be connected to by the CLI: a host with braces
// resolves nowhere (no unix sockets on the test clusters either), and the driver takes every sslmode but `disable`
// as "use SSL", which the test clusters do not offer. So: a name and a host that fail to connect (the secret must
// not show in the error), then real databases whose names carry the placeholders.
test('a {{secret:…}} placeholder in a database name or a host that does not exist: the run fails to connect and prints no password', async () => {
  const clusters = await testClusters();
  const [, clusterB] = Object.values(clusters.secondaries);
  const dir = tempDir('vecscale-secact-inj-fail-');
  const secret = canary('inj');
  const cases: Array<[string, string, RegExp]> = [
    ['database', withDatabase(clusterB!, 'x{{secret:pod_b.fdw_password}}{{verifier:pod_b.fdw_password}}'), /database does not exist/],
    [
      'host',
      (() => {
        const u = new URL(podB(inj));
        return u.toString().replace(u.host, `${encodeURIComponent('x{{secret:pod_b.fdw_password}}{{verifier:pod_b.fdw_password}}')}:${u.port}`);
      })(),
      /host not found|host name could not be resolved|connection timed out/,
    ],
  ];
  for (const [what, url, reason] of cases) {
    // Both wrapper passwords are configured (the same canary), so the placeholder's secret exists in this run.
    const file = writeTopology(dir, inj, { pod_a: { url: podA(inj), fdwPassword: true }, pod_b: { url, fdwPassword: true } }, collectionsFor(injTag));
    const env = { ...file.env, VS_FDW_PW: secret };
    const outputs = [
      await vecscale(['plan', 'topology.yaml'], { cwd: dir, env }),
      await vecscale(['plan', 'topology.yaml', '--json'], { cwd: dir, env }),
      await vecscale(['apply', 'topology.yaml', '--auto-approve'], { cwd: dir, env }),
    ];
    for (const r of outputs) {
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /cannot connect to secondary pod_b/, what);
      assert.match(r.stdout + r.stderr, reason, what);
    }
    assertOutputsClean(outputs, [secret]);
  }
  const [servers] = await sql<{ n: number }>(inj.primary, 'SELECT count(*)::int AS n FROM pg_catalog.pg_foreign_server');
  assert.equal(servers!.n, 0, 'nothing was applied on the primary');
});

test('a database literally named x{{secret:pod_b.fdw_password}}: plan, saved plan, apply and rotation keep the name as text, and no password leaks', async () => {
  const clusters = await testClusters();
  const [clusterA, clusterB] = Object.values(clusters.secondaries);
  await sql(clusterA!, `CREATE DATABASE "${INJ_VERIFIER_DB}"`);
  await sql(clusterB!, `CREATE DATABASE "${INJ_SECRET_DB}"`);
  const urlA = withDatabase(clusterA!, INJ_VERIFIER_DB);
  const urlB = withDatabase(clusterB!, INJ_SECRET_DB);
  await logEverything(inj.primary, inj.name);
  await logEverything(clusterA!, INJ_VERIFIER_DB);
  await logEverything(clusterB!, INJ_SECRET_DB);

  const dir = tempDir('vecscale-secact-inj-');
  // Generated passwords (the case): both placeholders name a secret that this apply generates.
  const file = writeTopology(dir, inj, { pod_a: { url: urlA }, pod_b: { url: urlB } }, collectionsFor(injTag));
  const marks = await markLogs();
  const outputs: CliResult[] = [];
  const run = async (args: string[], expect: number) => {
    const r = await vecscale(args, { cwd: dir, env: file.env });
    outputs.push(r);
    assert.equal(r.code, expect, `vecscale ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  // The plan shows the names as written, inside their literals: neither expanded nor redacted.
  const plan = await run(['plan', 'topology.yaml'], 0);
  assert.ok(plan.stderr.includes(`"dbname" '${INJ_SECRET_DB}'`), `the plan shows the dbname option as written:\n${plan.stderr}`);
  assert.ok(plan.stderr.includes(`"dbname" '${INJ_VERIFIER_DB}'`), 'the plan shows the other dbname option as written');
  const planJson = await run(['plan', 'topology.yaml', '--json'], 0);
  assert.ok(planJson.stdout.includes(INJ_SECRET_DB), 'plan --json carries the dbname as written');
  await run(['plan', 'topology.yaml', '--out', 'plan.json'], 0);
  const saved = readFileSync(join(dir, 'plan.json'), 'utf8');
  assert.ok(saved.includes(INJ_SECRET_DB), 'the saved plan carries the dbname as written');
  await run(['apply', 'plan.json'], 0);

  const secrets = new Set<string>();
  const collect = async () => {
    const now = await mappingPasswords(inj);
    assert.deepEqual([...now.keys()], ['pod_a', 'pod_b']);
    for (const s of now.values()) secrets.add(s);
  };
  await collect();
  await run(['apply', 'topology.yaml', '--auto-approve', '--rotate-fdw-passwords'], 0);
  await collect();
  assert.equal(secrets.size, 4, 'two generated passwords, then two rotated ones');
  await run(['plan', 'topology.yaml', '--detailed-exitcode'], 0);

  // The primary's servers carry the database names as the text they are.
  const servers = await sql<{ srvname: string; srvoptions: string[] }>(
    inj.primary,
    "SELECT srvname, srvoptions FROM pg_catalog.pg_foreign_server WHERE srvname IN ('pod_a', 'pod_b') ORDER BY srvname",
  );
  assert.equal(servers.length, 2);
  assert.ok(servers[0]!.srvoptions.includes(`dbname=${INJ_VERIFIER_DB}`), `pod_a srvoptions: ${servers[0]!.srvoptions.join(', ')}`);
  assert.ok(servers[1]!.srvoptions.includes(`dbname=${INJ_SECRET_DB}`), `pod_b srvoptions: ${servers[1]!.srvoptions.join(', ')}`);
  for (const s of servers) assertAbsent(s.srvoptions.join('\n'), secrets, `srvoptions of ${s.srvname}`);
  // And they reach those databases: a row written through the primary lands in the oddly named database.
  await sql(inj.primary, `INSERT INTO public."notes_${injTag}" (id, embedding, metadata) VALUES ('n1', '[1,0,1]', '{}')`);
  const [landed] = await sql<{ n: number }>(urlB, `SELECT count(*)::int AS n FROM vecs."notes_${injTag}"`);
  assert.equal(landed!.n, 1);

  assertOutputsClean(outputs, secrets);
  for (const [p, text] of filesUnder(dir)) assertAbsent(text, secrets, p);
  const logs = logsSince(marks);
  for (const [port, text] of logs) assertAbsent(text, secrets, `the server log of the cluster on port ${port}`);
  // The primary's log recorded the CREATE SERVER with the dbname literal untouched (statement logging was on).
  assert.ok(
    new RegExp(`statement: CREATE SERVER [^\\n]*'${INJ_SECRET_DB.replace(/[{}.]/g, '\\$&')}'`).test(logs.get(portOf(inj.primary))!),
    "the primary's log has CREATE SERVER with the dbname as written",
  );
});
