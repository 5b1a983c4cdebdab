/**
 * `match_<collection>(query_embedding, match_count, filter)` on the primary: the secondary runs the whole query.
 * (Measured at 20k × 384: postgres_fdw with everything shipped 2.0× direct, dblink on a kept connection 1.14×.)
 */
import type { CollectionSpec, Metric } from '../config/types.js';
import { API_SCHEMA, type FunctionObject, HELPER_SCHEMA } from '../model/state.js';
import { DOLLAR, functionObject } from './function-object.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { FILTER_SQL_BODY } from './filter-function.js';

export const DISTANCE_OPERATOR: Readonly<Record<Metric, string>> = { cosine: '<=>', l2: '<->', inner_product: '<#>' };
/** vecs refuses more than 1000 results; so do we. */
export const MAX_MATCH_COUNT = 1000;


export const matchFunctionName = (collection: string): string => `match_${collection}`;

/**
 * The query a match call runs *on the secondary*, against its view public.<c>: `%s` where the filter (filtered form
 * only) and the LIMIT go, `$1` for the query vector. Columns: id, metadata, distance, then the extracted columns.
 */
export function matchQueryTemplate(c: CollectionSpec, vectorSchema: string, filtered: boolean): string {
  const distance = `t.embedding OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) $1`;
  const extra = c.columns.map((x) => `, t.${ident(x.name)}`).join('');
  return `SELECT t.id, t.metadata, (${distance})::double precision AS distance${extra} FROM ${qualified(API_SCHEMA, c.name)} t${filtered ? ' WHERE %s' : ''} ORDER BY ${distance} LIMIT %s`;
}

/** Fills a template as PL/pgSQL's format('%s') would. */
export function fillTemplate(template: string, values: readonly string[]): string {
  let i = 0;
  return template.replace(/%s/g, () => values[i++] ?? '');
}

/** The column list match_<c> returns, as `name type`. */
const resultColumns = (c: CollectionSpec): string[] => [
  'id character varying',
  'metadata jsonb',
  'distance double precision',
  ...c.columns.map((x) => `${ident(x.name)} ${x.type}`),
];

export const matchSqlFunctionName = (collection: string): string => `match_sql_${collection}`;
/**
 * The session's dblink connection to a server: named after the server and a fingerprint of its options, so an apply
 * that changes them (settings, host) makes match_* open a new connection (dblink keeps an open one as it is).
 */
export const connectionPrefix = (server: string): string => `vecscale:${server}:`;


/** `vecscale.filter_sql(jsonb)`: the filter compiler (src/query/filter-function.ts). */
export function filterFunction(): FunctionObject {
  const create =
    `CREATE FUNCTION ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter jsonb) RETURNS text ` +
    `LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = '' AS ${DOLLAR}${FILTER_SQL_BODY}${DOLLAR}`;
  return functionObject({ schema: HELPER_SCHEMA, name: 'filter_sql', argTypes: 'jsonb', create, body: FILTER_SQL_BODY, grantees: [] });
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

/**
 * `vecscale.match_sql_<c>(query_embedding, match_count, filter)`: the SQL a match call sends to the secondary, with
 * the vector, the filter and the LIMIT inlined. One builder for match_<c> and `vecscale explain`.
 */
export function matchSqlFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const inline = (filtered: boolean) => inlineVector(matchQueryTemplate(c, vectorSchema, filtered), vectorSchema);
  return matchSqlFunctionObject(
    c,
    vectorSchema,
    `  IF where_sql IS NULL THEN
    RETURN pg_catalog.format(${inline(false)}, match_count);
  END IF;
  RETURN pg_catalog.format(${inline(true)}, where_sql, match_count);`,
  );
}

/** A statement template's `$1` as the query vector's literal: a constant the planner folds, whatever the plan cache does. */
export const inlineVector = (template: string, vectorSchema: string): string =>
  `pg_catalog.replace(${literal(template)}, '$1', pg_catalog.quote_literal(query_embedding::text) || ${literal(`::${ident(vectorSchema)}.vector`)})`;

/**
 * `vecscale.match_sql_<c>(query_embedding, match_count, filter)` for either shape of collection: the compiled filter in
 * `where_sql`, the input checks, then `returning` (PL/pgSQL that returns the statement).
 */
export function matchSqlFunctionObject(c: CollectionSpec, vectorSchema: string, returning: string): FunctionObject {
  const vector = `${ident(vectorSchema)}.vector`;
  const body = `
DECLARE
  where_sql text := ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter);
BEGIN${matchInputChecks(c, vectorSchema)}
${returning}
END`;
  const name = matchSqlFunctionName(c.name);
  const create =
    `CREATE FUNCTION ${qualified(HELPER_SCHEMA, name)}(query_embedding ${vector}(${c.dimension}), match_count integer, filter jsonb) ` +
    `RETURNS text LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS ${DOLLAR}${body}${DOLLAR}`;
  return functionObject({ schema: HELPER_SCHEMA, name, argTypes: `${vector}, integer, jsonb`, create, body, grantees: [] });
}

/**
 * `public.match_<c>(query_embedding vector(n), match_count int DEFAULT 10, filter jsonb DEFAULT '{}')`: the secondary
 * runs the whole query (ORDER BY distance LIMIT k and the filter) and returns only id, metadata, distance and the
 * extracted columns, over a dblink connection the session keeps, opened from the collection's foreign server (its
 * options, so its session settings, and its user mapping). postgres_fdw would cost five round trips per call and
 * fetch every returned embedding. The call is EXECUTEd, so auto_explain logs the SQL sent, LIMIT included.
 */
export function matchFunction(
  c: CollectionSpec,
  ctx: { vectorSchema: string; dblinkSchema: string; server: string; serverFingerprint: string },
  apiRoles: readonly string[],
): FunctionObject {
  const vector = `${ident(ctx.vectorSchema)}.vector`;
  const dblink = (f: string) => `${ident(ctx.dblinkSchema)}.${f}`;
  const conn = literal(connectionPrefix(ctx.server) + ctx.serverFingerprint);
  const run = `RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM ${dblink('dblink').replace(/'/g, "''")}(%L, %L) AS t(${resultColumns(c).join(', ').replace(/'/g, "''")})', ${conn}, sql);`;
  const body = `
DECLARE
  sql text := ${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}(query_embedding, match_count, filter);
  open_connections text[] := COALESCE(${dblink('dblink_get_connections')}(), '{}'::text[]);
  stale text;
BEGIN
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
  EXCEPTION WHEN connection_exception THEN
    -- The session's connection broke (the secondary restarted): connect again, once.
    PERFORM ${dblink('dblink_disconnect')}(${conn});
    PERFORM ${dblink('dblink_connect')}(${conn}, ${literal(ctx.server)});
    ${run}
  END;
END`;
  const name = matchFunctionName(c.name);
  const create =
    `CREATE FUNCTION ${qualified(API_SCHEMA, name)}(query_embedding ${vector}(${c.dimension}), match_count integer DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb) ` +
    `RETURNS TABLE(${resultColumns(c).join(', ')}) LANGUAGE plpgsql VOLATILE SECURITY DEFINER ` +
    `SET search_path = '' SET plan_cache_mode = force_custom_plan ` +
    `AS ${DOLLAR}${body}${DOLLAR}`;
  return functionObject({ schema: API_SCHEMA, name, argTypes: `${vector}, integer, jsonb`, create, body, grantees: apiRoles });
}
