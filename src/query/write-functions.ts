/**
 * Writes through the primary. The API view's columns come from a view on the secondary with computed columns,
 * which postgres_fdw cannot insert into; so writes go to a second foreign table over `vecs.<c>` itself
 * (vecscale_write.<c>: `embedding` is `column_name 'vec'`, metadata defaults to '{}', the server's batch_size).
 * An INSTEAD OF trigger on public.<c> sends INSERT/UPDATE/DELETE there; upsert_<c> updates or inserts by id.
 * Every one runs as its caller (SECURITY INVOKER): the topology's write_roles may write to those foreign tables, and
 * nobody else may call upsert_<c> or write to the view.
 */
import type { CollectionSpec } from '../config/types.js';
import { type Acl, API_SCHEMA, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { literal, qualified } from '../sql/quote.js';
import { WRITE_LOCK_CLASS, writeLockKey } from '../model/write-lock.js';
import { T, vectorType } from '../sql/types.js';
import { defineFunction, defineTriggerFunction } from './function-object.js';

export const writeFunctionName = (collection: string): string => `write_${collection}`;
export const upsertFunctionName = (collection: string): string => `upsert_${collection}`;

/** The session's buffer of rows inserted through an API view, until its statement ends (see writeTriggerFunction). */
export const PENDING_TABLE = 'vecscale_pending';
/** The transaction-local setting that says whether this statement buffers its rows ('on') or writes each ('off'). */
export const BATCH_SETTING = 'vecscale.write_batch';

/**
 * PL/pgSQL of a BEFORE INSERT statement trigger that readies a session's buffer, the temporary table `pg_temp.<table>`
 * with `columns` (no WAL, private to the session, emptied at commit), and sets `setting` (transaction-local) to 'on'
 * when the statement may use it: only when it is a plain table of the current role's own. In a pooled session another
 * role could have made it first, with a trigger or rule of its own that would run as this writer; then, or without
 * the TEMP privilege, 'off' (row by row). Shared by the primary's write triggers and the secondaries' upsert views.
 */
export function readyBuffer(table: string, columns: string, setting: string): string {
  const buffer = literal(`pg_temp.${table}`);
  return `    IF pg_catalog.to_regclass(${buffer}) IS NULL THEN
      BEGIN
        CREATE TEMPORARY TABLE ${table} (${columns}) ON COMMIT DELETE ROWS;
      EXCEPTION WHEN insufficient_privilege THEN
        -- No TEMP privilege here: row by row.
        PERFORM pg_catalog.set_config(${literal(setting)}, 'off', true);
        RETURN NULL;
      END;
    END IF;
    PERFORM pg_catalog.set_config(${literal(setting)}, CASE WHEN EXISTS (
      SELECT FROM pg_catalog.pg_class r
       WHERE r.oid = pg_catalog.to_regclass(${buffer}) AND r.relkind = 'r'
         AND r.relowner = (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = CURRENT_USER)
         AND NOT r.relhastriggers AND NOT r.relhasrules AND NOT r.relrowsecurity) THEN 'on' ELSE 'off' END, true);`;
}

/**
 * `vecscale.write_<c>()`: the triggers of public.<c>, writing to vecscale_write.<c>, a foreign table over vecs.<c>
 * (one secondary) or partitioned over the partition tables (sharded: PostgreSQL routes each row to its partition).
 *
 * INSERT and COPY are batched. A row trigger that wrote each row would send one remote INSERT per row (postgres_fdw
 * batches only within one statement's ModifyTable); so the BEFORE INSERT statement trigger readies the session's
 * buffer, the INSTEAD OF row trigger appends each row to it, and the AFTER INSERT statement trigger sends the
 * statement's rows in one INSERT … SELECT, which postgres_fdw sends batch_size rows at a time. UPDATE and DELETE go
 * row by row, by id.
 *
 * The buffer is a temporary table (no WAL, private to the session, emptied at commit), used only when it is plain and
 * the current role's own: in a pooled session (PostgREST switches roles per request) another role could have made
 * pg_temp.vecscale_pending first, with a trigger or rule of its own that would run as this writer. Then, or without
 * the TEMP privilege, the statement writes row by row as before.
 */
export function writeTriggerFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const target = qualified(WRITE_SCHEMA, c.name);
  const pending = `pg_temp.${PENDING_TABLE}`;
  const mine = literal(c.name);
  const batched = `pg_catalog.current_setting(${literal(BATCH_SETTING)}, true) OPERATOR(pg_catalog.=) 'on'`;
  const body = `
BEGIN
  IF TG_LEVEL = 'STATEMENT' AND TG_WHEN = 'BEFORE' THEN
${readyBuffer(PENDING_TABLE, `collection ${T.text} NOT NULL, id ${T.varchar}, embedding ${vectorType(vectorSchema)}, metadata ${T.jsonb}`, BATCH_SETTING)}
    RETURN NULL;
  ELSIF TG_LEVEL = 'STATEMENT' THEN
    -- AFTER INSERT: the statement's rows, in one INSERT (this statement's alone: others' were sent at their end).
    IF ${batched} THEN
      INSERT INTO ${target} (id, embedding, metadata)
        SELECT p.id, p.embedding, p.metadata FROM ${pending} p WHERE p.collection OPERATOR(pg_catalog.=) ${mine};
      DELETE FROM ${pending} p WHERE p.collection OPERATOR(pg_catalog.=) ${mine};
    END IF;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    IF ${batched} THEN
      INSERT INTO ${pending} (collection, id, embedding, metadata) VALUES (${mine}, NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::${T.jsonb}));
    ELSE
      INSERT INTO ${target} (id, embedding, metadata) VALUES (NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::${T.jsonb}));
    END IF;
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE ${target} SET id = NEW.id, embedding = NEW.embedding, metadata = COALESCE(NEW.metadata, '{}'::${T.jsonb}) WHERE id = OLD.id;
    RETURN NEW;
  END IF;
  DELETE FROM ${target} WHERE id = OLD.id;
  RETURN OLD;
END`;
  return defineTriggerFunction(HELPER_SCHEMA, writeFunctionName(c.name), body);
}

