/**
 * Issue 13, a hostile reviewer's attacks on a move's machinery, on Supabase-shaped databases whose pods also carry
 * database-wide default privileges for `postgres` (ALL on tables, sequences and functions to anon, authenticated and
 * service_role: what Supabase grants in `public`, here for every schema, the worst case).
 *
 * Each move is held just before its cutover (a transaction holds ACCESS SHARE on public.<c> on the primary, so the
 * cutover's lock request times out and is retried) while the flows are live: publication, slot, subscription,
 * staging table and beacons across databases, change-log trigger and log inside one. The attacks run in that
 * window; then the lock goes, the cutover runs, and the rows are compared exactly. Attackers: anon and the others
 * through `SET ROLE`, PostgREST's request shapes (test/supabase.ts), and the wrapper role writing straight into the
 * source table on its pod (what a direct vecs client may do).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { belongsSql } from '../../src/move/sql.js';
import { flowName, replicationName } from '../../src/move/names.js';
import { sql, testClusters } from '../harness.js';
import { dropReplicationObjects, MoveWriter, replicationLeftovers } from '../move-writer.js';
import { type Dbs, Rest, supabaseDatabases } from '../supabase.js';
import { fdwUserFor, topologyFile, type TopologyFile } from '../topology-files.js';

// Registered before supabaseDatabases' own after(): replication objects would make its DROP DATABASE fail.
const clusters = await testClusters();
const admins = [clusters.primary, ...Object.values(clusters.secondaries)];
const names: string[] = [];
after(async () => {
  for (const n of names) await dropReplicationObjects(admins, n);
});

const EXTRA = 'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n';
const API = ['anon', 'authenticated', 'service_role'] as const;
const PASSWORD = decodeURIComponent(new URL(clusters.primary).password);

/** Supabase-shaped databases whose pods' default privileges give everything `postgres` creates to the API roles. */
async function hostileDatabases(prefix: string): Promise<Dbs> {
  const dbs = await supabaseDatabases(prefix);
  names.push(dbs.name);
  for (const url of Object.values(dbs.secondaries)) {
    for (const kind of ['TABLES', 'SEQUENCES', 'FUNCTIONS']) {
      await sql(url, `ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON ${kind} TO anon, authenticated, service_role`);
    }
  }
  return dbs;
}

const single = (pod: string) => `secondary: ${pod}`;
const sharded = (pods: string[], partitions: number) => `shards: [${pods.join(', ')}]\n    partitions: ${partitions}`;

