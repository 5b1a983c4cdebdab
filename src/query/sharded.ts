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
import { ident, literal, qualified } from '../sql/quote.js';
import { T, vectorType } from '../sql/types.js';
import { defineTriggerFunction } from './function-object.js';
import { readyBuffer } from './write-functions.js';
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

/** The pod session's buffer of the rows one INSERT into an upsert view brings, until the statement ends. */
export const UPSERT_BUFFER = 'vecscale_upserts';
/** The transaction-local setting that says whether this statement buffers its upserts ('on') or runs each ('off'). */
const UPSERT_BATCH_SETTING = 'vecscale.upsert_batch';

/**
 * On a secondary, `vecscale.upsert_row()`: the triggers of every upsert view, `vecscale.<c>` of a collection there
 * and `vecscale.<partition>` of a shard (the view is named after its table, so one function serves them all). It
 * runs as the wrapper role, which may insert into and update the tables.
 *
 * Set-based: postgres_fdw sends a statement's rows batch_size at a time, each batch one INSERT; the BEFORE INSERT
 * statement trigger readies the session's buffer (a temporary table), the INSTEAD OF row trigger appends each row to
 * it, and the AFTER INSERT statement trigger upserts them in one `INSERT … SELECT … ON CONFLICT (id) DO UPDATE`, the
 * last row of an id winning (in arrival order, as the rows came: the array order of upsert_<c>(rows)). One
 * statement's rows only: the buffer is emptied after each flush and at commit. The buffer is used only when it is a
 * plain table of the current role's own (as on the primary, src/query/write-functions.ts); otherwise, or without the
 * TEMP privilege, each row is upserted by itself.
 */
export function upsertRowFunction(vectorSchema: string): FunctionObject {
  const buffer = `pg_temp.${UPSERT_BUFFER}`;
  const batched = `pg_catalog.current_setting(${literal(UPSERT_BATCH_SETTING)}, true) OPERATOR(pg_catalog.=) 'on'`;
  const upsert = (source: string) =>
    `'INSERT INTO ${ident(VECS_SCHEMA)}.%I AS t (id, vec, metadata) ${source} ON CONFLICT (id) DO UPDATE SET vec = EXCLUDED.vec, metadata = EXCLUDED.metadata'`;
  const body = `
BEGIN
  IF TG_LEVEL = 'STATEMENT' AND TG_WHEN = 'BEFORE' THEN
${readyBuffer(UPSERT_BUFFER, `collection ${T.text} NOT NULL, n ${T.int8} GENERATED ALWAYS AS IDENTITY, id ${T.varchar}, vec ${vectorType(vectorSchema)}, metadata ${T.jsonb}`, UPSERT_BATCH_SETTING)}
    RETURN NULL;
  ELSIF TG_LEVEL = 'STATEMENT' THEN
    -- AFTER INSERT: this statement's rows, in one upsert, the last row of each id winning.
    IF ${batched} THEN
      EXECUTE pg_catalog.format(${upsert(`SELECT DISTINCT ON (u.id) u.id, u.vec, u.metadata FROM ${buffer} u WHERE u.collection OPERATOR(pg_catalog.=) $1 ORDER BY u.id, u.n DESC`)},
        TG_TABLE_NAME) USING TG_TABLE_NAME::${T.text};
      DELETE FROM ${buffer} u WHERE u.collection OPERATOR(pg_catalog.=) TG_TABLE_NAME::${T.text};
    END IF;
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'vecscale: %.% takes INSERT only (each row is an upsert)', TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = '0A000';
  END IF;
  IF NEW.id IS NULL OR NEW.embedding IS NULL THEN
    RAISE EXCEPTION 'vecscale: id and embedding must not be null' USING ERRCODE = '22004';
  END IF;
  IF ${batched} THEN
    INSERT INTO ${buffer} (collection, id, vec, metadata) VALUES (TG_TABLE_NAME, NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::${T.jsonb}));
  ELSE
    EXECUTE pg_catalog.format(${upsert('VALUES ($1, $2, $3)')}, TG_TABLE_NAME) USING NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::${T.jsonb});
  END IF;
  RETURN NEW;
END`;
  return defineTriggerFunction(HELPER_SCHEMA, UPSERT_ROW_FUNCTION, body);
}
