/**
 * Every PL/pgSQL function vecscale creates, on every database, checked by plpgsql_check (issue 11 §1) with all its
 * warning classes on, security warnings included: no errors, and every warning either fixed in src/query or
 * explained below in ALLOWED. Also the header every vecscale function carries: its settings (proconfig), and
 * SECURITY DEFINER only where the design says (vecscale.search_<c>, vecscale.hybrid_<c>), never in an API schema.
 *
 * Two topologies cover every kind of function on every database: a Supabase-shaped one (pgvector in `extensions`,
 * API and write roles) with a collection on each secondary (one with extracted columns of several types, one with an
 * ivfflat index) and one sharded over both, and two with owned rows (`access`; authenticated in both role lists, a
 * restricted writer); and the first three on plain databases (pgvector in public).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { freshDatabases } from '../harness.js';
import { supabaseDatabases, type Dbs } from '../supabase.js';
import { topologyFile } from '../topology-files.js';

const COLLECTIONS = `  docs:
    secondary: pod_a
    dimension: 3
    columns: { url: text, year: integer, score: double precision, tags: jsonb }
  ivf:
    secondary: pod_b
    dimension: 3
    index: { method: ivfflat, lists: 4 }
  shard:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 3
    text: { source: body, language: simple }
`;
// Owned rows need API roles: the Supabase-shaped topology only.
const OWNED = `  owned:
    secondary: pod_b
    dimension: 3
    columns: { url: text }
    text: { source: body }
    access: { owner_key: owner_id, claim: sub }
  sowned:
    shards: [pod_a, pod_b]
    dimension: 3
    access: { owner_key: owner_id, claim: sub }
`;

const supabase = await supabaseDatabases('plpgsql_check_supa');
const plain = await freshDatabases('plpgsql_check_plain');
await apply(
  topologyFile(supabase, COLLECTIONS + OWNED, 'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [authenticated, service_role]\n').load(),
  { approve: async () => true },
);
await apply(topologyFile(plain, COLLECTIONS).load(), { approve: async () => true });

/** A database of either set, as the topology names it. */
interface Database {
  readonly label: string;
  readonly url: string;
  /** pgvector's schema there. */
  readonly vector: string;
  readonly role: 'primary' | 'pod_a' | 'pod_b';
  /** The Supabase-shaped set, which also has the owned-rows collections. */
  readonly owned: boolean;
}

function databasesOf(set: string, dbs: Dbs, vector: string): Database[] {
  const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
  return [
    { label: `${set} primary`, url: dbs.primary, vector, role: 'primary', owned: set === 'supabase' },
    { label: `${set} pod_a`, url: podA, vector, role: 'pod_a', owned: set === 'supabase' },
    { label: `${set} pod_b`, url: podB, vector, role: 'pod_b', owned: set === 'supabase' },
  ];
}

const DATABASES: readonly Database[] = [...databasesOf('supabase', supabase, 'extensions'), ...databasesOf('plain', plain, 'public')];

/**
 * Every function vecscale creates, by signature (`regprocedure` under search_path pg_catalog: every type outside
 * pg_catalog qualified). Listed by hand so that a new function shows up here and gets checked on purpose.
 */
