/**
 * The query and write path of a sharded collection, on PostgreSQL's own machinery (see ../../README.md, Sharding):
 *
 * - `vecscale_remote.<c>` is hash-partitioned by id; its partitions are postgres_fdw foreign tables over a view per
 *   partition on the shards (`vecscale.<c>_p<i>of<n>`, with the extracted columns), which `public.<c>` reads: a
 *   filter on a column is shipped to every partition; `WHERE id = …` prunes to one. `vecscale_write.<c>` is
 *   partitioned the same way over the partition tables `vecs.<c>_p<i>of<n>`: INSERT/COPY/UPDATE/DELETE through
 *   `public.<c>` route by id there.
 * - `match_<c>` sends `ORDER BY distance LIMIT k` (and the filter) to every partition at once, each on its own dblink
 *   connection (./fan-out.ts), and merges the answers by `ORDER BY distance, id LIMIT k`: a call takes as long as its
 *   slowest partition, and only id, metadata, distance and the extracted columns travel back.
 * - Upserts insert into `vecscale_remote.<c>`: the partition view's INSTEAD OF INSERT trigger runs a real
 *   `INSERT … ON CONFLICT (id) DO UPDATE` on the partition. It runs in the caller's transaction (postgres_fdw's).
 */
import type { ShardedCollection } from '../config/types.js';
import { type FunctionObject, HELPER_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { partsOf } from '../model/placement.js';
import { ident, qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';
import { defineTriggerFunction } from './function-object.js';
import { DISTANCE_OPERATOR, inlineVector, matchSqlFunctionObject } from './match-function.js';
import { metadataValue } from '../sql/metadata-cast.js';

/** The trigger function of the upsert views on a shard (one per secondary, for every partition there). */
export const UPSERT_ROW_FUNCTION = 'upsert_row';

/**
 * The statement a partition's secondary runs for match_<c>, on the partition table itself: `%s` where the filter
 * (filtered form only) and the LIMIT go, `$1` for the query vector. The extracted columns are computed there, from
 * the same expressions as a single secondary's view. Every name in it is qualified.
 */
export function partitionQueryTemplate(c: ShardedCollection, table: string, vectorSchema: string, filtered: boolean): string {
  const distance = `t.vec OPERATOR(${ident(vectorSchema)}.${DISTANCE_OPERATOR[c.metric]}) $1`;
  const extra = c.columns.map((x) => `, ${metadataValue(x.name, x.type)} AS ${ident(x.name)}`).join('');
  return `SELECT t.id, t.metadata, (${distance})::${T.float8} AS distance${extra} FROM ${qualified(VECS_SCHEMA, table)} t${filtered ? ' WHERE %s' : ''} ORDER BY ${distance} LIMIT %s`;
}

/**
 * `vecscale.match_sql_<c>(query_embedding, match_count, filter)` of a sharded collection: one statement per
 * partition (in partsOf order, as search_<c>'s targets), vector and LIMIT inlined, each for its own secondary.
 */
export function shardedMatchSqlFunction(c: ShardedCollection, vectorSchema: string): FunctionObject {
  const statements = (filtered: boolean) =>
    partsOf(c)
      .map((p) => `pg_catalog.format(${inlineVector(partitionQueryTemplate(c, p.table, vectorSchema, filtered))}, ${filtered ? 'where_sql, ' : ''}match_count)`)
      .join(`,
    `);
  return matchSqlFunctionObject(
    c,
    vectorSchema,
    T.textArray,
    `  IF where_sql IS NULL THEN
    RETURN ARRAY[${statements(false)}];
  END IF;
  RETURN ARRAY[${statements(true)}];`,
  );
}

/**
 * On a secondary, `vecscale.upsert_row()`: the INSTEAD OF INSERT trigger of every upsert view, `vecscale.<c>` of a collection
 * there and `vecscale.<partition>` of a shard.
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
