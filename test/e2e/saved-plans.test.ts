/**
 * End to end: saved plans (`plan --out plan.json`, `apply plan.json`) and `vecscale destroy`, with the real CLI on
 * the test clusters — fresh plans apply without a prompt, stale ones (a hand edit, a topology edit) are refused with
 * exit 5 and execute nothing, destructive allowances travel in the plan, destroy removes only what vecscale made and
 * never cascades into what it does not manage.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';
import { freshDatabases, ROOT, sql } from '../harness.js';
import { topologyFile, type TopologyFile } from '../topology-files.js';

const noStack = (r: CliResult) => assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/);

const regclass = async (url: string, name: string): Promise<string | null> =>
  (await sql<{ t: string | null }>(url, `SELECT to_regclass($1)::text AS t`, [name]))[0]!.t;

const columnsOf = async (url: string, schema: string, table: string): Promise<string[]> =>
  (await sql<{ c: string }>(url, `SELECT column_name AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, table])).map((r) => r.c);

const count = async (url: string, text: string, values: unknown[] = []): Promise<number> =>
  (await sql<{ n: number }>(url, `SELECT (${text})::int AS n`, values))[0]!.n;

const rowsIn = (url: string, table: string) => count(url, `SELECT count(*) FROM ${table}`);

// ───────────────────────────── saved plans ─────────────────────────────

const DOCS = (columns = '') => `  docs:
    secondary: pod_a
    dimension: 3
${columns ? `    columns: { ${columns} }\n` : ''}`;
const IMAGES = (query = '') => `  images:
    secondary: pod_b
    dimension: 3
${query ? `    query: { ${query} }\n` : ''}`;

const saved = await freshDatabases('e2e_saved');
const [sPodA, sPodB] = Object.values(saved.secondaries) as [string, string];
const sFile: TopologyFile = topologyFile(saved, DOCS() + IMAGES());
const planPath = join(sFile.dir, 'plan.json');

/** The CLI in the topology's folder (relative `topology.yaml` and `plan.json`), with the file's env. */
const sRun = (args: string[], cwd = sFile.dir) => vecscale(args, { env: sFile.env, cwd });
const readPlan = (path = planPath) => JSON.parse(readFileSync(path, 'utf8')) as {
  vecscalePlan: number;
  topologyFile: string;
  topologyHash: string;
  options: { allowDestructive: string[] | 'all' | null; destroy: boolean };
  fingerprints: Record<string, Record<string, string>>;
  plan: { databases: Array<{ database: string; steps: unknown[] }>; blockers: unknown[] };
};

test('plan --out writes a 0600 plan without secrets; apply plan.json without a terminal applies it with no prompt and converges', async () => {
  const made = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stderr, /Saved the plan to plan\.json \(mode 0600\)/);
  assert.equal(statSync(planPath).mode & 0o777, 0o600);

  const text = readFileSync(planPath, 'utf8');
  const passwords = Object.values(sFile.env);
  assert.ok(passwords.length === 3 && passwords.every((p) => p.length > 0));
  for (const pw of passwords) {
    assert.ok(!text.includes(pw) && !text.includes(encodeURIComponent(pw)), 'an admin password is in plan.json');
  }
  const doc = readPlan();
  assert.equal(doc.vecscalePlan, 1);
  assert.equal(doc.topologyFile, 'topology.yaml');
  assert.match(doc.topologyHash, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(Object.keys(doc.fingerprints).sort(), ['pod_a', 'pod_b', 'primary']);
  for (const [db, fps] of Object.entries(doc.fingerprints)) {
    assert.ok(Object.keys(fps).length > 0, `fingerprints of ${db}`);
    for (const v of Object.values(fps)) assert.match(v, /^(absent|sha256:[0-9a-f]{64})$/);
  }
  assert.deepEqual(doc.plan.databases.map((d) => d.database), ['pod_a', 'pod_b', 'primary']);
  assert.ok(doc.plan.databases.every((d) => d.steps.length > 0));
  assert.deepEqual(doc.plan.blockers, []);
  assert.equal(doc.options.allowDestructive, null);
  assert.equal(doc.options.destroy, false);
  assert.equal(await count(saved.primary, 'SELECT count(*) FROM pg_foreign_server'), 0, 'plan --out changes nothing');

  const applied = await sRun(['apply', 'plan.json']);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stderr, /Applying the saved plan plan\.json/);
  assert.match(applied.stderr, /Apply complete: \d+ created/);
  assert.doesNotMatch(applied.stderr, /--auto-approve|needs approval/);
  assert.equal(await regclass(sPodA, 'vecs.docs'), 'vecs.docs');
  assert.equal(await regclass(saved.primary, 'public.images'), 'images');

  // The wrapper passwords vecscale generated while applying are nowhere in the plan either.
  const mappings = await sql<{ o: string[] }>(saved.primary, `SELECT umoptions AS o FROM pg_user_mappings WHERE srvname IN ('pod_a', 'pod_b')`);
  assert.equal(mappings.length, 2);
  for (const m of mappings) {
    const pw = m.o.find((x) => x.startsWith('password='))?.slice('password='.length);
    assert.ok(pw, 'the user mapping has a password');
    assert.ok(!text.includes(pw), 'a wrapper password is in plan.json');
  }

  const after = await sRun(['plan', 'topology.yaml', '--detailed-exitcode']);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stderr, /No changes\./);
});