function expectedFunctions(db: Database): string[] {
  const v = `${db.vector}.vector`;
  if (db.role !== 'primary') {
    // The trigger function of every upsert view there: `docs` / `ivf` (a table and its view) and `shard`'s partitions.
    return ['vecscale.upsert_row()'];
  }
  return [
    `public.match_docs(${v},integer,jsonb,integer,integer,text)`,
    `public.match_ivf(${v},integer,jsonb,integer,integer,text)`,
    `public.match_shard(${v},integer,jsonb,integer,integer,text)`,
    'public.upsert_docs(jsonb)',
    `public.upsert_docs(text,${v},jsonb)`,
    'public.upsert_ivf(jsonb)',
    `public.upsert_ivf(text,${v},jsonb)`,
    'public.upsert_shard(jsonb)',
    `public.upsert_shard(text,${v},jsonb)`,
    'vecscale.filter_sql(jsonb,integer)',
    `vecscale.match_sql_docs(${v},integer,jsonb)`,
    `vecscale.match_sql_ivf(${v},integer,jsonb)`,
    `vecscale.match_sql_shard(${v},integer,jsonb)`,
    `vecscale.search_docs(${v},integer,jsonb,integer,integer,text)`,
    `vecscale.search_ivf(${v},integer,jsonb,integer,integer,text)`,
    `vecscale.search_shard(${v},integer,jsonb,integer,integer,text)`,
    'vecscale.write_docs()',
    'vecscale.write_ivf()',
    'vecscale.write_shard()',
    // shard has text: hybrid_shard, its private half and its statement builder.
    `public.hybrid_shard(text,${v},integer,jsonb,double precision,double precision,integer,integer,integer,text)`,
    `vecscale.hybrid_shard(text,${v},integer,jsonb,double precision,double precision,integer,integer,integer,text)`,
    `vecscale.text_sql_shard(text,${v},integer,jsonb)`,
    ...(db.owned
      ? [
          `public.hybrid_owned(text,${v},integer,jsonb,double precision,double precision,integer,integer,integer,text)`,
          `public.match_owned(${v},integer,jsonb,integer,integer,text)`,
          `public.match_sowned(${v},integer,jsonb,integer,integer,text)`,
          'public.upsert_owned(jsonb)',
          `public.upsert_owned(text,${v},jsonb)`,
          'public.upsert_sowned(jsonb)',
          `public.upsert_sowned(text,${v},jsonb)`,
          `vecscale.hybrid_owned(text,${v},integer,jsonb,double precision,double precision,integer,integer,integer,text)`,
          'vecscale.jwt_claim(text)',
          'vecscale.owner_metadata(text,text)',
          `vecscale.match_sql_owned(${v},integer,jsonb,text)`,
          `vecscale.match_sql_sowned(${v},integer,jsonb,text)`,
          `vecscale.search_owned(${v},integer,jsonb,integer,integer,text)`,
          `vecscale.search_sowned(${v},integer,jsonb,integer,integer,text)`,
          'vecscale.sees_all_rows()',
          `vecscale.text_sql_owned(text,${v},integer,jsonb,text)`,
          'vecscale.write_owned()',
          'vecscale.write_sowned()',
        ]
      : []),
  ].sort();
}

/** Where each trigger function fires: INSTEAD OF triggers on the API views (primary) and the upsert views (shards). */
function expectedTriggerRelations(db: Database): Record<string, string[]> {
  switch (db.role) {
    case 'primary':
      return {
        'vecscale.write_docs()': ['public.docs'],
        'vecscale.write_ivf()': ['public.ivf'],
        'vecscale.write_shard()': ['public.shard'],
        ...(db.owned ? { 'vecscale.write_owned()': ['public.owned'], 'vecscale.write_sowned()': ['public.sowned'] } : {}),
      };
    case 'pod_a':
      return { 'vecscale.upsert_row()': ['vecscale.docs', 'vecscale.shard_p0of4', 'vecscale.shard_p2of4', ...(db.owned ? ['vecscale.sowned_p0of2'] : [])].sort() };
    case 'pod_b':
      return { 'vecscale.upsert_row()': ['vecscale.ivf', ...(db.owned ? ['vecscale.owned'] : []), 'vecscale.shard_p1of4', 'vecscale.shard_p3of4', ...(db.owned ? ['vecscale.sowned_p1of2'] : [])].sort() };
  }
}

/** The settings of vecscale's match/search functions that plan each call with its values (functionConfig). */
const CUSTOM_PLAN = new Set(['vecscale.search_docs', 'vecscale.search_ivf', 'vecscale.search_shard', 'vecscale.hybrid_shard',
  'vecscale.search_owned', 'vecscale.search_sowned', 'vecscale.hybrid_owned']);

