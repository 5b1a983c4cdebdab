/**
 * `vecscale/client`: match_<c> calls for applications, with a `pg` client or pool or a Kysely instance — no SQL
 * strings in user code. Typed by the file `vecscale types` writes:
 *
 * ```ts
 * import { createMatcher } from 'vecscale/client';
 * import type { VecscaleMatches } from './db/vecscale.js';
 * const match = createMatcher<VecscaleMatches>(pool);          // or a Kysely instance
 * const rows = await match('docs', [0.1, 0.2, 0.3], { limit: 5, filter: { year: { $gt: 2010 } }, efSearch: 200 });
 * ```
 *
 * The call is `public.match_<c>(query_embedding => $1, match_count => $2, filter => $3, ef_search => $4, probes => $5,
 * iterative_scan => $6)`: every value a parameter, the function name built only from a collection name that passes
 * the topology's own rule, so nothing a caller passes becomes SQL.
 */
import { CompiledQuery } from 'kysely';

/** JSON as PostgreSQL's jsonb holds it. */
export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];
/** A value vecs' filter operators compare with. */
export type FilterValue = string | number | boolean;
/** vecs' comparison operators. */
export type FilterOperator = '$eq' | '$ne' | '$lt' | '$lte' | '$gt' | '$gte' | '$in' | '$contains';
/** Exactly one operator: `K`, with `V`. */
type OneOperator<K extends FilterOperator, V> = { [P in K]: V } & { [P in Exclude<FilterOperator, K>]?: never };
/** One metadata key's condition in vecs' filter language (\`{ "year": { "$gt": 2010 } }\`): one operator. */
export type FieldFilter =
  | OneOperator<'$eq', FilterValue | null | Json[] | { [key: string]: Json | undefined }>
  | OneOperator<'$ne', FilterValue | null | Json[] | { [key: string]: Json | undefined }>
  | OneOperator<'$lt', FilterValue>
  | OneOperator<'$lte', FilterValue>
  | OneOperator<'$gt', FilterValue>
  | OneOperator<'$gte', FilterValue>
  | OneOperator<'$in', FilterValue[]>
  | OneOperator<'$contains', FilterValue>;
/** vecs' filter language (the same type as the generated file's `Filter`). */
export type Filter = { $and: Filter[] } | { $or: Filter[] } | { [key: string]: FieldFilter };

export type IterativeScan = 'off' | 'relaxed_order' | 'strict_order';

export interface MatchOptions {
  /** match_count: 1–1000 (default 10). */
  readonly limit?: number;
  readonly filter?: Filter;
  /** Per-call hnsw.ef_search, 1–1000 (default: the collection's). */
  readonly efSearch?: number;
  /** Per-call ivfflat.probes, 1–32768. */
  readonly probes?: number;
  readonly iterativeScan?: IterativeScan;
}

/** A call ready for `client.query(sql, parameters)`. */
export interface MatchCall {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/** A `pg` Client or Pool (or anything with its `query(text, values)`). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}
/** A Kysely instance (anything with its `executeQuery`). */
export interface KyselyQueryable {
  executeQuery(query: CompiledQuery): Promise<{ rows: unknown[] }>;
}

/**
 * A lowercase identifier short enough for match_<c> (the topology's names are stricter still: src/config/rules.ts):
 * match_<c> is then a plain identifier, written into the statement as it is.
 */
const COLLECTION = /^[a-z_][a-z0-9_]{0,56}$/;

/** A vector as its text form, `'[1,2,3]'`; every number must be finite. */
export function formatVector(values: readonly number[]): string {
  for (const [i, v] of values.entries()) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`vector[${i}] is not a finite number`);
  }
  return `[${values.join(',')}]`;
}

/** A vector's text form (as `pg` returns a vector column) as numbers. */
export function parseVector(text: string): number[] {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) throw new TypeError(`not a vector: ${JSON.stringify(text.slice(0, 40))}`);
  const inner = t.slice(1, -1).trim();
  if (inner === '') return [];
  return inner.split(',').map((x) => {
    const n = Number(x);
    if (x.trim() === '' || !Number.isFinite(n)) throw new TypeError(`not a vector: ${JSON.stringify(text.slice(0, 40))}`);
    return n;
  });
}

/** The SQL and parameters of `public.match_<collection>(…)`. */
export function matchQuery(collection: string, embedding: readonly number[] | string, opts: MatchOptions = {}): MatchCall {
  // A string, checked once and used as checked (an object's toString could answer differently the second time).
  if (typeof collection !== 'string' || !COLLECTION.test(collection)) {
    throw new TypeError(`not a collection name: ${typeof collection === 'string' ? JSON.stringify(collection.slice(0, 70)) : typeof collection}`);
  }
  const vector = typeof embedding === 'string' ? embedding : formatVector(embedding);
  return {
    sql:
      `SELECT * FROM public.match_${collection}(query_embedding => $1, match_count => $2, filter => $3::pg_catalog.jsonb, ` +
      'ef_search => $4, probes => $5, iterative_scan => $6)',
    parameters: [vector, opts.limit ?? 10, JSON.stringify(opts.filter ?? {}), opts.efSearch ?? null, opts.probes ?? null, opts.iterativeScan ?? null],
  };
}

const isKysely = (db: PgQueryable | KyselyQueryable): db is KyselyQueryable => typeof (db as KyselyQueryable).executeQuery === 'function';

/** Runs match_<collection> on `db` (a `pg` client or pool, or a Kysely instance): its rows, nearest first. */
export async function match<Row = Record<string, unknown>>(
  db: PgQueryable | KyselyQueryable,
  collection: string,
  embedding: readonly number[] | string,
  opts: MatchOptions = {},
): Promise<Row[]> {
  const call = matchQuery(collection, embedding, opts);
  const result = isKysely(db) ? await db.executeQuery(CompiledQuery.raw(call.sql, [...call.parameters])) : await db.query(call.sql, [...call.parameters]);
  return result.rows as Row[];
}

/**
 * `match`, typed by the generated `VecscaleMatches` (collection name → row): the collection must be one of the
 * topology's, and the rows have its columns.
 */
export function createMatcher<M extends object>(db: PgQueryable | KyselyQueryable) {
  return <C extends keyof M & string>(collection: C, embedding: readonly number[] | string, opts: MatchOptions = {}): Promise<M[C][]> =>
    match<M[C]>(db, collection, embedding, opts);
}
