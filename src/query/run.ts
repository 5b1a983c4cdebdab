/**
 * `vecscale query` and `vecscale explain` as library calls. A query goes through `match_<c>` on the primary, or
 * with `direct` runs the very same SQL on the secondary under the same session settings. Explain plans the SQL a
 * match call runs, under the function's settings, and reports what postgres_fdw ships.
 */
import type { CollectionSpec, Topology } from '../config/types.js';
import { connect, type Db } from '../db/connect.js';
import { sessionOptions } from '../desired.js';
import { VecscaleError } from '../errors.js';
import { API_SCHEMA, HELPER_SCHEMA } from '../model/state.js';
import { qualified } from '../sql/quote.js';
import { suggest } from '../config/messages.js';
import { fillTemplate, MAX_MATCH_COUNT, matchFunctionName, matchQueryTemplate } from './match-function.js';

export interface QueryInput {
  readonly collection: string;
  /** The query vector. */
  readonly vector: readonly number[];
  readonly limit?: number;
  /** vecs' filter language; {} or undefined for none. */
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

function checkInput(c: CollectionSpec, input: QueryInput): { k: number; filter: string; vector: string } {
  const k = input.limit ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > MAX_MATCH_COUNT) {
    throw new VecscaleError('config', `--limit must be a whole number 1–${MAX_MATCH_COUNT} (got ${input.limit})`);
  }
  if (input.vector.length !== c.dimension) {
    throw new VecscaleError('config', `the query vector has ${input.vector.length} dimensions; collection ${c.name} has ${c.dimension}`);
  }
  if (!input.vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new VecscaleError('config', 'the query vector must hold finite numbers only');
  }
  const filter = input.filter ?? {};
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new VecscaleError('config', 'the filter must be a JSON object, e.g. {"lang": {"$eq": "de"}}');
  }
  return { k, filter: JSON.stringify(filter), vector: `[${input.vector.join(',')}]` };
}

/** Database errors raised by the filter compiler are the user's input, not a failure: exit 6, message as is. */
function asFilterError(err: unknown): never {
  const e = err as { code?: string; message?: string };
  if (e.code === '22023' && e.message?.startsWith('vecscale')) throw new VecscaleError('config', e.message);
  if (e.code === '22023' || e.code === '22004') throw new VecscaleError('config', e.message ?? String(err));
  throw new VecscaleError('database', e.message ?? String(err), { cause: err });
}

async function withDb<T>(database: string, url: string, timeoutMs: number | undefined, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connect({ database, url }, { timeoutMs });
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}

/** Compiles a filter with the primary's compiler (the one match_* uses): null for no filter. */
async function compileFilter(primary: Db, filter: string): Promise<string | null> {
  try {
    const r = await primary.query<{ sql: string | null }>(`SELECT ${qualified(HELPER_SCHEMA, 'filter_sql')}($1::jsonb) AS sql`, [filter]);
    return r.rows[0]?.sql ?? null;
  } catch (err) {
    return asFilterError(err);
  }
}

/** Runs a similarity query through match_<c> on the primary. */
export async function queryPrimary(topology: Topology, input: QueryInput): Promise<QueryResult> {
  const c = collectionOf(topology, input.collection);
  const { k, filter, vector } = checkInput(c, input);
  return withDb('primary', topology.primary.url, input.connectTimeoutMs, async (db) => {
    try {
      const r = await db.query(`SELECT * FROM ${qualified(API_SCHEMA, matchFunctionName(c.name))}($1, $2, $3::jsonb)`, [vector, k, filter]);
      return { via: 'primary', columns: r.fields.map((f) => f.name), rows: r.rows };
    } catch (err) {
      return asFilterError(err);
    }
  });
}

/** Runs the same query directly on the collection's secondary, with the session settings the wrapper sends. */
export async function queryDirect(topology: Topology, input: QueryInput): Promise<QueryResult> {
  const c = collectionOf(topology, input.collection);
  const { k, filter, vector } = checkInput(c, input);
  const where = await withDb('primary', topology.primary.url, input.connectTimeoutMs, (db) => compileFilter(db, filter));
  const secondary = topology.secondaries.find((s) => s.name === c.secondary)!;
  const vectorSchema = await withDb(c.secondary, secondary.url, input.connectTimeoutMs, async (db) => {
    const r = await db.query<{ s: string }>(`SELECT extnamespace::regnamespace::text AS s FROM pg_catalog.pg_extension WHERE extname = 'vector'`);
    return r.rows[0]?.s ?? 'public';
  });
  const template = matchQueryTemplate(c, vectorSchema, where !== null, qualified(API_SCHEMA, c.name));
  const sql = fillTemplate(template, where === null ? [String(k)] : [where, String(k)]);
  return withDb(c.secondary, secondary.url, input.connectTimeoutMs, async (db) => {
    await db.query('BEGIN READ ONLY');
    try {
      for (const [, name, value] of sessionOptions(c.query).matchAll(/-c ([\w.]+)=(\S+)/g)) {
        await db.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      }
      const r = await db.query(sql, [vector]);
      return { via: c.secondary, columns: r.fields.map((f) => f.name), rows: r.rows };
    } catch (err) {
      return asFilterError(err);
    } finally {
      await db.query('ROLLBACK').catch(() => undefined);
    }
  });
}

export interface ExplainResult {
  readonly collection: string;
  readonly filtered: boolean;
  readonly remoteSql: readonly string[];
  readonly plan: string;
  readonly ships: { readonly where: boolean; readonly orderBy: boolean; readonly limit: boolean };
  /** ORDER BY and LIMIT (and the filter, if any) all reach the secondary. */
  readonly ok: boolean;
}

/** Plans what match_<c> runs for this filter, under its settings, and reports what reaches the secondary. */
export async function explainMatch(topology: Topology, input: Omit<QueryInput, 'vector'> & { vector?: readonly number[] }): Promise<ExplainResult> {
  const c = collectionOf(topology, input.collection);
  const vector = input.vector ?? Array.from({ length: c.dimension }, (_, i) => (i === 0 ? 1 : 0));
  const { k, filter, vector: literal } = checkInput(c, { ...input, vector });
  return withDb('primary', topology.primary.url, input.connectTimeoutMs, async (db) => {
    const where = await compileFilter(db, filter);
    const vectorSchema = (await db.query<{ s: string }>(`SELECT extnamespace::regnamespace::text AS s FROM pg_catalog.pg_extension WHERE extname = 'vector'`)).rows[0]?.s ?? 'public';
    const sql = fillTemplate(matchQueryTemplate(c, vectorSchema, where !== null), where === null ? [String(k)] : [where, String(k)]);
    await db.query('BEGIN READ ONLY');
    try {
      // The settings match_<c> runs with.
      await db.query("SET LOCAL search_path = ''");
      await db.query('SET LOCAL plan_cache_mode = force_custom_plan');
      await db.query('SET LOCAL enable_sort = off');
      const rows = (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE, COSTS OFF) ${sql}`, [literal])).rows.map((r) => r['QUERY PLAN']);
      const remoteSql = rows.filter((l) => l.includes('Remote SQL:')).map((l) => l.replace(/^\s*Remote SQL:\s*/, ''));
      const all = remoteSql.join('\n');
      const ships = { where: where === null || / WHERE /.test(all), orderBy: / ORDER BY /.test(all), limit: / LIMIT /.test(all) };
      return { collection: c.name, filtered: where !== null, remoteSql, plan: rows.join('\n'), ships, ok: ships.where && ships.orderBy && ships.limit };
    } finally {
      await db.query('ROLLBACK').catch(() => undefined);
    }
  });
}
