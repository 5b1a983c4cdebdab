/**
 * Similarity search on the primary for a collection on one secondary: the secondary runs the whole query.
 * (Measured at 20k × 384: postgres_fdw with everything shipped 2.0× direct, dblink on a kept connection 1.14×.)
 *
 * - `public.match_<c>(query_embedding, match_count, filter)`: what applications call (SQL, supabase-js `rpc()`).
 *   SECURITY INVOKER: it checks nothing itself and calls `vecscale.search_<c>`, which the same roles may execute.
 * - `vecscale.search_<c>(…)`: SECURITY DEFINER, in vecscale's private schema (never an API schema), the one function
 *   that must run with its owner's rights — see its builder.
 * - `vecscale.match_sql_<c>(…)`: builds the statement (filter compiled, vector and LIMIT inlined); `vecscale explain`
 *   and `query --direct` use it too.
 */
import type { CollectionSpec, Metric } from '../config/types.js';
import { type Acl, API_SCHEMA, type FunctionObject, HELPER_SCHEMA, SECONDARY_SCHEMA } from '../model/state.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { COLUMN_TYPE_SQL, T, vectorType } from '../sql/types.js';
import { defineFunction, type FunctionArg } from './function-object.js';

export const DISTANCE_OPERATOR: Readonly<Record<Metric, string>> = { cosine: '<=>', l2: '<->', inner_product: '<#>' };
/** vecs refuses more than 1000 results; so do we. */
export const MAX_MATCH_COUNT = 1000;
/** The longest a match_<c> statement may run on the secondary, whatever the caller's statement_timeout (ms). */
export const MAX_REMOTE_MS = 60_000;

export const matchFunctionName = (collection: string): string => `match_${collection}`;
export const matchSqlFunctionName = (collection: string): string => `match_sql_${collection}`;
/** The SECURITY DEFINER half of match_<c> (one secondary), in vecscale's private schema. */
export const searchFunctionName = (collection: string): string => `search_${collection}`;

/**
 * The session's dblink connection to a server: named after the server and a fingerprint of its options, so an apply
 * that changes them (settings, host) makes match_* open a new connection (dblink keeps an open one as it is).
 */
export const connectionPrefix = (server: string): string => `vecscale:${server}:`;

/** match_<c>'s arguments: the API (with defaults) or the private halves (without). */
export const matchArgs = (c: CollectionSpec, vectorSchema: string, defaults: boolean): FunctionArg[] => [
  { name: 'query_embedding', type: vectorType(vectorSchema, c.dimension) },
  { name: 'match_count', type: T.int4, ...(defaults ? { default: '10' } : {}) },
  { name: 'filter', type: T.jsonb, ...(defaults ? { default: `'{}'::${T.jsonb}` } : {}) },
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
  END IF;`;

/** A statement template's `$1` as the query vector's literal: a constant the planner folds, whatever the plan cache does. */
export const inlineVector = (template: string, vectorSchema: string): string =>
  `pg_catalog.replace(${literal(template)}, '$1', pg_catalog.quote_literal(query_embedding::${T.text}) || ${literal(`::${vectorType(vectorSchema)}`)})`;

/**
 * `vecscale.match_sql_<c>(query_embedding, match_count, filter)` for either shape of collection: the compiled filter in
 * `where_sql`, the input checks, then `returning` (PL/pgSQL that returns the statement). Builds text only: IMMUTABLE,
 * invoker.
 */
export function matchSqlFunctionObject(c: CollectionSpec, vectorSchema: string, returning: string, acl: Acl): FunctionObject {
  const body = `
DECLARE
  where_sql ${T.text} := ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter);
BEGIN${matchInputChecks(c, vectorSchema)}
${returning}
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: matchSqlFunctionName(c.name),
    args: matchArgs(c, vectorSchema, false),
    returns: T.text,
    volatility: 'IMMUTABLE',
    body,
    acl,
  });
}

/** `vecscale.match_sql_<c>` of a collection on one secondary: the statement its secondary runs. */
export function matchSqlFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const inline = (filtered: boolean) => inlineVector(matchQueryTemplate(c, vectorSchema, filtered), vectorSchema);
  return matchSqlFunctionObject(
    c,
    vectorSchema,
    `  IF where_sql IS NULL THEN
    RETURN pg_catalog.format(${inline(false)}, match_count);
  END IF;
  RETURN pg_catalog.format(${inline(true)}, where_sql, match_count);`,
    // Only search_<c> calls it, as its owner; explain and query --direct run as the admin.
    {},
  );
}

/**
 * `vecscale.search_<c>(query_embedding, match_count, filter)`: sends the statement over a dblink connection the session
 * keeps, opened from the collection's foreign server (its options, so its session settings, and its user mapping);
 * only id, metadata, distance and the extracted columns come back, in one round trip. The call is EXECUTEd, so
 * auto_explain logs the SQL sent, LIMIT included.
 *
 * SECURITY DEFINER, because: dblink is executable by its owner only — a role that could call dblink() could run any SQL
 * on the secondary as the wrapper role, or connect anywhere — and the connection this function keeps in the session is
 * the owner's. Its callers (EXECUTE: the topology's readers) get rows of this one query, nothing more. It lives in
 * vecscale's private schema, never an API schema.
 *
 * The caller's statement_timeout reaches the secondary: what is left of it (at most MAX_REMOTE_MS, which also bounds a
 * caller without one) becomes the remote statement's own, so the secondary stops by itself when the primary gives up
 * (PG15's dblink cannot be interrupted while it waits).
 */