interface Fn {
  readonly oid: string;
  readonly signature: string;
  readonly schema: string;
  readonly name: string;
  readonly language: string;
  readonly secdef: boolean;
  readonly config: string[] | null;
  /** The relations whose triggers run it. */
  readonly triggerOn: string[];
}

/** A session whose search_path is pg_catalog only, so catalog text names every other schema. */
async function session<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET search_path = pg_catalog');
    return await fn(client);
  } finally {
    await client.end();
  }
}

const MANAGED = "pg_catalog.obj_description(p.oid, 'pg_proc') LIKE 'managed by vecscale%'";

async function vecscaleFunctions(c: pg.Client): Promise<Fn[]> {
  const { rows } = await c.query<Fn>(`
    SELECT p.oid::text AS oid, p.oid::regprocedure::text AS signature, n.nspname::text AS schema, p.proname::text AS name,
           l.lanname::text AS language, p.prosecdef AS secdef, p.proconfig AS config,
           ARRAY(SELECT DISTINCT t.tgrelid::regclass::text FROM pg_trigger t WHERE t.tgfoid = p.oid ORDER BY 1) AS "triggerOn"
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
     WHERE ${MANAGED}
     ORDER BY p.oid::regprocedure::text COLLATE "C"`);
  return rows;
}

const inventory = new Map<string, Promise<Fn[]>>();
const functionsOf = (db: Database): Promise<Fn[]> => {
  let p = inventory.get(db.label);
  if (!p) inventory.set(db.label, (p = session(db.url, vecscaleFunctions)));
  return p;
};

/** One row of plpgsql_check_function_tb. */
interface Finding {
  readonly functionid: string;
  readonly lineno: number | null;
  readonly statement: string | null;
  readonly sqlstate: string | null;
  readonly message: string;
  readonly detail: string | null;
  readonly hint: string | null;
  readonly level: string;
  readonly position: number | null;
  readonly query: string | null;
  readonly context: string | null;
}

/** plpgsql_check in its own schema: nothing of it in public, where the SECURITY DEFINER check looks. */
async function installChecker(c: pg.Client): Promise<void> {
  await c.query('CREATE SCHEMA IF NOT EXISTS plpgsql_check');
  await c.query('CREATE EXTENSION IF NOT EXISTS plpgsql_check WITH SCHEMA plpgsql_check');
}

/** Every class of warning on; fatal_errors off, so every error of a function is reported, not just the first. */
async function plpgsqlCheck(c: pg.Client, oid: string, relid: string | null): Promise<Finding[]> {
  const { rows } = await c.query<Finding>(
    `SELECT functionid::text, lineno, statement, sqlstate, message, detail, hint, level, "position", query, context
       FROM plpgsql_check.plpgsql_check_function_tb($1::pg_catalog.oid::pg_catalog.regprocedure,
              COALESCE($2::pg_catalog.regclass, 0::pg_catalog.oid::pg_catalog.regclass),
              fatal_errors => false, other_warnings => true, extra_warnings => true,
              performance_warnings => true, security_warnings => true)`,
    [oid, relid],
  );
  return rows;
}

const show = (f: Finding, on: string | null): string =>
  [
    `${f.level}: ${f.functionid}${on ? ` (trigger on ${on})` : ''}, line ${f.lineno ?? '?'} (${f.statement ?? '?'}): ${f.message}`,
    ...(f.detail ? [`  detail: ${f.detail}`] : []),
    ...(f.hint ? [`  hint: ${f.hint}`] : []),
    ...(f.query ? [`  query: ${f.query}${f.position ? ` (at ${f.position})` : ''}`] : []),
    ...(f.context ? [`  context: ${f.context}`] : []),
  ].join('\n');

/**
 * The warnings plpgsql_check gives on vecscale's functions that are acceptable, each with why. A warning not listed
 * fails the test; an entry that matches nothing fails it too (the list stays what the code needs).
 */
