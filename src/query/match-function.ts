/**
 * `match_<collection>(query_embedding, match_count, filter)` on the primary. PL/pgSQL that EXECUTEs its query, so
 * every call is planned with its own values: the LIMIT and the filter are constants postgres_fdw can ship (a
 * generic plan would keep them local). Unfiltered calls read the plain foreign table; filtered calls read one with
 * use_remote_estimate, so the secondary's own statistics price the shipped LIMIT, and `enable_sort = off` keeps the
 * primary from choosing to sort locally. The SQL template is shared with `vecscale explain`.
 */
import { createHash } from 'node:crypto';
import type { CollectionSpec, Metric } from '../config/types.js';
import { API_SCHEMA, type FunctionObject, HELPER_SCHEMA, keys, REMOTE_SCHEMA, SEARCH_SCHEMA } from '../model/state.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { FILTER_SQL_BODY } from './filter-function.js';

export const DISTANCE_OPERATOR: Readonly<Record<Metric, string>> = { cosine: '<=>', l2: '<->', inner_product: '<#>' };
/** vecs refuses more than 1000 results; so do we. */
export const MAX_MATCH_COUNT = 1000;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const DOLLAR = '$vecscale$';

export const matchFunctionName = (collection: string): string => `match_${collection}`;

/**
 * The query a match call runs, with `%s` where the filter (filtered form only) and the LIMIT go, and `$1` for the
 * query vector. Columns: id, metadata, distance, then the collection's extracted columns.
 */
export function matchQueryTemplate(c: CollectionSpec, vectorSchema: string, filtered: boolean, fromOverride?: string): string {
  const distance = `t.embedding OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) $1`;
  const extra = c.columns.map((x) => `, t.${ident(x.name)}`).join('');
  // On a secondary (`vecscale query --direct`) the same query reads its view public.<c>.
  const from = fromOverride ?? (filtered ? qualified(SEARCH_SCHEMA, c.name) : qualified(REMOTE_SCHEMA, c.name));
  return `SELECT t.id, t.metadata, (${distance})::double precision AS distance${extra} FROM ${from} t${filtered ? ' WHERE %s' : ''} ORDER BY ${distance} LIMIT %s`;
}

/** Fills a template as PL/pgSQL's format('%s') would. */
export function fillTemplate(template: string, values: readonly string[]): string {
  let i = 0;
  return template.replace(/%s/g, () => values[i++] ?? '');
}

function fn(schema: string, name: string, argTypes: string, create: string, body: string, grantees: readonly string[]): FunctionObject {
  return {
    kind: 'function',
    key: keys.function(schema, name),
    managed: true,
    schema,
    name,
    definitionMd5: md5(create),
    bodyMd5: md5(body),
    grantees: [...grantees].sort(),
    create,
    argTypes,
  };
}

/** `vecscale.filter_sql(jsonb)`: the filter compiler (src/query/filter-function.ts). */
export function filterFunction(): FunctionObject {
  const create =
    `CREATE FUNCTION ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter jsonb) RETURNS text ` +
    `LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = '' AS ${DOLLAR}${FILTER_SQL_BODY}${DOLLAR}`;
  return fn(HELPER_SCHEMA, 'filter_sql', 'jsonb', create, FILTER_SQL_BODY, []);
}

/** `public.match_<c>(query_embedding vector(n), match_count int DEFAULT 10, filter jsonb DEFAULT '{}')`. */
export function matchFunction(c: CollectionSpec, vectorSchema: string, apiRoles: readonly string[]): FunctionObject {
  const vector = `${ident(vectorSchema)}.vector`;
  const body = `
BEGIN
  IF query_embedding IS NULL THEN
    RAISE EXCEPTION 'vecscale: query_embedding must not be null' USING ERRCODE = '22004';
  END IF;
  IF match_count IS NULL OR match_count < 1 OR match_count > ${MAX_MATCH_COUNT} THEN
    RAISE EXCEPTION 'vecscale: match_count must be between 1 and ${MAX_MATCH_COUNT} (got %)', match_count USING ERRCODE = '22023';
  END IF;
  IF ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter) IS NULL THEN
    RETURN QUERY EXECUTE pg_catalog.format(${literal(matchQueryTemplate(c, vectorSchema, false))}, match_count) USING query_embedding;
  ELSE
    RETURN QUERY EXECUTE pg_catalog.format(${literal(matchQueryTemplate(c, vectorSchema, true))},
      ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter), match_count) USING query_embedding;
  END IF;
END`;
  const columns = ['id character varying', 'metadata jsonb', 'distance double precision', ...c.columns.map((x) => `${ident(x.name)} ${x.type}`)];
  const name = matchFunctionName(c.name);
  const create =
    `CREATE FUNCTION ${qualified(API_SCHEMA, name)}(query_embedding ${vector}(${c.dimension}), match_count integer DEFAULT 10, filter jsonb DEFAULT '{}'::jsonb) ` +
    `RETURNS TABLE(${columns.join(', ')}) LANGUAGE plpgsql STABLE SECURITY DEFINER ` +
    `SET search_path = '' SET plan_cache_mode = force_custom_plan SET enable_sort = off ` +
    `AS ${DOLLAR}${body}${DOLLAR}`;
  return fn(API_SCHEMA, name, `${vector}, integer, jsonb`, create, body, apiRoles);
}