class Layout {
  readonly file: TopologyFile;
  private placement: Record<string, { where: string; dimension: number }>;
  constructor(readonly dbs: Dbs, placement: Record<string, { where: string; dimension: number }>) {
    this.placement = { ...placement };
    this.file = topologyFile(dbs, this.render(), EXTRA);
  }
  private render(): string {
    return Object.entries(this.placement)
      .map(([c, p]) => `  ${c}:\n    ${p.where}\n    dimension: ${p.dimension}\n    index: { method: none }\n`)
      .join('');
  }
  place(collection: string, where: string): void {
    this.placement[collection] = { ...this.placement[collection]!, where };
    this.file.write(this.render());
  }
  get podA(): string {
    return Object.values(this.dbs.secondaries)[0]!;
  }
  get podB(): string {
    return Object.values(this.dbs.secondaries)[1]!;
  }
  get fdw(): string {
    return fdwUserFor(this.dbs);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vec = (dimension: number, seed: number) => `[${Array.from({ length: dimension }, (_, i) => ((seed * 31 + i * 7) % 97) / 97).join(',')}]`;

/** Rows id0..id<n-1> through the primary's API view. */
async function seed(primary: string, collection: string, prefix: string, n: number, dimension: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await sql(primary, `INSERT INTO public.${collection} (id, embedding, metadata) VALUES ($1, $2, $3)`, [`${prefix}${i}`, vec(dimension, i), JSON.stringify({ i })]);
  }
}

type Rows = Map<string, string>;
const asMap = (rows: Array<{ id: string; v: string; m: unknown }>): Rows => new Map(rows.map((r) => [r.id, `${r.v} ${JSON.stringify(r.m)}`]));
const throughPrimary = async (primary: string, c: string): Promise<Rows> =>
  asMap(await sql(primary, `SELECT id, embedding::text AS v, metadata AS m FROM public.${c}`));
/** The rows of the collection's tables on the pods, for the layout `parts` (pod url, table). */
async function onPods(parts: ReadonlyArray<readonly [string, string]>): Promise<Rows> {
  const out: Array<{ id: string; v: string; m: unknown }> = [];
  for (const [url, t] of parts) out.push(...(await sql<{ id: string; v: string; m: unknown }>(url, `SELECT id, vec::text AS v, metadata AS m FROM vecs.${t}`)));
  assert.equal(new Set(out.map((r) => r.id)).size, out.length, 'no id twice');
  return asMap(out);
}

interface Held {
  readonly result: Promise<Awaited<ReturnType<typeof apply>> | Error>;
  readonly events: ProgressEvent[];
  /** Lets the cutover through. */
  release(): Promise<void>;
}

/**
 * Starts an apply of `layout` with the cutover of `collection` held back (ACCESS SHARE on public.<c> on the
 * primary), and resolves once the cutover has been asked for: every flow of the move is live then.
 */
async function holdBeforeCutover(layout: Layout, collection: string): Promise<Held> {
  const blocker = new pg.Client({ connectionString: layout.dbs.primary });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query(`LOCK TABLE public.${collection} IN ACCESS SHARE MODE`);
  const events: ProgressEvent[] = [];
  let cutover = false;
  const result = apply(layout.file.load(), {
    approve: async () => true,
    events: { onProgress: (e) => { events.push(e); if (e.type === 'step-started' && e.id === `move:${collection}:cutover`) cutover = true; } },
  }).catch((e: Error) => e);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end().catch(() => undefined);
  };
  for (let i = 0; !cutover; i++) {
    const early = await Promise.race([result, sleep(50).then(() => undefined)]);
    if (early !== undefined || i > 2400) {
      await release();
      const steps = events.filter((e) => e.type !== 'progress').map((e) => `${e.type} ${e.id}`).join(', ');
      throw new Error(`the move of ${collection} ended before its cutover (${early instanceof Error ? early.message : JSON.stringify(early ?? 'still running after 120 s')}); steps: ${steps}`);
    }
  }
  return { result, events, release };
}

const applied = (r: Awaited<Held['result']>): void => {
  assert.ok(!(r instanceof Error), r instanceof Error ? r.message : '');
  assert.equal(r.status, 'applied');
};

/** A session on `url` as `role` (SET ROLE from the admin login), where the caller's own temporary objects live. */
async function as(url: string, role: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  await c.query(`SET ROLE "${role}"`);
  return c;
}

const denied = async (p: Promise<unknown>, what: string): Promise<void> => {
  await assert.rejects(p, (e: { code?: string; message?: string }) => {
    assert.ok(e.code === '42501' || e.code === '42P01', `${what}: ${e.code} ${e.message}`);
    return true;
  }, what);
};

// ---------------------------------------------------------------------------------------------------------------

const dbs = await hostileDatabases('move_attack');
const layout = new Layout(dbs, {
  priv: { where: single('pod_a'), dimension: 8 },
  hostile: { where: single('pod_a'), dimension: 8 },
  split: { where: sharded(['pod_a', 'pod_b'], 2), dimension: 8 },
  trunc: { where: single('pod_a'), dimension: 8 },
  toasty: { where: single('pod_a'), dimension: 1024 },
  twin: { where: single('pod_a'), dimension: 8 },
  late: { where: single('pod_a'), dimension: 8 },
});
assert.equal((await apply(layout.file.load(), { approve: async () => true })).status, 'applied');
await seed(dbs.primary, 'priv', 'p', 60, 8);
await seed(dbs.primary, 'split', 'q', 60, 8);
await seed(dbs.primary, 'trunc', 't', 60, 8);
await seed(dbs.primary, 'twin', 'w', 20, 8);
await seed(dbs.primary, 'late', 'e', 20, 8);
await sql(dbs.primary, `INSERT INTO public.toasty (id, embedding, metadata) SELECT 'x' || g, $1::extensions.vector, '{}' FROM generate_series(0, 59) g`, [vec(1024, 3)]);

/** The move's objects of `c` moving pod_a (table c) → pod_a/pod_b (c_p0of2, c_p1of2). */
const machinery = (c: string) => ({
  flow: replicationName(c, { pod: 'pod_a', database: dbs.name }, { pod: 'pod_b', database: dbs.name }),
  log: flowName(c, c, 'mirror'),
});