test('a saved plan made with no changes applies with exit 0 and does nothing (also from another folder, by absolute path)', async () => {
  const made = await sRun(['plan', 'topology.yaml', '--out', 'noop.json']);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stderr, /No changes\./);
  const noop = join(sFile.dir, 'noop.json');
  assert.ok(readPlan(noop).plan.databases.every((d) => d.steps.length === 0));
  const servers = await sql(saved.primary, `SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY srvname`);
  const applied = await sRun(['apply', noop], ROOT);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stderr, /No changes\./);
  assert.doesNotMatch(applied.stderr, /Apply complete/);
  assert.deepEqual(await sql(saved.primary, `SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY srvname`), servers);
});

test('apply plan.json --allow-destructive exits 6: the option belongs to plan --out', async () => {
  const r = await sRun(['apply', 'plan.json', '--allow-destructive', 'x']);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /--allow-destructive .*belongs? to `vecscale plan --out`/);
  noStack(r);
});

test('a corrupt plan file exits 6 with a plain message and no stack trace', async () => {
  const cases: Array<[string, RegExp]> = [
    ['{"vecscalePlan": 99}\n', /bad\.json: not a saved plan of this vecscale version \(make it again with vecscale plan --out/],
    ['{ "vecscalePlan": 1, oops\n', /bad\.json: not a saved plan \(invalid JSON: /],
    ['{}', /bad\.json: not a saved plan of this vecscale version/],
  ];
  for (const [content, message] of cases) {
    writeFileSync(join(sFile.dir, 'bad.json'), content);
    const r = await sRun(['apply', 'bad.json']);
    assert.equal(r.code, 6, `${content}: ${r.stderr}`);
    assert.match(r.stderr, message);
    noStack(r);
    const j = await sRun(['apply', 'bad.json', '--json']);
    assert.equal(j.code, 6);
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'config');
  }
});

test('a saved plan is refused (exit 5, the object named, nothing executed) after a hand edit of the primary', async () => {
  sFile.write(DOCS('lang: text') + IMAGES());

  // 1. A server option changed by hand.
  const made = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stderr, /view public\.docs/);
  await sql(saved.primary, `ALTER SERVER pod_a OPTIONS (SET connect_timeout '5')`);
  const stale = await sRun(['apply', 'plan.json']);
  assert.equal(stale.code, 5, stale.stderr);
  assert.match(stale.stderr, /the saved plan no longer matches; nothing was applied/);
  assert.match(stale.stderr, /primary: server pod_a changed since the plan was made/);
  assert.match(stale.stderr, /hint: make a new plan/);
  noStack(stale);
  assert.ok(!(await columnsOf(sPodA, 'vecscale', 'docs')).includes('lang'), 'the new column reached the secondary');
  assert.ok(!(await columnsOf(saved.primary, 'public', 'docs')).includes('lang'), 'the new column reached the primary');
  const asJson = await sRun(['apply', 'plan.json', '--json']);
  assert.equal(asJson.code, 5);
  const err = (JSON.parse(asJson.stdout) as { error: { code: string; meta: { changes: string[] } } }).error;
  assert.equal(err.code, 'stale_plan');
  assert.ok(err.meta.changes.some((c) => /server pod_a/.test(c)));

  // 2. A managed view redefined by hand with the same columns (the plan itself changes this view).
  const remade = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(remade.code, 0, remade.stderr);
  assert.match(remade.stderr, /server pod_a/, 'the new plan repairs the server');
  const [def] = await sql<{ d: string }>(saved.primary, `SELECT pg_get_viewdef('public.docs'::regclass) AS d`);
  const before = await columnsOf(saved.primary, 'public', 'docs');
  await sql(saved.primary, `CREATE OR REPLACE VIEW public.docs AS SELECT * FROM (${def!.d.replace(/;\s*$/, '')}) s`);
  assert.deepEqual(await columnsOf(saved.primary, 'public', 'docs'), before, 'same columns');
  const staleView = await sRun(['apply', 'plan.json']);
  assert.equal(staleView.code, 5, staleView.stderr);
  assert.match(staleView.stderr, /primary: view public\.docs changed since the plan was made/);
  assert.doesNotMatch(staleView.stderr, /Apply complete/);
  noStack(staleView);
  assert.ok(!(await columnsOf(sPodA, 'vecscale', 'docs')).includes('lang'));
  const [server] = await sql<{ o: string[] }>(saved.primary, `SELECT srvoptions AS o FROM pg_foreign_server WHERE srvname = 'pod_a'`);
  assert.ok(server!.o.includes('connect_timeout=5'), 'the server was not repaired either');

  // 3. A secondary's view redefined by hand, in a database where the plan changes nothing.
  const third = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(third.code, 0, third.stderr);
  const [defB] = await sql<{ d: string }>(sPodB, `SELECT pg_get_viewdef('vecscale.images'::regclass) AS d`);
  await sql(sPodB, `CREATE OR REPLACE VIEW vecscale.images WITH (security_invoker = true) AS SELECT * FROM (${defB!.d.replace(/;\s*$/, '')}) s`);
  const staleB = await sRun(['apply', 'plan.json']);
  assert.equal(staleB.code, 5, staleB.stderr);
  assert.match(staleB.stderr, /pod_b: view vecscale\.images changed since the plan was made/);
  assert.ok(!(await columnsOf(sPodA, 'vecscale', 'docs')).includes('lang'));

  // A fresh plan of the same state applies, repairing everything.
  const fresh = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(fresh.code, 0, fresh.stderr);
  const applied = await sRun(['apply', 'plan.json']);
  assert.equal(applied.code, 0, applied.stderr);
  assert.deepEqual(await columnsOf(sPodA, 'vecscale', 'docs'), ['id', 'embedding', 'metadata', 'lang']);
  assert.ok((await columnsOf(saved.primary, 'public', 'docs')).includes('lang'));
  const converged = await sRun(['plan', 'topology.yaml', '--detailed-exitcode']);
  assert.equal(converged.code, 0, converged.stderr);
});

