/**
 * Hybrid search (`text: { source, language }`, README "Hybrid search"): full text and vectors merged by Reciprocal
 * Rank Fusion, as Supabase's `hybrid_search` guide does on one database — across pods.
 *
 * - `public.hybrid_<c>(query_text, query_embedding, match_count, filter, full_text_weight, semantic_weight, rrf_k,
 *   ef_search, probes, iterative_scan)`: what applications call. SECURITY INVOKER; it calls `vecscale.hybrid_<c>`.
 * - `vecscale.hybrid_<c>(…)`: SECURITY DEFINER (dblink, as search_<c>: src/query/fan-out.ts), in vecscale's private
 *   schema. One statement per target, sent at once: both legs in one round trip.
 * - `vecscale.text_sql_<c>(…)`: builds the statements (filter compiled, owner condition, query vector and text inlined).
 *
 * Each target answers its two legs, each limited to the candidate count `least(match_count, 30) * 2` (Supabase's):
 * the full-text leg — rows whose `to_tsvector(language, metadata->>source)` matches `websearch_to_tsquery(language,
 * query_text)` (the GIN index on the secondary), by `ts_rank_cd` descending, then id — and the semantic leg, by
 * distance (the vector index). The filter (and the owner condition) applies to both. The primary ranks the union of
 * the targets' legs — `row_number()` by (ts_rank_cd desc, id) and by (distance, id) — keeps each leg's first
 * candidate-count rows, joins them FULL OUTER on id, and orders by Supabase's RRF score,
 * `coalesce(1.0 / (rrf_k + full_text_rank), 0.0) * full_text_weight + coalesce(1.0 / (rrf_k + semantic_rank), 0.0) *
 * semantic_weight` descending, then id, limited to `least(match_count, 30)`.
 *
 * Why a sharded merge is exact: every row of the global top N of a leg is in its shard's top N of that leg (the same
 * order), so the union of the shards' top N holds the global top N, and ranking the union gives the global ranks —
 * RRF over global ranks, never per-shard ones. (The semantic leg's per-shard order is the index's, by distance only:
 * rows at exactly the same distance at a shard's cut-off may differ from the id order the primary ranks by.)
 * Ties: Supabase's `row_number()` without a tie-break orders tied rows arbitrarily; here every order ends with id, in
 * byte order (COLLATE "C") on the pods and the primary alike, whatever their databases' collations.
 */