test('during a move, no role but the owner holds anything on the change log, the beacons or the staging table, despite default privileges; none can read, write or fire them', async () => {
  const c = 'priv';
  const { flow, log } = machinery(c);
  const before = await throughPrimary(dbs.primary, c);
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  const held = await holdBeforeCutover(layout, c);
  try {
    const objects: Array<[string, string, string]> = [
      [layout.podA, `vecscale.${log}`, 'change log'],
      [layout.podA, `vecscale.${flow}`, 'beacon (source)'],
      [layout.podB, `vecscale.${flow}`, 'beacon (target)'],
      [layout.podB, `vecs.${c}`, 'staging table'],
    ];
    for (const [url, name, what] of objects) {
      const acl = await sql<{ owner: string; acl: string[] | null; kind: string }>(url, `SELECT pg_get_userbyid(relowner) AS owner, relacl::text[] AS acl, relkind::text AS kind FROM pg_class WHERE oid = $1::regclass`, [name]);
      assert.equal(acl.length, 1, `${what} exists during the move`);
      assert.deepEqual((acl[0]!.acl ?? []).filter((a) => !a.startsWith(`${acl[0]!.owner}=`)), [], `${what} ${name}: owner only`);
      for (const role of [...API, layout.fdw]) {
        const s = await as(url, role);
        try {
          await denied(s.query(`SELECT * FROM ${name}`), `${role} reads ${what}`);
          const cols = what === 'change log' ? '(id) VALUES ($1)' : what.startsWith('beacon') ? '(id, n) VALUES (2, 0)' : `(id, vec) VALUES ($1, '${vec(8, 1)}')`;
          await denied(s.query(`INSERT INTO ${name} ${cols}`, cols.includes('$1') ? ['evil'] : []), `${role} writes ${what}`);
          await denied(s.query(`DELETE FROM ${name}`), `${role} deletes from ${what}`);
          await denied(s.query(`TRUNCATE ${name}`), `${role} truncates ${what}`);
        } finally {
          await s.end();
        }
      }
    }
    // The change-log function: nobody calls it; the owner cannot either (a trigger function is only fired).
    await assert.rejects(sql(layout.podA, `SELECT vecscale.${log}()`), /trigger functions can only be called as triggers/);
    for (const role of API) {
      const s = await as(layout.podA, role);
      try {
        await denied(s.query(`SELECT vecscale.${log}()`), `${role} calls the change-log function`);
        await denied(s.query(`CREATE TEMP TABLE t (id varchar); CREATE TRIGGER t AFTER INSERT ON pg_temp.t FOR EACH ROW EXECUTE FUNCTION vecscale.${log}()`), `${role} attaches the change-log function to its own table`);
      } finally {
        await s.end();
      }
    }
    // PostgREST: none of it is in an exposed schema.
    const rest = await Rest.connect(layout.podA);
    try {
      for (const role of API) await assert.rejects(rest.request(role, false, (q) => q.select(log, ['id'])), `${role} through PostgREST`);
    } finally {
      await rest.end();
    }
    // The subscription's password: only in pg_subscription.subconninfo, which the API roles cannot read.
    for (const role of API) {
      const s = await as(layout.podB, role);
      try {
        await denied(s.query(`SELECT subconninfo FROM pg_catalog.pg_subscription`), `${role} reads subconninfo`);
      } finally {
        await s.end();
      }
    }
    const conninfo = await sql<{ c: string }>(layout.podB, `SELECT subconninfo AS c FROM pg_subscription WHERE subname = $1`, [flow]);
    assert.ok(conninfo[0]?.c.includes(PASSWORD), 'sanity: the password is in pg_subscription');
  } finally {
    await held.release();
  }
  applied(await held.result);
  assert.deepEqual(await throughPrimary(dbs.primary, c), before);
  assert.deepEqual(await onPods([[layout.podA, `${c}_p0of2`], [layout.podB, `${c}_p1of2`]]), before);
});