/**
 * The first statements of upsert_<c>: wait while a move's cutover switches the collection's layout (the view public.<c>,
 * then the write lock: src/model/write-lock.ts), then, if the layout changed shape under this call (vecscale_write.<c> a foreign table for one secondary, a
 * partitioned table when sharded), run `call` — the function by name, so the definition in place now — instead.
 */
function layoutGuard(c: CollectionSpec, call: string): string {
  const kind = c.shards === undefined ? 'f' : 'p';
  return `  LOCK TABLE ${qualified(API_SCHEMA, c.name)} IN ROW EXCLUSIVE MODE;
  PERFORM pg_catalog.pg_advisory_xact_lock_shared(${WRITE_LOCK_CLASS}, ${writeLockKey(c.name)});
  IF (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = pg_catalog.to_regclass(${literal(qualified(WRITE_SCHEMA, c.name))})) OPERATOR(pg_catalog.<>) '${kind}'::pg_catalog."char" THEN
    PERFORM ${call};
    RETURN;
  END IF;`;
}

/**
 * `public.upsert_<c>(id text, embedding vector(n), metadata jsonb DEFAULT '{}')` around `write`, the PL/pgSQL that writes
 * the row ($1, $2, $3): the signature both shapes of collection share.
 */
export function upsertRowSignature(c: CollectionSpec, vectorSchema: string, write: string, acl: Acl): FunctionObject {
  const body = `
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'vecscale: id and embedding must not be null' USING ERRCODE = '22004';
  END IF;
${layoutGuard(c, `${qualified(API_SCHEMA, upsertFunctionName(c.name))}($1, $2, $3)`)}
${write}
END`;
  return defineFunction({
    schema: API_SCHEMA,
    name: upsertFunctionName(c.name),
    args: [
      { name: 'id', type: T.text },
      { name: 'embedding', type: vectorType(vectorSchema, c.dimension) },
      { name: 'metadata', type: T.jsonb, default: `'{}'::${T.jsonb}` },
    ],
    returns: T.void,
    volatility: 'VOLATILE',
    body,
    acl,
  });
}