test('a saved plan is refused (exit 5, naming the topology, nothing executed) after the topology file is edited', async () => {
  const planned = DOCS('lang: text, year: integer') + IMAGES();
  sFile.write(planned);
  const made = await sRun(['plan', 'topology.yaml', '--out', 'plan.json']);
  assert.equal(made.code, 0, made.stderr);

  const edits: Array<[string, string]> = [
    ['ef_search changed', DOCS('lang: text, year: integer') + IMAGES('ef_search: 40')],
    ['a collection added', `${planned}  notes:\n    secondary: pod_b\n    dimension: 3\n`],
  ];
  for (const [what, collections] of edits) {
    sFile.write(collections);
    const r = await sRun(['apply', 'plan.json']);
    assert.equal(r.code, 5, `${what}: ${r.stderr}`);
    assert.match(r.stderr, /the topology file changed since the plan was made/, what);
    assert.doesNotMatch(r.stderr, /Apply complete/);
    noStack(r);
    assert.ok(!(await columnsOf(sPodA, 'vecscale', 'docs')).includes('year'), `${what}: the plan was executed`);
    assert.equal(await regclass(sPodB, 'vecs.notes'), null, `${what}: the new collection was created`);
  }

  // Put back as planned, the file matches again and the plan applies.
  sFile.write(planned);
  const applied = await sRun(['apply', 'plan.json']);
  assert.equal(applied.code, 0, applied.stderr);
  assert.deepEqual(await columnsOf(sPodA, 'vecscale', 'docs'), ['id', 'embedding', 'metadata', 'lang', 'year']);
});