interface Allowed {
  /** The function, as `schema.name`. */
  readonly fn: RegExp;
  readonly message: RegExp;
  /** The finding's detail, when it is what makes the warning acceptable. */
  readonly detail?: RegExp;
  readonly why: string;
}
// Sharded match_<c> used to draw two findings (the columns and volatility of its dynamic statement); its layout guard
// (a static RETURN QUERY and an advisory lock, src/model/write-lock.ts) lets plpgsql_check see both now.
const ALLOWED: readonly Allowed[] = [];

test('plpgsql_check is live: it reports an error and an injection warning on a function made to have them', async () => {
  // So that "no findings" below means checked and clean, not "the checker returned nothing".
  await session(plain.primary, async (c) => {
    await installChecker(c);
    await c.query('BEGIN');
    try {
      await c.query(`CREATE FUNCTION pg_temp.canary(t pg_catalog.text) RETURNS pg_catalog.int4 LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM 1 FROM pg_catalog.no_such_table;
          EXECUTE 'SELECT ' || t;
          RETURN 1;
        END $$`);
      const { rows } = await c.query<{ oid: string }>(`SELECT 'pg_temp.canary(pg_catalog.text)'::pg_catalog.regprocedure::pg_catalog.oid::text AS oid`);
      const findings = await plpgsqlCheck(c, rows[0]!.oid, null);
      assert.ok(findings.some((f) => f.level === 'error' && /no_such_table/.test(f.message)), findings.map((f) => show(f, null)).join('\n'));
      assert.ok(findings.some((f) => f.level === 'security'), findings.map((f) => show(f, null)).join('\n'));
    } finally {
      await c.query('ROLLBACK');
    }
  });
});

test('on every database, vecscale created exactly the functions listed, and they are all PL/pgSQL', async () => {
  for (const db of DATABASES) {
    const fns = await functionsOf(db);
    assert.deepEqual(fns.map((f) => f.signature), expectedFunctions(db), db.label);
    for (const f of fns) assert.equal(f.language, 'plpgsql', `${db.label}: ${f.signature}`);
    const triggers = Object.fromEntries(fns.filter((f) => f.triggerOn.length > 0).map((f) => [f.signature, f.triggerOn]));
    assert.deepEqual(triggers, expectedTriggerRelations(db), db.label);
  }
});

test('every vecscale function fixes its search path; only vecscale.search_<c> is SECURITY DEFINER; none in public anywhere', async () => {
  for (const db of DATABASES) {
    for (const f of await functionsOf(db)) {
      const qualified = `${f.schema}.${f.name}`;
      const expected = ['search_path=pg_catalog, pg_temp', ...(CUSTOM_PLAN.has(qualified) ? ['plan_cache_mode=force_custom_plan'] : [])];
      assert.deepEqual(f.config, expected, `${db.label}: ${f.signature} proconfig`);
      assert.equal(f.secdef, f.schema === 'vecscale' && /^(search|hybrid)_/.test(f.name), `${db.label}: ${f.signature} prosecdef`);
    }
    // Not only vecscale's: no SECURITY DEFINER function at all in the API schema (pgvector's included, on plain).
    const definers = await session(db.url, async (c) =>
      (await c.query<{ f: string }>(`SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef`)).rows,
    );
    assert.deepEqual(definers, [], `${db.label}: SECURITY DEFINER functions in public`);
  }
});

/** A finding of plpgsql_check on one vecscale function, where it was checked. */
interface Checked {
  readonly db: Database;
  readonly fn: Fn;
  readonly on: string | null;
  readonly finding: Finding;
  readonly text: string;
}

