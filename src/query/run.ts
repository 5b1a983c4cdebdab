/**
 * `vecscale query` and `vecscale explain` as library calls. A query goes through `match_<c>` on the primary, or
 * with `direct` runs the very same SQL on the secondary under the same session settings. Explain plans the SQL a
 * match call runs, under the function's settings, and reports what postgres_fdw ships.
 */
import type { CollectionSpec, PlacedCollection, ShardedCollection, Topology } from '../config/types.js';
import { partsOf } from '../model/placement.js';
import { connect, type Db } from '../db/connect.js';
import { sessionSettings } from '../desired/index.js';
import { VecscaleError } from '../errors.js';
import { API_SCHEMA, HELPER_SCHEMA } from '../model/state.js';
import { ident, qualified } from '../sql/quote.js';
import { suggest } from '../config/messages.js';
import { checkFilter, checkVector } from './query-input.js';
import { DISTANCE_OPERATOR, MAX_MATCH_COUNT, matchFunctionName, matchSqlFunctionName } from './match-function.js';

export interface QueryInput {
  readonly collection: string;
  /** The query vector. */
  readonly vector: readonly number[];
  readonly limit?: number;
  /** vecs' filter language: an object, or its JSON text (passed to the database as written, numbers exact). */
  readonly filter?: unknown;
  readonly connectTimeoutMs?: number;
}

export interface QueryResult {
  readonly via: 'primary' | string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<Record<string, unknown>>;
}

/** The collection, or a config error naming the known ones. */
export function collectionOf(topology: Topology, name: string): CollectionSpec {
  const c = topology.collections.find((x) => x.name === name);
  if (c) return c;
  const names = topology.collections.map((x) => x.name);
  const hint = suggest(name, names);
  throw new VecscaleError('config', `no collection "${name}" in ${topology.file}${hint ? ` (did you mean "${hint}"?)` : ''}`, {
    hint: names.length ? `collections: ${names.join(', ')}` : 'the topology defines no collections',
  });
}

function checkInput(c: CollectionSpec, input: QueryInput): { k: number; filter: string; vector: string; filtered: boolean } {
  const k = input.limit ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > MAX_MATCH_COUNT) {
    throw new VecscaleError('config', `--limit must be a whole number 1–${MAX_MATCH_COUNT} (got ${input.limit})`);
  }
  if (input.vector.length !== c.dimension) {
    throw new VecscaleError('config', `the query vector has ${input.vector.length} dimensions; collection ${c.name} has ${c.dimension}`);
  }
  checkVector(input.vector, c.metric);
  const text = typeof input.filter === 'string' ? input.filter : JSON.stringify(input.filter ?? {});
  const { filtered } = checkFilter(text, 'the filter');
  return { k, filter: text, vector: `[${input.vector.join(',')}]`, filtered };
}

/**
 * SQLSTATEs of the input checks in the database: the filter compiler and match_<c> raise 22023 (a bad argument,
 * e.g. an unknown operator, a zero vector with cosine) and 22004 (a null argument). Other data exceptions (22P02 on
 * an ill-typed row, …) come from the rows, not from the input: they stay database failures.
 */
const INPUT_REFUSED = new Set(['22023', '22004']);

/** A database error raised by an input check is the user's input, not a failure: exit 6, its message as is. */
function asInputError(err: unknown): never {
  const e = err as { code?: string; message?: string };
  if (e.code !== undefined && INPUT_REFUSED.has(e.code)) throw new VecscaleError('config', e.message ?? String(err));
  throw new VecscaleError('database', e.message ?? String(err), { cause: err });
}

/**
 * The filter as jsonb, on its own: every error of the cast (22003 numeric overflow, 22P02 invalid JSON, 22P05 \u0000,
 * 54001 nesting too deep) is the filter's. checkFilter refuses all of these first; this is the database's own word,
 * one round trip, for whatever JSON.parse and PostgreSQL's jsonb disagree on.
 */
async function castFilter(db: Db, filter: string): Promise<void> {
  try {
    await db.query('SELECT pg_catalog.jsonb_typeof($1::pg_catalog.jsonb)', [filter]);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // Data exceptions (class 22) and program limits (54: nesting) are the text's; a lost connection is not.
    if (!/^(22|54)/.test(code)) throw new VecscaleError('database', (err as Error).message, { cause: err });
    throw new VecscaleError('config', `the database refuses the filter: ${(err as Error).message}`);
  }
}