import type { CollectionSpec, ShardedCollection, TextSearchSpec } from '../config/types.js';
import { partsOf } from '../model/placement.js';
import { type Acl, type FunctionObject, HELPER_SCHEMA, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { documentExpression, textSearchConfig } from '../model/text-search.js';
import { metadataValue } from '../sql/metadata-cast.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { COLUMN_TYPE_SQL, T, vectorType } from '../sql/types.js';
import { type FanOutContext, fanOutFunction } from './fan-out.js';
import { defineFunction, type FunctionArg } from './function-object.js';
import { apiReadFunction, DISTANCE_OPERATOR, matchInputChecks, ownerArg, ownerRestriction, searchSettingsArgs } from './match-function.js';

export const hybridFunctionName = (collection: string): string => `hybrid_${collection}`;
export const textSqlFunctionName = (collection: string): string => `text_sql_${collection}`;

/** Supabase's cap: at most 30 results, each leg 2 × that many candidates. */
export const HYBRID_MAX_RESULTS = 30;

/** A collection with full-text search. */
export type TextCollection = CollectionSpec & { readonly text: TextSearchSpec };

/** hybrid_<c>'s arguments before the search settings: the API's (with defaults) or the private half's (without). */
export const hybridArgs = (c: CollectionSpec, vectorSchema: string, defaults: boolean): FunctionArg[] => {
  const d = (value: string) => (defaults ? { default: value } : {});
  return [
    { name: 'query_text', type: T.text },
    { name: 'query_embedding', type: vectorType(vectorSchema, c.dimension) },
    { name: 'match_count', type: T.int4, ...d('10') },
    { name: 'filter', type: T.jsonb, ...d(`'{}'::${T.jsonb}`) },
    { name: 'full_text_weight', type: T.float8, ...d('1') },
    { name: 'semantic_weight', type: T.float8, ...d('1') },
    { name: 'rrf_k', type: T.int4, ...d('50') },
  ];
};

const extractedColumns = (c: CollectionSpec): string[] => c.columns.map((x) => `${ident(x.name)} ${COLUMN_TYPE_SQL[x.type]}`);

/** What hybrid_<c> returns: id, metadata, the extracted columns, the RRF score and each leg's rank (NULL: not in it). */
export const hybridResultColumns = (c: CollectionSpec): string[] => [
  `id ${T.varchar}`,
  `metadata ${T.jsonb}`,
  ...extractedColumns(c),
  `score ${T.float8}`,
  `full_text_rank ${T.int4}`,
  `semantic_rank ${T.int4}`,
];

/** Each target's answer: the leg ('f' full text, 's' semantic), the row, and its key (ts_rank_cd, or the distance). */
const remoteColumns = (c: CollectionSpec): string[] => [`leg ${T.text}`, `id ${T.varchar}`, `metadata ${T.jsonb}`, ...extractedColumns(c), `score ${T.float8}`];

/**
 * The statement one target runs, as a format() template: `%1$s` the tsquery, `%2$s` ` AND (<where>)` or nothing,
 * `%3$s` ` WHERE <where>` or nothing, `%4$s` the candidate count, `%5$s` the query vector's literal. `from` is the
 * relation (alias t), `vec` its vector column, `extra` its extracted columns' select items.
 */
function legsTemplate(c: TextCollection, vectorSchema: string, from: string, vec: string, extra: string): string {
  const esc = (sql: string) => sql.replace(/%/g, '%%');
  const document = esc(documentExpression(c.text, 't'));
  const distance = `t.${vec} OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) %5$s`;
  const row = `t.id, t.metadata${esc(extra)}`;
  const fullText =
    `(SELECT 'f'::${T.text} AS leg, ${row}, pg_catalog.ts_rank_cd(${document}, %1$s)::${T.float8} AS score FROM ${from} t ` +
    `WHERE ${document} OPERATOR(pg_catalog.@@) %1$s%2$s ORDER BY score DESC, t.id COLLATE pg_catalog."C" LIMIT %4$s)`;
  const semantic = `(SELECT 's'::${T.text} AS leg, ${row}, (${distance})::${T.float8} AS score FROM ${from} t%3$s ORDER BY ${distance} LIMIT %4$s)`;
  return `${fullText} UNION ALL ${semantic}`;
}

/** The template of a collection on one secondary: its wrapper view there, with the extracted columns. */
const placedTemplate = (c: TextCollection, vectorSchema: string): string =>
  legsTemplate(c, vectorSchema, qualified(SECONDARY_SCHEMA, c.name), 'embedding', c.columns.map((x) => `, t.${ident(x.name)}`).join(''));

/** The template of one partition: the partition table itself, the extracted columns computed there. */
const partitionTemplate = (c: TextCollection & ShardedCollection, table: string, vectorSchema: string): string =>
  legsTemplate(c, vectorSchema, qualified(VECS_SCHEMA, table), 'vec', c.columns.map((x) => `, ${metadataValue(x.name, x.type)} AS ${ident(x.name)}`).join(''));

/**
 * `vecscale.text_sql_<c>(query_text, query_embedding, match_count, filter[, owner])`: the statement of each target (an
 * array, in search order: one for a collection on one secondary, one per partition). IMMUTABLE, invoker, nobody's
 * to execute but its owner's (hybrid_<c>'s private half, and explain).
 */
export function textSqlFunction(c: TextCollection, vectorSchema: string): FunctionObject {
  const templates = c.shards === undefined ? [placedTemplate(c, vectorSchema)] : partsOf(c).map((p) => partitionTemplate(c as TextCollection & ShardedCollection, p.table, vectorSchema));
  const format = (t: string) => `pg_catalog.format(${literal(t)}, tsquery_sql, and_where, where_clause, candidates, vector_sql)`;
  const body = `
DECLARE
  where_sql ${T.text} := ${qualified(HELPER_SCHEMA, 'filter_sql')}(filter);
  vector_sql ${T.text} := pg_catalog.quote_literal(query_embedding::${T.text}) || ${literal(`::${vectorType(vectorSchema)}`)};
  tsquery_sql ${T.text} := pg_catalog.format(${literal(`pg_catalog.websearch_to_tsquery(${textSearchConfig(c.text).replace(/%/g, '%%')}, %L::${T.text})`)}, query_text);
  candidates ${T.text} := (LEAST(match_count, ${HYBRID_MAX_RESULTS}) * 2)::${T.text};
  and_where ${T.text};
  where_clause ${T.text};
BEGIN
  IF query_text IS NULL THEN
    RAISE EXCEPTION 'vecscale: query_text must not be null' USING ERRCODE = '22004';
  END IF;${matchInputChecks(c, vectorSchema)}${ownerRestriction(c)}
  and_where := CASE WHEN where_sql IS NULL THEN '' ELSE ' AND (' || where_sql || ')' END;
  where_clause := CASE WHEN where_sql IS NULL THEN '' ELSE ' WHERE ' || where_sql END;
  RETURN ARRAY[${templates.map(format).join(`,
    `)}];
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: textSqlFunctionName(c.name),
    args: [...hybridArgs(c, vectorSchema, false).slice(0, 4), ...ownerArg(c)],
    returns: T.textArray,
    volatility: 'IMMUTABLE',
    body,
    acl: {},
  });
}

/**
 * The merge of the targets' legs into hybrid_<c>'s result (see the module's comment): global ranks per leg over the
 * union, each leg's first candidates, FULL OUTER JOIN, Supabase's RRF score.
 */
function rrfCollect(c: CollectionSpec, results: readonly string[]): string {
  const extra = c.columns.map((x) => ident(x.name));
  const leg = (name: string, key: 'f' | 's', order: string) =>
    `${name} AS (SELECT r.id, r.metadata${extra.map((x) => `, r.${x}`).join('')}, pg_catalog.row_number() OVER (ORDER BY ${order}) AS rank_ix ` +
    `FROM answers r WHERE r.leg OPERATOR(pg_catalog.=) '${key}' ORDER BY rank_ix LIMIT LEAST(match_count, ${HYBRID_MAX_RESULTS}) * 2)`;
  const pick = (x: string) => `COALESCE(f.${x}, s.${x})`;
  // Supabase's expression, exactly: 1.0 is numeric, so the sum is computed as Supabase computes it.
  const score = `(COALESCE(1.0 / (rrf_k + f.rank_ix), 0.0) * full_text_weight + COALESCE(1.0 / (rrf_k + s.rank_ix), 0.0) * semantic_weight)::${T.float8}`;
  return `RETURN QUERY WITH answers AS MATERIALIZED (${results.join(' UNION ALL ')}),
      ${leg('full_text', 'f', 'r.score DESC, r.id COLLATE pg_catalog."C"')},
      ${leg('semantic', 's', 'r.score, r.id COLLATE pg_catalog."C"')}
    SELECT ${pick('id')}, ${pick('metadata')}${extra.map((x) => `, ${pick(x)}`).join('')}, ${score} AS score, f.rank_ix::${T.int4}, s.rank_ix::${T.int4}
      FROM full_text f FULL OUTER JOIN semantic s ON s.id OPERATOR(pg_catalog.=) f.id
     ORDER BY ${3 + extra.length} DESC, ${pick('id')} COLLATE pg_catalog."C"
     LIMIT LEAST(match_count, ${HYBRID_MAX_RESULTS});`;
}

/** `vecscale.hybrid_<c>(…)`: the SECURITY DEFINER half, a fan-out (src/query/fan-out.ts) of text_sql_<c>'s statements. */
export function hybridSearchFunction(c: TextCollection, ctx: Omit<FanOutContext, 'statements'>, acl: Acl): FunctionObject {
  const statements = `${qualified(HELPER_SCHEMA, textSqlFunctionName(c.name))}(query_text, query_embedding, match_count, filter${c.access === undefined ? '' : ', owner'})`;
  return fanOutFunction(
    c,
    {
      name: hybridFunctionName(c.name),
      args: hybridArgs(c, ctx.vectorSchema, false),
      returns: hybridResultColumns(c),
      remoteColumns: remoteColumns(c),
      // Before the round trip: an error after it drops every connection of the call (src/query/fan-out.ts).
      checks: `
  IF full_text_weight IS NULL OR semantic_weight IS NULL OR rrf_k IS NULL OR rrf_k < 0 THEN
    RAISE EXCEPTION 'vecscale: full_text_weight and semantic_weight must not be null, and rrf_k must be 0 or more (got %)', rrf_k USING ERRCODE = '22023';
  END IF;`,
      collect: (results) => `
    ${rrfCollect(c, results)}`,
    },
    { ...ctx, statements },
    acl,
  );
}

/**
 * `public.hybrid_<c>(query_text, query_embedding, match_count DEFAULT 10, filter DEFAULT '{}', full_text_weight
 * DEFAULT 1, semantic_weight DEFAULT 1, rrf_k DEFAULT 50, ef_search, probes, iterative_scan DEFAULT NULL)`: SECURITY
 * INVOKER; waits while a move's cutover switches the layout, as match_<c> (src/model/write-lock.ts), then returns
 * vecscale.hybrid_<c>'s rows.
 */
export function hybridFunction(c: TextCollection, vectorSchema: string, acl: Acl): FunctionObject {
  const args = [...hybridArgs(c, vectorSchema, true), ...searchSettingsArgs(true)];
  return apiReadFunction(c, { name: hybridFunctionName(c.name), private: hybridFunctionName(c.name), args, returns: hybridResultColumns(c) }, acl);
}