let checking: Promise<{ findings: Checked[]; summary: string[] }> | undefined;
/** plpgsql_check on every PL/pgSQL function vecscale made, on every database (once for both tests below). */
const checkAll = (): Promise<{ findings: Checked[]; summary: string[] }> =>
  (checking ??= (async () => {
    const findings: Checked[] = [];
    const summary: string[] = [];
    for (const db of DATABASES) {
      const fns = (await functionsOf(db)).filter((x) => x.language === 'plpgsql');
      let checks = 0;
      let found = 0;
      await session(db.url, async (c) => {
        await installChecker(c);
        // The write triggers' buffer, as their BEFORE INSERT statement trigger makes it in a writer's session (on a
        // secondary, the upsert views' buffer in the wrapper role's session).
        if (db.role === 'primary') {
          await c.query(`CREATE TEMPORARY TABLE vecscale_pending (collection text NOT NULL, id varchar, embedding ${db.vector}.vector, metadata jsonb) ON COMMIT DELETE ROWS`);
        } else {
          await c.query(`CREATE TEMPORARY TABLE vecscale_upserts (collection text NOT NULL, n bigint GENERATED ALWAYS AS IDENTITY, id varchar, vec ${db.vector}.vector, metadata jsonb) ON COMMIT DELETE ROWS`);
        }
        for (const fn of fns) {
          // A trigger function is checked against each relation it fires on (NEW/OLD have its row type); others once.
          for (const on of fn.triggerOn.length > 0 ? fn.triggerOn : [null]) {
            checks += 1;
            for (const finding of await plpgsqlCheck(c, fn.oid, on)) {
              found += 1;
              findings.push({ db, fn, on, finding, text: `${db.label}: ${show(finding, on)}` });
            }
          }
        }
      });
      summary.push(`${db.label}: ${fns.length} functions, ${checks} checks, ${found} findings`);
    }
    return { findings, summary };
  })());

test('plpgsql_check finds no error in any vecscale function, on any database', async (t) => {
  const { findings, summary } = await checkAll();
  t.diagnostic(`plpgsql_check: ${summary.join('; ')}`);
  const errors = findings.filter((f) => f.finding.level === 'error').map((f) => f.text);
  assert.deepEqual(errors, [], `plpgsql_check errors:\n${errors.join('\n')}`);
});

test('every warning of plpgsql_check (other, extra, performance, security) on vecscale functions is explained in ALLOWED', async (t) => {
  const { findings } = await checkAll();
  const unexplained: string[] = [];
  const used = new Map<Allowed, number>();
  for (const f of findings.filter((x) => x.finding.level !== 'error')) {
    const allowed = ALLOWED.find(
      (a) => a.fn.test(`${f.fn.schema}.${f.fn.name}`) && a.message.test(f.finding.message) && (a.detail?.test(f.finding.detail ?? '') ?? true),
    );
    if (!allowed) {
      unexplained.push(f.text);
      continue;
    }
    used.set(allowed, (used.get(allowed) ?? 0) + 1);
  }
  for (const [a, n] of used) t.diagnostic(`allowed ${n}× ${a.fn.source} / ${a.message.source}: ${a.why}`);
  assert.deepEqual(unexplained, [], `warnings not in ALLOWED:\n${unexplained.join('\n')}`);
  const stale = ALLOWED.filter((a) => !used.has(a)).map((a) => `${a.fn} / ${a.message}: ${a.why}`);
  assert.deepEqual(stale, [], 'ALLOWED entries that match no warning any more');
});

test("match_<c> of one secondary works under the caller's statement_timeout (search_<c>'s plpgsql_check error, at run time)", async () => {
  // plpgsql_check: `function pg_catalog.greatest(integer, double precision) does not exist`. GREATEST is SQL syntax,
  // not a function, so the qualified call cannot resolve; it is reached only when statement_timeout > 0, as for
  // Supabase's anon (3s) and authenticated (8s). Without a timeout the same call works.
  await session(supabase.primary, async (c) => {
    assert.deepEqual((await c.query(`SELECT id FROM public.match_docs('[1,2,3]', 5)`)).rows, []);
    await c.query(`SET statement_timeout = '5s'`);
    assert.deepEqual((await c.query(`SELECT id FROM public.match_docs('[1,2,3]', 5)`)).rows, []);
  });
});