test("a writer's pg_temp objects do not run as the owner when its writes fire the SECURITY DEFINER change-log trigger", async () => {
  const c = 'priv';
  layout.place(c, single('pod_a'));
  // Back onto one table: pod_a's two partitions merge into vecs.priv there (a change-log flow), pod_b's replicates.
  const held = await holdBeforeCutover(layout, c);
  const log = flowName(c, `${c}_p0of2`, 'mirror');
  const s = await as(layout.podA, layout.fdw);
  try {
    await s.query(`CREATE TEMP SEQUENCE evil_runs`);
    await s.query(`CREATE FUNCTION pg_temp.evil() RETURNS pg_catalog.bool LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_catalog.nextval('pg_temp.evil_runs'); RETURN true; END $$`);
    for (const t of ['varchar', 'text', 'bpchar', 'name']) await s.query(`CREATE DOMAIN pg_temp."${t}" AS pg_catalog."${t}" CHECK (pg_temp.evil())`);
    await s.query(`CREATE TEMP TABLE "${log}" (seq pg_catalog.int8, id pg_catalog.varchar)`);
    await s.query(`CREATE FUNCTION pg_temp.evil_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_temp.evil(); RETURN NULL; END $$`);
    await s.query(`CREATE TRIGGER evil AFTER INSERT ON pg_temp."${log}" FOR EACH ROW EXECUTE FUNCTION pg_temp.evil_trigger()`);
    // Live: the caller's own unqualified use of a name reaches them.
    await s.query(`SELECT 'a'::text`);
    assert.equal((await s.query(`SELECT last_value::int AS n, is_called FROM pg_temp.evil_runs`)).rows[0].is_called, true, 'the hostile domain is live');
    await s.query(`SELECT pg_catalog.setval('pg_temp.evil_runs', 1, false)`);
    // Writes straight into the source partition: INSERT, UPDATE of the key and of the value, DELETE.
    const v = vec(8, 99);
    await s.query(`INSERT INTO vecs.${c}_p0of2 (id, vec, metadata) SELECT id, $1, $2 FROM (VALUES ('pt1'), ('pt2'), ('pt3'), ('pt4'), ('pt5'), ('pt6'), ('pt7'), ('pt8')) AS v(id) WHERE ${belongsSql('id', { modulus: 2, remainder: 0 })}`, [v, '{"pt": 1}']);
    await s.query(`UPDATE vecs.${c}_p0of2 SET metadata = $1 WHERE id LIKE 'pt%'`, ['{"pt": 2}']);
    await s.query(`UPDATE vecs.${c}_p0of2 SET id = id || 'x' WHERE id = (SELECT pg_catalog.min(id) FROM vecs.${c}_p0of2 WHERE id LIKE 'pt%')`);
    await s.query(`DELETE FROM vecs.${c}_p0of2 WHERE id = (SELECT pg_catalog.max(id) FROM vecs.${c}_p0of2 WHERE id LIKE 'pt%')`);
    const runs = (await s.query(`SELECT is_called FROM pg_temp.evil_runs`)).rows[0];
    assert.equal(runs.is_called, false, 'evil() never ran');
    const logged = await sql<{ n: number }>(layout.podA, `SELECT count(*)::int AS n FROM vecscale."${log}" WHERE id LIKE 'pt%'`);
    assert.ok(logged[0]!.n > 0, 'the trigger still logged the writes (in its own log)');
  } finally {
    await s.end();
    await held.release();
  }
  applied(await held.result);
  const want = await onPods([[layout.podA, c]]);
  assert.deepEqual(await throughPrimary(dbs.primary, c), want);
  assert.ok([...want.keys()].some((id) => id.startsWith('pt')), 'the direct writes arrived');
});

