/**
 * Similarity search on the primary, for both shapes of collection: the secondaries run the whole query.
 * (Measured at 20k × 384: postgres_fdw with everything shipped 2.0× direct, dblink on a kept connection 1.14×.)
 *
 * - `public.match_<c>(query_embedding, match_count, filter, ef_search, probes, iterative_scan)`: what applications
 *   call (SQL, supabase-js `rpc()`). SECURITY INVOKER: it checks nothing itself and calls `vecscale.search_<c>`, which
 *   the same roles may execute.
 * - `vecscale.search_<c>(…)` (./fan-out.ts): SECURITY DEFINER, in vecscale's private schema (never an API schema), the
 *   one function that must run with its owner's rights; it sends the statements to the secondaries over dblink.
 * - `vecscale.match_sql_<c>(…)`: builds the statement (filter compiled, vector and LIMIT inlined) — for a sharded
 *   collection one per partition; `vecscale explain` and `query --direct` use it too.
 */
import type { CollectionSpec, Metric } from '../config/types.js';
import { type Acl, API_SCHEMA, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, SECONDARY_SCHEMA } from '../model/state.js';
import { WRITE_LOCK_CLASS, writeLockKey } from '../model/write-lock.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { COLUMN_TYPE_SQL, T, vectorType } from '../sql/types.js';
import { defineFunction, type FunctionArg } from './function-object.js';
import { ownerConditionSql } from './access.js';

export const DISTANCE_OPERATOR: Readonly<Record<Metric, string>> = { cosine: '<=>', l2: '<->', inner_product: '<#>' };
/** vecs refuses more than 1000 results; so do we. */
export const MAX_MATCH_COUNT = 1000;

export const matchFunctionName = (collection: string): string => `match_${collection}`;
export const matchSqlFunctionName = (collection: string): string => `match_sql_${collection}`;
/** The SECURITY DEFINER half of match_<c> (one secondary), in vecscale's private schema. */
export const searchFunctionName = (collection: string): string => `search_${collection}`;

/** match_<c>'s arguments: the API (with defaults) or the private halves (without). */
export const matchArgs = (c: CollectionSpec, vectorSchema: string, defaults: boolean): FunctionArg[] => [
  { name: 'query_embedding', type: vectorType(vectorSchema, c.dimension) },
  { name: 'match_count', type: T.int4, ...(defaults ? { default: '10' } : {}) },
  { name: 'filter', type: T.jsonb, ...(defaults ? { default: `'{}'::${T.jsonb}` } : {}) },
];

/**
 * match_<c>'s per-call search settings, after its first three arguments: NULL (the default) keeps the collection's
 * own (the server's session settings). Bounded by search_<c>.
 */
export const searchSettingsArgs = (defaults: boolean): FunctionArg[] => [
  { name: 'ef_search', type: T.int4, ...(defaults ? { default: 'NULL' } : {}) },
  { name: 'probes', type: T.int4, ...(defaults ? { default: 'NULL' } : {}) },
  { name: 'iterative_scan', type: T.text, ...(defaults ? { default: 'NULL' } : {}) },
];

/** The columns match_<c> returns, as `name type`: id, metadata, distance, then the extracted columns. */
export const resultColumns = (c: CollectionSpec): string[] => [
  `id ${T.varchar}`,
  `metadata ${T.jsonb}`,
  `distance ${T.float8}`,
  ...c.columns.map((x) => `${ident(x.name)} ${COLUMN_TYPE_SQL[x.type]}`),
];

/**
 * The query a match call runs *on the secondary*, against its wrapper view vecscale.<c>: `%s` where the filter
 * (filtered form only) and the LIMIT go, `$1` for the query vector. Every name in it is qualified: it runs under the
 * wrapper session's search path there.
 */
