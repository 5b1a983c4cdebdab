/**
 * Writes through the primary. The API view's columns come from a view on the secondary with computed columns,
 * which postgres_fdw cannot insert into; so writes go to a second foreign table over `vecs.<c>` itself
 * (vecscale_write.<c>: `embedding` is `column_name 'vec'`, metadata defaults to '{}', the server's batch_size).
 * An INSTEAD OF trigger on public.<c> sends INSERT/UPDATE/DELETE there; upsert_<c> updates or inserts by id.
 * Every one runs as its caller (SECURITY INVOKER): the topology's write_roles may write to those foreign tables, and
 * nobody else may call upsert_<c> or write to the view.
 */
import type { AccessSpec, CollectionSpec } from '../config/types.js';
import { type Acl, API_SCHEMA, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { literal, qualified } from '../sql/quote.js';
import { WRITE_LOCK_CLASS, writeLockKey } from '../model/write-lock.js';
import { T, vectorType } from '../sql/types.js';
import { defineFunction, defineTriggerFunction } from './function-object.js';
import { ownerMetadataCall, SEES_ALL_FUNCTION } from './access.js';

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
 * Owned rows (src/query/access.ts): PL/pgSQL that sets `restricted` (the caller is not trusted with every row) and
 * `mine`, the metadata every row of the caller's contains (`{"<owner_key>": "<claim>"}`, NULL without a claim).
 */
const ownerSetup = (c: CollectionSpec & { access: AccessSpec }, indent: string): string =>
  `${indent}restricted := NOT ${qualified(HELPER_SCHEMA, SEES_ALL_FUNCTION)}();
${indent}mine := CASE WHEN restricted THEN ${ownerMetadataCall(c.access)} END;`;

/** The variables of the owned-rows checks (ownerSetup). */
const OWNER_DECLARATIONS = `
DECLARE
  restricted ${T.bool};
  mine ${T.jsonb};`;

/** Refusing a restricted caller's write: without the claim, any; else when `bad` (a row not the caller's) holds. */
const ownerCheck = (c: CollectionSpec & { access: AccessSpec }, bad: string, indent: string): string => {
  const view = `public.${c.name}`;
  const { ownerKey, claim } = c.access;
  return `${indent}IF mine IS NULL THEN
${indent}  RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = ${literal(`vecscale: ${view}: the request has no JWT claim "${claim}", so it may write no row`)};
${indent}END IF;
${indent}IF ${bad} THEN
${indent}  RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = ${literal(`vecscale: ${view}: a row written must have metadata "${ownerKey}" equal to the request's JWT claim "${claim}"`)};
${indent}END IF;`;
};

/** A row's `metadata` is not the caller's (`mine` not NULL here); postgres_fdw ships it. */
const notMine = (metadata: string): string => `NOT (${metadata} OPERATOR(pg_catalog.@>) mine)`;

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
  const newMetadata = `COALESCE(NEW.metadata, '{}'::${T.jsonb})`;
  // Owned rows: a restricted caller's new rows must be its own, and its UPDATE/DELETE reach only its own rows (public.<c>
  // shows it no other; the guard in the remote statement holds even if a row changed owner since it was read).
  const owned = c.access === undefined ? undefined : { ...c, access: c.access };
  const declare = owned ? OWNER_DECLARATIONS : '';
  const checkNew = owned ? `${ownerSetup(owned, '    ')}
    IF restricted THEN
${ownerCheck(owned, notMine(newMetadata), '      ')}
    END IF;
` : '';
  const guard = owned ? ` AND (NOT restricted OR metadata OPERATOR(pg_catalog.@>) mine)` : '';
  const updated = owned ? `
    IF NOT FOUND THEN
      RETURN NULL;
    END IF;` : '';
  const deleteSetup = owned ? `${ownerSetup(owned, '  ')}
` : '';
  const deleted = owned ? `
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;` : '';
  const body = `${declare}
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
${checkNew}    IF ${batched} THEN
      INSERT INTO ${pending} (collection, id, embedding, metadata) VALUES (${mine}, NEW.id, NEW.embedding, ${newMetadata});
    ELSE
      INSERT INTO ${target} (id, embedding, metadata) VALUES (NEW.id, NEW.embedding, ${newMetadata});
    END IF;
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
${checkNew}    UPDATE ${target} SET id = NEW.id, embedding = NEW.embedding, metadata = ${newMetadata} WHERE id = OLD.id${guard};${updated}
    RETURN NEW;
  END IF;
${deleteSetup}  DELETE FROM ${target} WHERE id = OLD.id${guard};${deleted}
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
 * upsert_<c>(id, embedding, metadata) of a restricted caller (owned rows), before the usual upsert: the row must be
 * its own, and an id that exists must be its own too. Not the secondary's `INSERT … ON CONFLICT DO UPDATE` (it cannot
 * tell a restricted caller from a trusted one), but an UPDATE of the caller's own row — the owner check and the write
 * in one statement on the secondary — and, when there was none, a plain INSERT, which never overwrites: an id
 * someone else took in between fails it (23505).
 */
function ownedUpsertRow(c: CollectionSpec & { access: AccessSpec }): string {
  const target = qualified(WRITE_SCHEMA, c.name);
  const metadata = `COALESCE($3, '{}'::${T.jsonb})`;
  return `${ownerSetup(c, '  ')}
  IF restricted THEN
${ownerCheck(c, notMine(metadata), '    ')}
    UPDATE ${target} w SET embedding = $2, metadata = ${metadata} WHERE w.id OPERATOR(pg_catalog.=) $1 AND w.metadata OPERATOR(pg_catalog.@>) mine;
    IF NOT FOUND THEN
      IF EXISTS (SELECT FROM ${target} w WHERE w.id OPERATOR(pg_catalog.=) $1) THEN
${takenError(c, '$1', '        ')}
      END IF;
      INSERT INTO ${target} (id, embedding, metadata) VALUES ($1, $2, ${metadata});
    END IF;
    RETURN;
  END IF;
`;
}

/** Refusing to overwrite a row of another owner's (its id in `id`, PL/pgSQL). */
const takenError = (c: CollectionSpec, id: string, indent: string): string =>
  `${indent}RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(${literal(`vecscale: public.${c.name}: id %s is a row the request does not own`)}, ${id});`;

/**
 * `public.upsert_<c>(id text, embedding vector(n), metadata jsonb DEFAULT '{}')` around `write`, the PL/pgSQL that writes
 * the row ($1, $2, $3): the signature both shapes of collection share.
 */
export function upsertRowSignature(c: CollectionSpec, vectorSchema: string, write: string, acl: Acl): FunctionObject {
  const owned = c.access === undefined ? undefined : { ...c, access: c.access };
  const body = `${owned ? OWNER_DECLARATIONS : ''}
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'vecscale: id and embedding must not be null' USING ERRCODE = '22004';
  END IF;
${layoutGuard(c, `${qualified(API_SCHEMA, upsertFunctionName(c.name))}($1, $2, $3)`)}
${owned ? ownedUpsertRow(owned) : ''}${write}
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
 * upsert_<c>(rows) of a restricted caller: as ownedUpsertRow, set-based. Every row must be the caller's; no id may be
 * another owner's; one UPDATE of the caller's own rows among the ids (the last row of an id winning; `w.id = ANY`
 * and the owner check shipped, so the secondary reads only those), then one plain INSERT of the rest.
 */
function ownedUpsertRows(c: CollectionSpec & { access: AccessSpec }, source: string): string {
  const target = qualified(WRITE_SCHEMA, c.name);
  const last = `(SELECT DISTINCT ON (r.id) r.id, r.embedding, COALESCE(r.metadata, '{}'::${T.jsonb}) AS metadata FROM ${source} ORDER BY r.id, r.n DESC) l`;
  const ids = `ARRAY(SELECT e.value OPERATOR(pg_catalog.->>) 'id' FROM pg_catalog.jsonb_array_elements(rows) AS e(value))::${T.textArray}`;
  return `${ownerSetup(c, '  ')}
  IF restricted THEN
${ownerCheck(c, `EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(rows) AS e(value)
                 WHERE ${notMine(`COALESCE(NULLIF(e.value OPERATOR(pg_catalog.->) 'metadata', 'null'::${T.jsonb}), '{}'::${T.jsonb})`)})`, '    ')}
    SELECT w.id INTO taken FROM ${target} w
     WHERE w.id OPERATOR(pg_catalog.=) ANY (${ids}) AND ${notMine('w.metadata')} LIMIT 1;
    IF FOUND THEN
${takenError(c, 'taken', '      ')}
    END IF;
    WITH u AS (
      UPDATE ${target} w SET embedding = l.embedding, metadata = l.metadata FROM ${last}
       WHERE w.id OPERATOR(pg_catalog.=) l.id AND w.id OPERATOR(pg_catalog.=) ANY (${ids}) AND w.metadata OPERATOR(pg_catalog.@>) mine
      RETURNING w.id)
    SELECT pg_catalog.array_agg(u.id) INTO updated FROM u;
    INSERT INTO ${target} (id, embedding, metadata)
      SELECT l.id, l.embedding, l.metadata FROM ${last} WHERE NOT (l.id OPERATOR(pg_catalog.=) ANY (COALESCE(updated, '{}'::${T.varchar}[])));
    RETURN;
  END IF;
`;
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
  const owned = c.access === undefined ? undefined : { ...c, access: c.access };
  const body = `${owned ? `${OWNER_DECLARATIONS}
  taken ${T.varchar};
  updated ${T.varchar}[];` : ''}
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
${owned ? ownedUpsertRows(owned, source) : ''}  ${apply}
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