test('hostile writers during a move — UPDATEs that change the id across every pair of targets, on the pod and through the primary, while the application writes up to the cutover — lose nothing', async () => {
  const c = 'hostile';
  // Its exact reads assume pgvector in public (here it is in extensions): reads by id only.
  const writer = new MoveWriter({ url: dbs.primary, collection: c, dimension: 8, seed: 5, workers: 2, readers: 0, exactReads: false });
  await writer.seed(600);
  await seed(dbs.primary, c, 'h', 40, 8);
  const hostileRows = async () => new Map([...(await throughPrimary(dbs.primary, c))].filter(([id]) => id.startsWith('h')));
  const renamed = new Map([...(await hostileRows())].map(([id, row]) => [`hm${id.slice(1)}`, row]));
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  await writer.start();
  let stats;
  let held: Held | undefined;
  try {
    held = await holdBeforeCutover(layout, c);
    const s = await as(layout.podA, layout.fdw);
    try {
      for (let i = 0; i < 40; i += 2) await s.query(`UPDATE vecs.${c} SET id = $1 WHERE id = $2`, [`hm${i}`, `h${i}`]);
    } finally {
      await s.end();
    }
    for (let i = 1; i < 40; i += 2) await sql(dbs.primary, `UPDATE public.${c} SET id = $1 WHERE id = $2`, [`hm${i}`, `h${i}`]);
    await sleep(300);
  } finally {
    // Stopped before the cutover: a write that races the switch can be lost (see the last test of this file).
    stats = await writer.stop();
    await held?.release();
  }
  applied(await held.result);
  assert.deepEqual(stats.errors.slice(0, 5), [], 'no write through the primary errored');
  assert.equal(stats.uncertain, 0);
  assert.ok(stats.committed > 0);
  const pods = await onPods([[layout.podA, `${c}_p0of2`], [layout.podB, `${c}_p1of2`]]);
  assert.deepEqual(new Map([...pods].filter(([id]) => id.startsWith('h'))), renamed, 'every renamed row, once, under its new id');
  const others = (await sql<{ id: string; vec: string; metadata: never }>(layout.podA, `SELECT id, vec::text AS vec, metadata FROM vecs.${c}_p0of2 WHERE id NOT LIKE 'h%'`))
    .concat(await sql(layout.podB, `SELECT id, vec::text AS vec, metadata FROM vecs.${c}_p1of2 WHERE id NOT LIKE 'h%'`));
  const d = writer.compare(others);
  assert.deepEqual([d.missing, d.extra, d.different, d.duplicated], [[], [], [], []], "the writer's rows exactly");
  assert.deepEqual(await hostileRows(), renamed);
});

test('a row written straight into the wrong partition during a split stops the cutover before anything switches; once it is put right, the move completes', async () => {
  const c = 'split';
  const before = await throughPrimary(dbs.primary, c);
  layout.place(c, sharded(['pod_a', 'pod_b'], 4));
  const held = await holdBeforeCutover(layout, c);
  const stray = (await sql<{ id: string }>(layout.podA, `SELECT 'stray' || g AS id FROM generate_series(1, 50) g WHERE ${belongsSql("'stray' || g", { modulus: 2, remainder: 1 })} LIMIT 1`))[0]!.id;
  try {
    const s = await as(layout.podA, layout.fdw);
    try {
      await s.query(`INSERT INTO vecs.${c}_p0of2 (id, vec) VALUES ($1, $2)`, [stray, vec(8, 7)]);
    } finally {
      await s.end();
    }
  } finally {
    await held.release();
  }
  const r = await held.result;
  assert.ok(r instanceof Error, 'the move stops');
  assert.match(r.message, /belong to no partition of the new layout/);
  // Nothing switched: the primary still reads the two old partitions (the stray row is on one of them).
  assert.deepEqual((await throughPrimary(dbs.primary, c)).size, before.size + 1);
  assert.equal((await sql(dbs.primary, `SELECT 1 FROM public.${c} WHERE id = $1`, [stray])).length, 0, 'pruning by id misses the stray row, as before');
  await sql(layout.podA, `DELETE FROM vecs.${c}_p0of2 WHERE id = $1`, [stray]);
  assert.equal((await apply(layout.file.load(), { approve: async () => true })).status, 'applied');
  assert.deepEqual(await throughPrimary(dbs.primary, c), before);
  assert.deepEqual(await onPods([0, 1, 2, 3].map((i) => [i % 2 ? layout.podB : layout.podA, `${c}_p${i}of4`] as const)), before);
});

test('TRUNCATE of the source during a move (rows copied already, TRUNCATE fires no row trigger) never resurrects the truncated rows: nothing switches, and the next apply moves what is left', async () => {
  const c = 'trunc';
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  const held = await holdBeforeCutover(layout, c);
  try {
    await sql(layout.podA, `TRUNCATE vecs.${c}`);
    await seed(dbs.primary, c, 'after', 5, 8);
  } finally {
    await held.release();
  }
  const r = await held.result;
  assert.ok(r instanceof Error, 'the cutover refuses: the change-log target still holds the truncated rows');
  assert.match(r.message, /nothing was switched/);
  const left = await throughPrimary(dbs.primary, c);
  assert.deepEqual([...left.keys()].sort(), ['after0', 'after1', 'after2', 'after3', 'after4']);
  assert.equal((await apply(layout.file.load(), { approve: async () => true })).status, 'applied');
  assert.deepEqual(await throughPrimary(dbs.primary, c), left);
  assert.deepEqual(await onPods([[layout.podA, `${c}_p0of2`], [layout.podB, `${c}_p1of2`]]), left);
});