export function matchQueryTemplate(c: CollectionSpec, vectorSchema: string, filtered: boolean): string {
  const distance = `t.embedding OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) $1`;
  const extra = c.columns.map((x) => `, t.${ident(x.name)}`).join('');
  return `SELECT t.id, t.metadata, (${distance})::${T.float8} AS distance${extra} FROM ${qualified(SECONDARY_SCHEMA, c.name)} t${filtered ? ' WHERE %s' : ''} ORDER BY ${distance} LIMIT %s`;
}

/** Fills a template as PL/pgSQL's format('%s') would. */
export function fillTemplate(template: string, values: readonly string[]): string {
  let i = 0;
  return template.replace(/%s/g, () => values[i++] ?? '');
}

/** PL/pgSQL checks of match_sql_<c>'s inputs (both shapes), before any round trip. */
export const matchInputChecks = (c: CollectionSpec, vectorSchema: string): string => `
  IF query_embedding IS NULL THEN
    RAISE EXCEPTION 'vecscale: query_embedding must not be null' USING ERRCODE = '22004';
  END IF;
  IF match_count IS NULL OR match_count < 1 OR match_count > ${MAX_MATCH_COUNT} THEN
    RAISE EXCEPTION 'vecscale: match_count must be between 1 and ${MAX_MATCH_COUNT} (got %)', match_count USING ERRCODE = '22023';
  END IF;
  -- A parameter's vector(n) is not enforced in PL/pgSQL: check before the round trip.
  IF ${ident(vectorSchema)}.vector_dims(query_embedding) <> ${c.dimension} THEN
    RAISE EXCEPTION 'vecscale: query_embedding has % dimensions; collection ${c.name} has ${c.dimension}', ${ident(vectorSchema)}.vector_dims(query_embedding) USING ERRCODE = '22023';
  END IF;${c.metric === 'cosine' ? zeroVectorCheck(vectorSchema) : ''}`;

/**
 * Cosine distance divides by the vectors' norms: pgvector returns NaN for a zero query vector, ranked anywhere. Its
 * cosine sums the squares in single precision, as `<#>` does, so [1e-25, 0, 0] is zero there too (vector_norm, in
 * double precision, says 1e-25).
 */
const zeroVectorCheck = (vectorSchema: string): string => `
  IF (query_embedding OPERATOR(${ident(vectorSchema)}.<#>) query_embedding) = 0 THEN
    RAISE EXCEPTION 'vecscale: a zero vector has no cosine distance' USING ERRCODE = '22023',
      HINT = 'a vector whose every component is 0 has no direction to compare: query with another one';
  END IF;`;

/**
 * A collection with owned rows: the statement builders' last argument, `owner` — the caller's claim when it sees only
 * its own rows, NULL (the default: vecscale's own callers, explain and query --direct) for every row.
 */
export const ownerArg = (c: CollectionSpec): FunctionArg[] => (c.access === undefined ? [] : [{ name: 'owner', type: T.text, default: 'NULL' }]);

/**
 * PL/pgSQL of a statement builder: with `owner`, `where_sql` becomes the owner condition AND the caller's filter, so
 * the secondary ranks only the caller's rows (top-k of what it may see), and no filter can widen it (the filter is
 * compiled into one parenthesised condition by vecscale.filter_sql).
 */
export const ownerRestriction = (c: CollectionSpec): string =>
  c.access === undefined
    ? ''
    : `
  IF owner IS NOT NULL THEN
    where_sql := ${ownerConditionSql(c)} || CASE WHEN where_sql IS NULL THEN '' ELSE ' AND (' || where_sql || ')' END;
  END IF;`;

/**
 * A statement template's `$1` as the query vector's literal (`vector_sql`, declared by match_sql_<c>): a constant the
 * planner folds, whatever the plan cache does.
 */
export const inlineVector = (template: string): string => `pg_catalog.replace(${literal(template)}, '$1', vector_sql)`;