test('a saved destructive plan carries its allowance; without it plan --out and apply of that file exit 3', async () => {
  await sql(saved.primary, `INSERT INTO public.images (id, embedding, metadata) VALUES ('a', '[1,0,0]', '{}'), ('b', '[0,1,0]', '{}'), ('c', '[0,0,1]', '{}')`);
  assert.equal(await rowsIn(sPodB, 'vecs.images'), 3);
  sFile.write(DOCS('lang: text, year: integer'));

  const blocked = await sRun(['plan', 'topology.yaml', '--out', 'blocked.json']);
  assert.equal(blocked.code, 3, blocked.stderr);
  assert.match(blocked.stderr, /--allow-destructive images/);
  const blockedPlan = join(sFile.dir, 'blocked.json');
  assert.ok(existsSync(blockedPlan), 'a blocked plan is saved too (applying it is refused)');
  assert.ok(readPlan(blockedPlan).plan.blockers.length > 0);
  const refused = await sRun(['apply', 'blocked.json']);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /--allow-destructive images/);
  assert.match(refused.stderr, /Nothing applied/);
  assert.equal(await rowsIn(sPodB, 'vecs.images'), 3);
  assert.equal(await regclass(saved.primary, 'public.images'), 'images');

  const made = await sRun(['plan', 'topology.yaml', '--out', 'plan.json', '--allow-destructive', 'images']);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stderr, /3 rows lost/);
  assert.deepEqual(readPlan().options.allowDestructive, ['images']);
  assert.equal(await rowsIn(sPodB, 'vecs.images'), 3, 'plan --out drops nothing');

  const applied = await sRun(['apply', 'plan.json']);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stderr, /Apply complete: .*[1-9]\d* dropped/);
  assert.equal(await regclass(sPodB, 'vecs.images'), null);
  assert.equal(await regclass(sPodB, 'vecscale.images'), null);
  assert.equal(await regclass(saved.primary, 'public.images'), null);
  assert.equal(await regclass(saved.primary, 'vecscale_remote.images'), null);
  assert.equal(await regclass(sPodA, 'vecs.docs'), 'vecs.docs');
  const converged = await sRun(['plan', 'topology.yaml', '--detailed-exitcode']);
  assert.equal(converged.code, 0, converged.stderr);
});

// ───────────────────────────── destroy ─────────────────────────────

const gone = await freshDatabases('e2e_destroy');
const [dPodA, dPodB] = Object.values(gone.secondaries) as [string, string];
const BOTH = (protect = false) => `  docs:
    secondary: pod_a
    dimension: 3
    columns: { lang: text }
${protect ? '    protect: true\n' : ''}  images:
    secondary: pod_b
    dimension: 3
`;
const dFile: TopologyFile = topologyFile(gone, BOTH());
const dRun = (args: string[]) => vecscale(args, { env: dFile.env, cwd: dFile.dir });