export function searchFunction(
  c: CollectionSpec,
  ctx: { vectorSchema: string; dblinkSchema: string; server: string; serverFingerprint: string },
  acl: Acl,
): FunctionObject {
  const dblink = (f: string) => `${ident(ctx.dblinkSchema)}.${f}`;
  const conn = literal(connectionPrefix(ctx.server) + ctx.serverFingerprint);
  const run = `RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM ${dblink('dblink').replace(/'/g, "''")}(%L, %L) AS t(${resultColumns(c).join(', ').replace(/'/g, "''")})', ${conn}, sql);`;
  const body = `
DECLARE
  sql ${T.text} := ${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}(query_embedding, match_count, filter);
  budget_ms ${T.float8} := pg_catalog.date_part('epoch', pg_catalog.current_setting('statement_timeout')::${T.interval}) * 1000;
  open_connections ${T.textArray} := COALESCE(${dblink('dblink_get_connections')}(), '{}'::${T.textArray});
  stale ${T.text};
BEGIN
  -- What is left of the caller's statement_timeout, at most ${MAX_REMOTE_MS} ms (also for a caller without one): the
  -- secondary cancels the statement itself when it runs out. (GREATEST and LEAST are SQL syntax, not functions: they
  -- cannot be qualified, and need no qualifying.)
  IF budget_ms > 0 THEN
    budget_ms := GREATEST(1, budget_ms - pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000);
  END IF;
  budget_ms := CASE WHEN budget_ms > 0 THEN LEAST(budget_ms, ${MAX_REMOTE_MS}) ELSE ${MAX_REMOTE_MS} END;
  sql := pg_catalog.format('SET LOCAL statement_timeout = %s; %s', pg_catalog.ceil(budget_ms)::${T.int8}, sql);
  IF NOT ${conn} = ANY (open_connections) THEN
    -- Connections to this server opened with its former options: close them.
    FOREACH stale IN ARRAY open_connections LOOP
      IF pg_catalog.starts_with(stale, ${literal(connectionPrefix(ctx.server))}) THEN
        PERFORM ${dblink('dblink_disconnect')}(stale);
      END IF;
    END LOOP;
    PERFORM ${dblink('dblink_connect')}(${conn}, ${literal(ctx.server)});
  END IF;
  BEGIN
    ${run}
  EXCEPTION
    WHEN query_canceled THEN
      -- A timeout or a cancel that lands while dblink reads the result can leave the connection mid-result: close
      -- it, so the session's next call opens a fresh one.
      PERFORM ${dblink('dblink_disconnect')}(${conn});
      RAISE;
    WHEN connection_exception OR internal_error THEN
      -- The session's connection broke (the secondary restarted) or was left busy: connect again, once. (dblink
      -- raises a connection it cannot send on as an internal error; nothing was sent then, so nothing runs twice.)
      PERFORM ${dblink('dblink_disconnect')}(${conn});
      PERFORM ${dblink('dblink_connect')}(${conn}, ${literal(ctx.server)});
      ${run}
  END;
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: searchFunctionName(c.name),
    args: matchArgs(c, ctx.vectorSchema, false),
    returns: `TABLE(${resultColumns(c).join(', ')})`,
    volatility: 'VOLATILE',
    definer: { reason: 'dblink is executable by its owner only, and the session keeps the owner\'s connection' },
    customPlan: true,
    body,
    acl,
  });
}

/**
 * `public.match_<c>(query_embedding vector(n), match_count int DEFAULT 10, filter jsonb DEFAULT '{}')`, the API of both
 * shapes of collection: SECURITY INVOKER, `returning` is its one statement.
 */
export function matchApiFunction(c: CollectionSpec, vectorSchema: string, returning: string, acl: Acl, customPlan = false): FunctionObject {
  return defineFunction({
    schema: API_SCHEMA,
    name: matchFunctionName(c.name),
    args: matchArgs(c, vectorSchema, true),
    returns: `TABLE(${resultColumns(c).join(', ')})`,
    volatility: 'VOLATILE',
    ...(customPlan ? { customPlan: true } : {}),
    body: `
BEGIN
  ${returning}
END`,
    acl,
  });
}

/** A collection on one secondary: match_<c> passes its arguments to vecscale.search_<c> and returns what that returns. */
export function matchFunction(c: CollectionSpec, vectorSchema: string, acl: Acl): FunctionObject {
  return matchApiFunction(c, vectorSchema, `RETURN QUERY SELECT * FROM ${qualified(HELPER_SCHEMA, searchFunctionName(c.name))}(query_embedding, match_count, filter);`, acl);
}