async function withDb<T>(database: string, url: string, timeoutMs: number | undefined, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connect({ database, url }, { timeoutMs });
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}

/**
 * The SQL match_<c> sends to the secondaries for these inputs, built by the primary as match_<c> builds it: a
 * statement, or a sharded collection's statement per partition.
 */
async function remoteSql<S extends string | string[] = string>(primary: Db, c: CollectionSpec, vector: string, k: number, filter: string): Promise<S> {
  await castFilter(primary, filter);
  try {
    const r = await primary.query<{ sql: S }>(
      `SELECT ${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}($1, $2, $3::jsonb) AS sql`,
      [vector, k, filter],
    );
    return r.rows[0]!.sql;
  } catch (err) {
    return asInputError(err);
  }
}

/** Runs `fn` on the collection's secondary in a read-only transaction with the session settings its server sends. */
async function onSecondary<T>(
  topology: Topology,
  c: Pick<PlacedCollection, 'secondary' | 'query'>,
  timeoutMs: number | undefined,
  fn: (db: Db) => Promise<T>,
): Promise<T> {
  const secondary = topology.secondaries.find((s) => s.name === c.secondary)!;
  return withDb(c.secondary, secondary.url, timeoutMs, async (db) => {
    await db.query('BEGIN READ ONLY');
    try {
      for (const [name, value] of sessionSettings(c.query)) {
        await db.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      }
      return await fn(db);
    } finally {
      await db.query('ROLLBACK').catch(() => undefined);
    }
  });
}

/** Runs a similarity query through match_<c> on the primary. */
export async function queryPrimary(topology: Topology, input: QueryInput): Promise<QueryResult> {
  const c = collectionOf(topology, input.collection);
  const { k, filter, vector } = checkInput(c, input);
  return withDb('primary', topology.primary.url, input.connectTimeoutMs, async (db) => {
    await castFilter(db, filter);
    try {
      const r = await db.query(`SELECT * FROM ${qualified(API_SCHEMA, matchFunctionName(c.name))}($1, $2, $3::jsonb)`, [vector, k, filter]);
      return { via: 'primary', columns: r.fields.map((f) => f.name), rows: r.rows };
    } catch (err) {
      return asInputError(err);
    }
  });
}

/** Runs the SQL match_<c> would send, directly on the collection's secondary, with the same session settings. */
export async function queryDirect(topology: Topology, input: QueryInput): Promise<QueryResult> {
  const c = collectionOf(topology, input.collection);
  if (c.shards !== undefined) {
    throw new VecscaleError('config', `collection ${c.name} is sharded over ${c.shards.join(', ')}: --direct would search one shard only`, {
      hint: 'query it through the primary (without --direct); on a shard, public.' + c.name + ' holds the rows of that shard',
    });
  }
  const { k, filter, vector } = checkInput(c, input);
  const sql = await withDb('primary', topology.primary.url, input.connectTimeoutMs, (db) => remoteSql(db, c, vector, k, filter));
  return onSecondary(topology, c, input.connectTimeoutMs, async (db) => {
    const r = await db.query(sql);
    return { via: c.secondary, columns: r.fields.map((f) => f.name), rows: r.rows };
  });
}

export interface ExplainResult {
  readonly collection: string;
  readonly filtered: boolean;
  /** match_<c>: the SQL it sends and how the secondary plans it. */
  readonly match: { readonly sql: string; readonly plan: string };
  /** Plain SQL on the API view (`ORDER BY embedding <op> q LIMIT k`): what postgres_fdw ships. */
  readonly view: { readonly remoteSql: readonly string[]; readonly plan: string };
  readonly ships: { readonly where: boolean; readonly orderBy: boolean; readonly limit: boolean };
  /** ORDER BY and LIMIT (and the filter, if any) run on the secondary, on both paths. */
  readonly ok: boolean;
  /** A sharded collection: match_<c> sends a statement to every partition at once, each on its own connection. */
  readonly sharded?: { readonly partitions: number; readonly concurrent: number };
}

const planText = (rows: Array<{ 'QUERY PLAN': string }>): string => rows.map((r) => r['QUERY PLAN']).join('\n');