test('the source password never shows in pg_stat_activity on any cluster (walsenders and apply workers included), in the plan or in the apply result', async () => {
  const c = 'priv';
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  const p = await plan(layout.file.load());
  assert.ok(!JSON.stringify(p).includes(PASSWORD), 'the plan');
  const seen = new Set<string>();
  const leaks: string[] = [];
  let done = false;
  const watch = (async () => {
    while (!done) {
      for (const admin of admins) {
        const rows = await sql<{ t: string; row: string }>(admin, `SELECT backend_type AS t, row_to_json(a)::text AS row FROM pg_stat_activity a WHERE pid <> pg_backend_pid()`).catch(() => []);
        for (const r of rows) {
          seen.add(r.t);
          if (r.row.includes(PASSWORD)) leaks.push(r.row);
        }
      }
      await sleep(10);
    }
  })();
  let r;
  try {
    r = await apply(layout.file.load(), { approve: async () => true, events: { onProgress: (e) => { if (JSON.stringify(e).includes(PASSWORD)) leaks.push(JSON.stringify(e)); } } });
  } finally {
    done = true;
    await watch;
  }
  assert.equal(r.status, 'applied');
  assert.ok(!JSON.stringify(r).includes(PASSWORD), 'the apply result');
  assert.ok(seen.has('walsender') && seen.has('logical replication worker'), `the replication sessions were watched: ${[...seen].join(', ')}`);
  assert.deepEqual(leaks, []);
  assert.deepEqual(await replicationLeftovers(admins, dbs.name), []);
});

// ---------------------------------------------------------------------------------------------------------------
// Findings of the hostile review, fixed: each kept as a test.

test('the identity sequence of the change log and the SECURITY DEFINER change-log function keep no grant of the default privileges', async () => {
  const c = 'priv';
  layout.place(c, single('pod_a'));
  const held = await holdBeforeCutover(layout, c);
  const log = flowName(c, `${c}_p0of2`, 'mirror');
  let seqAcl: string[] | null;
  let fnAcl: string[] | null;
  try {
    seqAcl = (await sql<{ a: string[] | null }>(layout.podA, `SELECT relacl::text[] AS a FROM pg_class WHERE oid = pg_get_serial_sequence($1, 'seq')::regclass`, [`vecscale.${log}`]))[0]!.a;
    fnAcl = (await sql<{ a: string[] | null }>(layout.podA, `SELECT proacl::text[] AS a FROM pg_proc WHERE oid = $1::regprocedure`, [`vecscale.${log}()`]))[0]!.a;
  } finally {
    await held.release();
  }
  applied(await held.result);
  const others = (acl: string[] | null) => (acl ?? []).filter((a) => !a.startsWith('postgres='));
  // The sequence: anon=rwU lets anon setval() it by oid (no USAGE on vecscale needed), and every write to the source
  // (through the primary too) then fails in the trigger. The function: EXECUTE lets a role with USAGE on vecscale
  // attach it to a table of its own and flood the log as its owner (the cutover drains the log to empty, unbounded).
  assert.deepEqual({ sequence: others(seqAcl), function: others(fnAcl) }, { sequence: [], function: [] });
});

test('an UPDATE that changes the id of a row with a TOASTed vector across a row filter reaches the target', async () => {
  const c = 'toasty';
  const { flow } = machinery(c);
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  const held = await holdBeforeCutover(layout, c);
  let arrived = false;
  let errors = 0;
  try {
    const from = (await sql<{ id: string }>(layout.podA, `SELECT id FROM vecs.${c} WHERE ${belongsSql('id', { modulus: 2, remainder: 0 })} ORDER BY id LIMIT 1`))[0]!.id;
    const to = (await sql<{ id: string }>(layout.podA, `SELECT 'moved' || g AS id FROM generate_series(1, 50) g WHERE ${belongsSql("'moved' || g", { modulus: 2, remainder: 1 })} LIMIT 1`))[0]!.id;
    const s = await as(layout.podA, layout.fdw);
    try {
      await s.query(`UPDATE vecs.${c} SET id = $1 WHERE id = $2`, [to, from]);
    } finally {
      await s.end();
    }
    for (let i = 0; i < 60 && !arrived; i++) {
      await sleep(100);
      arrived = (await sql(layout.podB, `SELECT 1 FROM vecs.${c}_p1of2 WHERE id = $1`, [to])).length === 1;
      errors = Number((await sql<{ n: string }>(layout.podB, `SELECT apply_error_count AS n FROM pg_stat_subscription_stats WHERE subname = $1 AND subid IN (SELECT oid FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))`, [flow]))[0]?.n ?? 0);
    }
    // Keep the cutover held: released, each of its attempts would hold the primary's locks for 10 s on a target that never catches up.
    await held.result;
  } finally {
    await held.release();
  }
  // The next apply starts over (a fresh copy has the renamed row).
  assert.equal((await apply(layout.file.load(), { approve: async () => true })).status, 'applied');
  assert.deepEqual({ arrived, errors }, { arrived: true, errors: 0 });
});

