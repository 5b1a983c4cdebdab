/**
 * The query and write path of a sharded collection, on PostgreSQL's own machinery (see ../../README.md, Sharding):
 *
 * - `vecscale_remote.<c>` is hash-partitioned by id; its partitions are postgres_fdw foreign tables over
 *   `vecs.<c>_p<i>of<n>` on the shards. INSERT/COPY through `public.<c>` route by id; `WHERE id = …` prunes to one.
 * - `match_<c>` sends `ORDER BY distance LIMIT k` to every partition in one statement: per-partition subqueries under
 *   UNION ALL inside a MATERIALIZED CTE (so the planner builds an Append, not a Merge Append, and the foreign scans run
 *   as Async Foreign Scans, one connection per shard), then `ORDER BY distance, id LIMIT k` on the primary. It runs as
 *   its caller (SECURITY INVOKER): the readers may select from the partitions, and postgres_fdw cancels the remote
 *   statements when the caller's statement_timeout or a cancel ends the call.
 * - Upserts go to `vecscale_write.<c>`, partitioned the same way, whose partitions are foreign tables over a view per
 *   partition on the shard (`vecscale.<c>_p<i>of<n>`); its INSTEAD OF INSERT trigger runs a real
 *   `INSERT … ON CONFLICT (id) DO UPDATE` on the partition. It runs in the caller's transaction (postgres_fdw's).
 */
import type { ShardedCollection } from '../config/types.js';
import { type Acl, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { partsOf } from '../model/placement.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';
import { defineTriggerFunction } from './function-object.js';
import { DISTANCE_OPERATOR, inlineVector, matchApiFunction, matchSqlFunctionName, matchSqlFunctionObject } from './match-function.js';
import { upsertRowSignature } from './write-functions.js';

/** The trigger function of the upsert views on a shard (one per secondary, for every partition there). */
export const UPSERT_ROW_FUNCTION = 'upsert_row';

/**
 * postgres_fdw ships LIMIT only when its row estimate for the scan exceeds k, and with no statistics it guesses few
 * rows for a jsonb condition (0.5–1% of ~680). Wrapped so, the same condition is estimated at 99.5% (a NullTest on an
 * expression) and still ships: the partition's Remote SQL keeps `WHERE … ORDER BY … LIMIT k` up to k ≈ 670.
 */
export const shippableCondition = (condition: string): string => `(CASE WHEN (${condition}) THEN true END) IS NOT NULL`;

/**
 * The statement match_<c> runs on the primary; `$1` is the query vector, `%1$s` the WHERE clause (or nothing),
 * `%2$s` the LIMIT.
 */
export function shardedMatchTemplate(c: ShardedCollection, vectorSchema: string): string {
  const distance = `t.embedding OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) $1`;
  const perPartition = partsOf(c).map(
    (p) => `(SELECT t.id, t.metadata, ${distance} AS distance FROM ${qualified(REMOTE_SCHEMA, p.table)} t%1$s ORDER BY ${distance} LIMIT %2$s)`,
  );
  return (
    `WITH candidates AS MATERIALIZED (${perPartition.join(' UNION ALL ')}) ` +
    'SELECT c.id, c.metadata, c.distance FROM candidates c ORDER BY c.distance, c.id LIMIT %2$s'
  );
}

/** `vecscale.match_sql_<c>(query_embedding, match_count, filter)`: the statement, vector and LIMIT inlined. */
export function shardedMatchSqlFunction(c: ShardedCollection, vectorSchema: string, acl: Acl): FunctionObject {
  return matchSqlFunctionObject(
    c,
    vectorSchema,
    `  RETURN pg_catalog.format(${inlineVector(shardedMatchTemplate(c, vectorSchema), vectorSchema)},
    CASE WHEN where_sql IS NULL THEN '' ELSE ' WHERE ' || pg_catalog.format(${literal(shippableCondition('%s'))}, where_sql) END,
    match_count);`,
    acl,
  );
}

/**
 * `public.match_<c>(query_embedding, match_count DEFAULT 10, filter DEFAULT '{}')`: same signature and result as
 * for a collection on one secondary. EXECUTE plans each call afresh (calls 6+ ship the LIMIT like call 1).
 */
export function shardedMatchFunction(c: ShardedCollection, vectorSchema: string, acl: Acl): FunctionObject {
  return matchApiFunction(c, vectorSchema, `RETURN QUERY EXECUTE ${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}(query_embedding, match_count, filter);`, acl, true);
}

/**
 * On a shard, `vecscale.upsert_row()`: the INSTEAD OF INSERT trigger of every upsert view `vecscale.<partition>`.
 * The view is named after its partition table, so one function serves them all. It runs as the wrapper role, which
 * may insert into and update the partition tables.
 */
export function upsertRowFunction(): FunctionObject {
  const body = `
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'vecscale: %.% takes INSERT only (each row is an upsert)', TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = '0A000';
  END IF;
  IF NEW.id IS NULL OR NEW.embedding IS NULL THEN
    RAISE EXCEPTION 'vecscale: id and embedding must not be null' USING ERRCODE = '22004';
  END IF;
  EXECUTE pg_catalog.format(
    'INSERT INTO ${ident(VECS_SCHEMA)}.%I AS t (id, vec, metadata) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET vec = EXCLUDED.vec, metadata = EXCLUDED.metadata',
    TG_TABLE_NAME) USING NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::${T.jsonb});
  RETURN NEW;
END`;
  return defineTriggerFunction(HELPER_SCHEMA, UPSERT_ROW_FUNCTION, body);
}

/** `public.upsert_<c>(id, embedding, metadata)`: one row into vecscale_write.<c>, routed to its partition's upsert view. */
export function shardedUpsertFunction(c: ShardedCollection, vectorSchema: string, acl: Acl): FunctionObject {
  return upsertRowSignature(
    c,
    vectorSchema,
    `  INSERT INTO ${qualified(WRITE_SCHEMA, c.name)} (id, embedding, metadata) VALUES ($1, $2, COALESCE($3, '{}'::${T.jsonb}));`,
    acl,
  );
}