/** What reaches the secondary, for match_<c> (this filter) and for plain SQL on public.<c>. */
export async function explainMatch(topology: Topology, input: Omit<QueryInput, 'vector'> & { vector?: readonly number[] }): Promise<ExplainResult> {
  const c = collectionOf(topology, input.collection);
  const vector = input.vector ?? Array.from({ length: c.dimension }, (_, i) => (i === 0 ? 1 : 0));
  const { k, filter, vector: literal, filtered } = checkInput(c, { ...input, vector });
  if (c.shards !== undefined) return explainSharded(topology, c, { k, filter, literal, filtered, timeoutMs: input.connectTimeoutMs });
  type PlanRow = { 'QUERY PLAN': string };
  const [sql, view] = await withDb('primary', topology.primary.url, input.connectTimeoutMs, async (db): Promise<[string, PlanRow[]]> => {
    const sent = await remoteSql(db, c, literal, k, filter);
    const vs = await db.query<{ s: string }>(`SELECT extnamespace::regnamespace::text AS s FROM pg_catalog.pg_extension WHERE extname = 'vector'`);
    const distance = `embedding OPERATOR(${ident(vs.rows[0]?.s ?? 'public')}.${DISTANCE_OPERATOR[c.metric]}) $1`;
    // A condition on an extracted column (a real column of the secondary's view) must ship too.
    const where = c.columns[0] ? ` WHERE ${ident(c.columns[0].name)} IS NOT NULL` : '';
    const rows = await db.query<PlanRow>(`EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM ${qualified(API_SCHEMA, c.name)}${where} ORDER BY ${distance} LIMIT ${k}`, [literal]);
    return [sent, rows.rows];
  });
  const plan = await onSecondary(topology, c, input.connectTimeoutMs, async (db) => planText((await db.query<PlanRow>(`EXPLAIN (VERBOSE, COSTS OFF) ${sql}`)).rows));
  const shipped = view.filter((r) => r['QUERY PLAN'].includes('Remote SQL:')).map((r) => r['QUERY PLAN'].replace(/^\s*Remote SQL:\s*/, ''));
  const viewShips = shipped.some((r) => / ORDER BY /.test(r) && / LIMIT /.test(r));
  const viewWhere = c.columns.length === 0 || shipped.some((r) => / WHERE /.test(r));
  const ships = { where: (!filtered || / WHERE /.test(sql)) && viewWhere, orderBy: / ORDER BY /.test(sql) && viewShips, limit: / LIMIT \d+$/.test(sql) && viewShips };
  return {
    collection: c.name,
    filtered,
    match: { sql, plan },
    view: { remoteSql: shipped, plan: planText(view) },
    ships,
    ok: ships.where && ships.orderBy && ships.limit,
  };
}

/**
 * A sharded match_<c>: the statement search_<c> sends to each partition, planned on that partition's secondary under
 * the session settings its server sends. It ships when every partition's statement carries the filter, ORDER BY
 * and LIMIT (the partitions are sent to at once: see src/query/fan-out.ts).
 */
async function explainSharded(
  topology: Topology,
  c: ShardedCollection,
  q: { k: number; filter: string; literal: string; filtered: boolean; timeoutMs: number | undefined },
): Promise<ExplainResult> {
  type PlanRow = { 'QUERY PLAN': string };
  const statements = await withDb('primary', topology.primary.url, q.timeoutMs, (db) => remoteSql<string[]>(db, c, q.literal, q.k, q.filter));
  const parts = partsOf(c);
  const plans = await Promise.all(
    parts.map((p, i) => onSecondary(topology, { secondary: p.secondary, query: c.query }, q.timeoutMs, async (db) => planText((await db.query<PlanRow>(`EXPLAIN (VERBOSE, COSTS OFF) ${statements[i]!}`)).rows))),
  );
  const all = (re: RegExp) => statements.length === parts.length && statements.every((s) => re.test(s));
  const ships = { where: !q.filtered || all(/ WHERE /), orderBy: all(/ ORDER BY /), limit: all(/ LIMIT \d+$/) };
  const plan = parts.map((p, i) => `${p.table} on ${p.secondary}:\n${plans[i]!}`).join('\n\n');
  return {
    collection: c.name,
    filtered: q.filtered,
    match: { sql: statements.join(';\n'), plan },
    view: { remoteSql: statements, plan },
    ships,
    ok: ships.where && ships.orderBy && ships.limit,
    sharded: { partitions: parts.length, concurrent: parts.length },
  };
}