test('two databases on the same clusters moving a collection of the same name between pods of the same names keep out of each other', async () => {
  const other = await hostileDatabases('move_attack_twin');
  const twin = new Layout(other, { twin: { where: single('pod_a'), dimension: 8 } });
  assert.equal((await apply(twin.file.load(), { approve: async () => true })).status, 'applied');
  await seed(other.primary, 'twin', 'o', 20, 8);
  const { flow } = machinery('twin');
  layout.place('twin', sharded(['pod_a', 'pod_b'], 2));
  twin.place('twin', sharded(['pod_a', 'pod_b'], 2));
  const held = await holdBeforeCutover(layout, 'twin');
  let mine: Array<{ database: string; active: boolean }> = [];
  let otherResult;
  try {
    const slotOf = async () => sql<{ database: string; active: boolean }>(layout.podA, `SELECT database::text, active FROM pg_replication_slots WHERE slot_name = $1`, [flow]);
    assert.deepEqual((await slotOf()).map((s) => s.database), [dbs.name], 'sanity: this move has its slot');
    otherResult = await apply(twin.file.load(), { approve: async () => true }).catch((e: Error) => e);
    mine = (await slotOf()).filter((s) => s.database === dbs.name);
    // Let this move fail by lock timeouts (its subscription lost its slot: released, each cutover attempt would wait 10 s).
    await held.result;
  } finally {
    await held.release();
  }
  assert.equal((await apply(layout.file.load(), { approve: async () => true })).status, 'applied');
  assert.ok(!(otherResult instanceof Error), otherResult instanceof Error ? otherResult.message : '');
  assert.equal(mine.length, 1, "this database's slot survived the other database's move");
});

test('rows written just before the cutover survive when retiring the old table fails after the switch (a reader on the pod holds it), and the next apply finishes the move', async () => {
  const c = 'late';
  layout.place(c, sharded(['pod_a', 'pod_b'], 2));
  const held = await holdBeforeCutover(layout, c);
  // A reader of the old table on the pod (pg_dump, a direct vecs client): it does not stop EXCLUSIVE, it stops DROP.
  const reader = new pg.Client({ connectionString: layout.podA });
  await reader.connect();
  let r;
  try {
    // Written through the primary after the last drain before the cutover: only the cutover's own drain carries them.
    await seed(dbs.primary, c, 'late', 20, 8);
    await reader.query('BEGIN');
    await reader.query(`SELECT 1 FROM vecs.${c} LIMIT 1`);
    await held.release();
    r = await held.result;
  } finally {
    await held.release();
    await reader.query('ROLLBACK').catch(() => undefined);
    await reader.end();
  }
  const want = new Set([...Array.from({ length: 20 }, (_, i) => `e${i}`), ...Array.from({ length: 20 }, (_, i) => `late${i}`)]);
  let rows: Rows = new Map();
  const missing = async () => {
    rows = await throughPrimary(dbs.primary, c);
    return [...want].filter((id) => !rows.has(id));
  };
  const afterCutover = await missing();
  const finish = await apply(layout.file.load(), { approve: async () => true }).catch((e: Error) => e);
  const afterFinish = await missing();
  assert.ok(r instanceof Error && /committed on the primary/.test(r.message), `sanity: the switch committed, retiring failed: ${r instanceof Error ? r.message : JSON.stringify(r)}`);
  assert.ok(!(finish instanceof Error), finish instanceof Error ? finish.message : '');
  assert.deepEqual({ afterCutover, afterFinish, rows: rows.size }, { afterCutover: [], afterFinish: [], rows: want.size }, 'missing through the primary');
});