async function applyAndFill(): Promise<void> {
  const r = await dRun(['apply', 'topology.yaml', '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  await sql(gone.primary, `SELECT public.upsert_docs('d1', '[1,0,0]', '{"lang": "en"}'), public.upsert_docs('d2', '[0,1,0]', '{"lang": "de"}')`);
  await sql(gone.primary, `SELECT public.upsert_images('i1', '[1,0,0]', '{}')`);
}

/** What of vecscale's is on the primary: wrapper objects by name, and anything carrying its marker comment. */
async function primaryLeftovers(): Promise<Record<string, number>> {
  return {
    servers: await count(gone.primary, `SELECT count(*) FROM pg_foreign_server WHERE srvname IN ('pod_a', 'pod_b') OR srvname LIKE 'pod\\_%\\_q%'`),
    views: await count(gone.primary, `SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname IN ('docs', 'images')`),
    matchFunctions: await count(gone.primary, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'match\\_%' OR proname LIKE 'upsert\\_%'`),
    foreignTables: await count(gone.primary, `SELECT count(*) FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('vecscale_remote', 'vecscale_write')`),
    markedRelations: await count(gone.primary, `SELECT count(*) FROM pg_class WHERE obj_description(oid, 'pg_class') LIKE 'managed by vecscale%'`),
    markedFunctions: await count(gone.primary, `SELECT count(*) FROM pg_proc WHERE obj_description(oid, 'pg_proc') LIKE 'managed by vecscale%'`),
  };
}
const NOTHING_LEFT = { servers: 0, views: 0, matchFunctions: 0, foreignTables: 0, markedRelations: 0, markedFunctions: 0 };

async function everythingInPlace(): Promise<void> {
  assert.equal(await count(gone.primary, `SELECT count(*) FROM pg_foreign_server WHERE srvname IN ('pod_a', 'pod_b')`), 2);
  assert.equal(await regclass(gone.primary, 'public.docs'), 'docs');
  assert.equal(await regclass(gone.primary, 'vecscale_remote.docs'), 'vecscale_remote.docs');
  assert.equal(await regclass(gone.primary, 'public.images'), 'images');
  assert.equal(await count(gone.primary, `SELECT count(*) FROM pg_proc WHERE proname IN ('match_docs', 'match_images')`), 2);
  assert.equal(await rowsIn(dPodA, 'vecs.docs'), 2);
  assert.equal(await rowsIn(dPodB, 'vecs.images'), 1);
  assert.equal(await regclass(dPodA, 'vecscale.docs'), 'vecscale.docs');
}

/**
 * Every `destroy` of a topology whose primary has wrapper servers ends in exit 1 before planning anything:
 * src/plan/sql.ts has no `drop` builder for the kinds `server` and `user_mapping` (both in the planner's DROPPABLE),
 * so toStep throws. Remove the todo marks once servers and user mappings can be dropped.
 */

test('destroy without --auto-approve and without a terminal exits 7 and drops nothing', async () => {
  await applyAndFill();
  const r = await dRun(['destroy', 'topology.yaml']);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stderr, /destroy needs approval.*--auto-approve/);
  noStack(r);
  await everythingInPlace();
});

test("destroy --auto-approve removes the primary's wrappers and keeps the collections; a second destroy has nothing to do", async () => {
  await applyAndFill();
  const r = await dRun(['destroy', 'topology.yaml', '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Destroy complete: 0 created, 0 changed, 0 replaced, [1-9]\d* dropped\./);
  assert.deepEqual(await primaryLeftovers(), NOTHING_LEFT);
  // The secondaries keep their collections, rows and views (vecs keeps working on them).
  assert.equal(await rowsIn(dPodA, 'vecs.docs'), 2);
  assert.equal(await rowsIn(dPodB, 'vecs.images'), 1);
  assert.equal(await regclass(dPodA, 'vecscale.docs'), 'vecscale.docs');
  assert.equal(await regclass(dPodB, 'vecscale.images'), 'vecscale.images');

  const again = await dRun(['destroy', 'topology.yaml', '--auto-approve']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /No changes\./);
  assert.doesNotMatch(again.stderr, /Destroy complete/);
});

test('destroy --allow-destructive all: refused (exit 3, nothing dropped anywhere) while a collection is protected, then drops the collections too', async () => {
  await applyAndFill();
  await everythingInPlace();

  dFile.write(BOTH(true));
  try {
    const refused = await dRun(['destroy', 'topology.yaml', '--allow-destructive', 'all', '--auto-approve']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /collection docs is protected/);
    assert.match(refused.stderr, /Nothing applied/);
    noStack(refused);
    await everythingInPlace();
  } finally {
    dFile.write(BOTH());
  }

  const r = await dRun(['destroy', 'topology.yaml', '--allow-destructive', 'all', '--auto-approve']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await primaryLeftovers(), NOTHING_LEFT);
  for (const [url, c] of [[dPodA, 'docs'], [dPodB, 'images']] as const) {
    assert.equal(await regclass(url, `vecs.${c}`), null, `vecs.${c}`);
    assert.equal(await regclass(url, `vecscale.${c}`), null, `vecscale.${c}`);
    assert.equal(await count(url, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'vecs'`), 0);
  }
  const again = await dRun(['destroy', 'topology.yaml', '--allow-destructive', 'all', '--auto-approve']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /No changes\./);
});