/**
 * Where upsert_<c> inserts, each row an `INSERT … ON CONFLICT (id) DO UPDATE` on its secondary (postgres_fdw cannot
 * send ON CONFLICT DO UPDATE itself): the secondary's view vecscale.<c> whose INSTEAD OF trigger runs it (one
 * secondary: the read foreign table vecscale_remote.<c>, over that view — for a sharded collection partitioned over
 * the partitions' views, so each row goes to its partition). A single secondary with standbys reads from them, so
 * its upserts go to vecscale.<c> instead, the same view through the secondary's write server (src/desired/primary.ts;
 * a sharded collection's partitions are all on write servers).
 */
export const upsertTarget = (c: CollectionSpec): string => qualified(REMOTE_SCHEMA, c.name);

/** `public.upsert_<c>(id, embedding, metadata)`: one INSERT, an upsert on the owning secondary. */
export function upsertFunction(c: CollectionSpec, vectorSchema: string, acl: Acl, target = upsertTarget(c)): FunctionObject {
  return upsertRowSignature(
    c,
    vectorSchema,
    `  INSERT INTO ${target} (id, embedding, metadata) VALUES ($1, $2, COALESCE($3, '{}'::${T.jsonb}));`,
    acl,
  );
}

/**
 * `public.upsert_<c>(rows jsonb)`: the batch form, rows as a JSON array of `{"id", "embedding", "metadata"}` (what
 * supabase-js `rpc()` sends), in array order (a later duplicate id wins). An overload by arity, so a call is never
 * ambiguous. One INSERT into upsertTarget: postgres_fdw sends batch_size rows per remote statement (per partition),
 * and the secondary upserts each, in order.
 */
export function upsertBatchFunction(c: CollectionSpec, vectorSchema: string, acl: Acl, target = upsertTarget(c)): FunctionObject {
  const vector = vectorType(vectorSchema);
  const name = upsertFunctionName(c.name);
  const source =
    `(SELECT e.value->>'id' AS id, (e.value->>'embedding')::${vector} AS embedding, NULLIF(e.value->'metadata', 'null'::${T.jsonb}) AS metadata, e.n ` +
    `FROM pg_catalog.jsonb_array_elements(rows) WITH ORDINALITY AS e(value, n)) r`;
  const apply = `INSERT INTO ${target} (id, embedding, metadata)
    SELECT r.id, r.embedding, COALESCE(r.metadata, '{}'::${T.jsonb}) FROM ${source} ORDER BY r.n;`;
  const body = `
BEGIN
${layoutGuard(c, `${qualified(API_SCHEMA, name)}(rows)`)}
  IF rows IS NULL OR pg_catalog.jsonb_typeof(rows) <> 'array' THEN
    RAISE EXCEPTION 'vecscale: rows must be a JSON array of {"id": …, "embedding": […], "metadata": {…}}' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(rows) e
              WHERE pg_catalog.jsonb_typeof(e) <> 'object' OR e->'id' IS NULL OR e->'embedding' IS NULL
                 OR e->'id' = 'null'::${T.jsonb} OR e->'embedding' = 'null'::${T.jsonb}) THEN
    RAISE EXCEPTION 'vecscale: every row needs an id and an embedding' USING ERRCODE = '22004';
  END IF;
  ${apply}
END`;
  return defineFunction({
    schema: API_SCHEMA,
    name,
    args: [{ name: 'rows', type: T.jsonb }],
    returns: T.void,
    volatility: 'VOLATILE',
    body,
    acl,
    overload: 'rows',
  });
}