/**
 * `vecscale.match_sql_<c>(query_embedding, match_count, filter)` for either shape of collection: the compiled filter in
 * `where_sql`, the query vector's literal in `vector_sql`, the input checks, then `returning` (PL/pgSQL that returns
 * the statement, or a sharded collection's statements). Builds text only: IMMUTABLE, invoker. Only search_<c> calls
 * it, as its owner; explain and query --direct run as the admin.
 */
export function matchSqlFunctionObject(c: CollectionSpec, vectorSchema: string, returns: string, returning: string): FunctionObject {
  const body = `
DECLARE
  where_sql ${T.text} := ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter);
  vector_sql ${T.text} := pg_catalog.quote_literal(query_embedding::${T.text}) || ${literal(`::${vectorType(vectorSchema)}`)};
BEGIN${matchInputChecks(c, vectorSchema)}${ownerRestriction(c)}
${returning}
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: matchSqlFunctionName(c.name),
    args: [...matchArgs(c, vectorSchema, false), ...ownerArg(c)],
    returns,
    volatility: 'IMMUTABLE',
    body,
    acl: {},
  });
}

/** `vecscale.match_sql_<c>` of a collection on one secondary: the statement its secondary runs. */
export function matchSqlFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const inline = (filtered: boolean) => inlineVector(matchQueryTemplate(c, vectorSchema, filtered));
  return matchSqlFunctionObject(
    c,
    vectorSchema,
    T.text,
    `  IF where_sql IS NULL THEN
    RETURN pg_catalog.format(${inline(false)}, match_count);
  END IF;
  RETURN pg_catalog.format(${inline(true)}, where_sql, match_count);`,
  );
}

/**
 * An API read function of `c` (match_<c>, hybrid_<c>): SECURITY INVOKER, `args` with their defaults, returning
 * `private`'s rows (the function of that name in vecscale's schema, called with the same arguments). While a move's
 * cutover switches the collection's layout it waits — the view first, as every writer, then the write lock
 * (src/model/write-lock.ts) — and if the layout changed shape under the call, it runs `public.<name>` as defined now.
 */
export function apiReadFunction(
  c: CollectionSpec,
  spec: { readonly name: string; readonly private: string; readonly args: readonly FunctionArg[]; readonly returns: readonly string[] },
  acl: Acl,
): FunctionObject {
  const args = spec.args.map((a) => a.name).join(', ');
  return defineFunction({
    schema: API_SCHEMA,
    name: spec.name,
    args: [...spec.args],
    returns: `TABLE(${spec.returns.join(', ')})`,
    volatility: 'VOLATILE',
    body: `
BEGIN
  LOCK TABLE ${qualified(API_SCHEMA, c.name)} IN ACCESS SHARE MODE;
  PERFORM pg_catalog.pg_advisory_xact_lock_shared(${WRITE_LOCK_CLASS}, ${writeLockKey(c.name)});
  IF (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = pg_catalog.to_regclass(${literal(qualified(REMOTE_SCHEMA, c.name))})) OPERATOR(pg_catalog.<>) '${c.shards === undefined ? 'f' : 'p'}'::pg_catalog."char" THEN
    RETURN QUERY SELECT * FROM ${qualified(API_SCHEMA, spec.name)}(${args});
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM ${qualified(HELPER_SCHEMA, spec.private)}(${args});
END`,
    acl,
  });
}

/**
 * `public.match_<c>(query_embedding vector(n), match_count int DEFAULT 10, filter jsonb DEFAULT '{}', ef_search int
 * DEFAULT NULL, probes int DEFAULT NULL, iterative_scan text DEFAULT NULL)`, the API of both shapes of collection:
 * SECURITY INVOKER; it passes its arguments to vecscale.search_<c> and returns what that returns.
 */
export function matchFunction(c: CollectionSpec, vectorSchema: string, acl: Acl): FunctionObject {
  const args = [...matchArgs(c, vectorSchema, true), ...searchSettingsArgs(true)];
  return apiReadFunction(c, { name: matchFunctionName(c.name), private: searchFunctionName(c.name), args, returns: resultColumns(c) }, acl);
}