test('destroy --allow-destructive all never drops objects vecscale did not create', async () => {
  await applyAndFill();
  await sql(dPodA, `CREATE TABLE vecs.mine (id int)`);
  await sql(gone.primary, `CREATE VIEW public.mine AS SELECT 1 AS x`);
  await sql(gone.primary, `CREATE SERVER other_server FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'elsewhere')`);
  try {
    await sql(dPodA, `INSERT INTO vecs.mine VALUES (1)`);
    await sql(gone.primary, `CREATE USER MAPPING FOR CURRENT_USER SERVER other_server OPTIONS (user 'someone')`);

    const r = await dRun(['destroy', 'topology.yaml', '--allow-destructive', 'all', '--auto-approve']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /mine|other_server/);
    assert.equal(await regclass(dPodA, 'vecs.mine'), 'vecs.mine');
    assert.equal(await rowsIn(dPodA, 'vecs.mine'), 1);
    assert.equal(await regclass(gone.primary, 'public.mine'), 'mine');
    assert.equal(await count(gone.primary, `SELECT count(*) FROM pg_foreign_server WHERE srvname = 'other_server'`), 1);
    assert.equal(await count(gone.primary, `SELECT count(*) FROM pg_user_mappings WHERE srvname = 'other_server'`), 1);
    // vecscale's own objects went.
    assert.deepEqual(await primaryLeftovers(), NOTHING_LEFT);
    assert.equal(await regclass(dPodA, 'vecs.docs'), null);
  } finally {
    await sql(dPodA, `DROP TABLE IF EXISTS vecs.mine`);
    await sql(gone.primary, `DROP VIEW IF EXISTS public.mine`);
    await sql(gone.primary, `DROP SERVER IF EXISTS other_server CASCADE`);
  }
});

const REPORT = `CREATE OR REPLACE VIEW public.report AS SELECT count(*) AS n FROM public.docs`;

test('a collection removed from the file whose API view has a dependant outside the plan: apply exits 3 naming it, no cascade, nothing dropped', async () => {
  await applyAndFill();
  await sql(gone.primary, REPORT);
  dFile.write(`  images:
    secondary: pod_b
    dimension: 3
`);
  try {
    // --allow-destructive docs: the rows may go, so only the dependant stands in the way.
    const applied = await dRun(['apply', 'topology.yaml', '--auto-approve', '--allow-destructive', 'docs']);
    assert.equal(applied.code, 3, applied.stderr);
    assert.match(applied.stderr, /view public\.docs/);
    assert.match(applied.stderr, /public\.report depends on it, and vecscale does not cascade/);
    assert.match(applied.stderr, /Nothing applied/);
    noStack(applied);
    await everythingInPlace();
    assert.equal(await regclass(gone.primary, 'public.report'), 'report');

    // The same as a saved plan: plan --out exits 3, and so does applying what it wrote.
    const made = await dRun(['plan', 'topology.yaml', '--out', 'plan.json', '--allow-destructive', 'docs']);
    assert.equal(made.code, 3, made.stderr);
    assert.match(made.stderr, /public\.report depends on it/);
    const savedApply = await dRun(['apply', 'plan.json']);
    assert.equal(savedApply.code, 3, savedApply.stderr);
    assert.match(savedApply.stderr, /public\.report/);
    await everythingInPlace();
    assert.equal((await sql<{ n: number }>(gone.primary, `SELECT n::int AS n FROM public.report`))[0]!.n, 2);
  } finally {
    dFile.write(BOTH());
    await sql(gone.primary, `DROP VIEW IF EXISTS public.report`);
  }
});

test('destroy with a dependant outside the plan on a managed API view: exit 3 naming it, no cascade, nothing dropped', async () => {
  await applyAndFill();
  await sql(gone.primary, REPORT);
  try {
    const destroyed = await dRun(['destroy', 'topology.yaml', '--auto-approve']);
    assert.equal(destroyed.code, 3, destroyed.stderr);
    assert.match(destroyed.stderr, /public\.report depends on it, and vecscale does not cascade/);
    noStack(destroyed);
    await everythingInPlace();
    assert.equal((await sql<{ n: number }>(gone.primary, `SELECT n::int AS n FROM public.report`))[0]!.n, 2);
  } finally {
    await sql(gone.primary, `DROP VIEW IF EXISTS public.report`);
  }

  // Once the dependant is gone, destroy goes ahead.
  const ok = await dRun(['destroy', 'topology.yaml', '--auto-approve']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await primaryLeftovers(), NOTHING_LEFT);
  assert.equal(await rowsIn(dPodA, 'vecs.docs'), 2);
});
