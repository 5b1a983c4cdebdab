/**
 * Writes through the primary. The API view's columns come from a view on the secondary with computed columns,
 * which postgres_fdw cannot insert into; so writes go to a second foreign table over `vecs.<c>` itself
 * (vecscale_write.<c>: `embedding` is `column_name 'vec'`, metadata defaults to '{}', the server's batch_size).
 * An INSTEAD OF trigger on public.<c> sends INSERT/UPDATE/DELETE there; upsert_<c> updates or inserts by id.
 */
import type { CollectionSpec } from '../config/types.js';
import { API_SCHEMA, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { DOLLAR, functionObject } from './function-object.js';
import { ident, qualified } from '../sql/quote.js';


export const writeFunctionName = (collection: string): string => `write_${collection}`;
export const upsertFunctionName = (collection: string): string => `upsert_${collection}`;


/**
 * `vecscale.write_<c>()`: the INSTEAD OF trigger function of public.<c>. It writes to vecscale_write.<c> (one
 * secondary) or to the partitioned vecscale_remote.<c> (sharded: PostgreSQL routes each row to its partition).
 */
export function writeTriggerFunction(c: CollectionSpec): FunctionObject {
  const target = qualified(c.shards === undefined ? WRITE_SCHEMA : REMOTE_SCHEMA, c.name);
  const body = `
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ${target} (id, embedding, metadata) VALUES (NEW.id, NEW.embedding, COALESCE(NEW.metadata, '{}'::jsonb));
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE ${target} SET id = NEW.id, embedding = NEW.embedding, metadata = COALESCE(NEW.metadata, '{}'::jsonb) WHERE id = OLD.id;
    RETURN NEW;
  END IF;
  DELETE FROM ${target} WHERE id = OLD.id;
  RETURN OLD;
END`;
  const name = writeFunctionName(c.name);
  const create =
    `CREATE FUNCTION ${qualified(HELPER_SCHEMA, name)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' ` +
    `AS ${DOLLAR}${body}${DOLLAR}`;
  return functionObject({ schema: HELPER_SCHEMA, name, argTypes: '', create, body, grantees: [], replaceable: true });
}

/**
 * `public.upsert_<c>(id, embedding, metadata)`: postgres_fdw cannot run ON CONFLICT DO UPDATE, so: update by id,
 * else insert; a concurrent insert of the same id (unique_violation from the secondary) retries the update.
 */
export function upsertFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const target = qualified(WRITE_SCHEMA, c.name);
  const body = `
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'vecscale: id and embedding must not be null' USING ERRCODE = '22004';
  END IF;
  LOOP
    UPDATE ${target} t SET embedding = $2, metadata = COALESCE($3, '{}'::jsonb) WHERE t.id = $1;
    IF FOUND THEN
      RETURN;
    END IF;
    BEGIN
      INSERT INTO ${target} (id, embedding, metadata) VALUES ($1, $2, COALESCE($3, '{}'::jsonb));
      RETURN;
    EXCEPTION WHEN unique_violation THEN
      -- another session inserted this id since our UPDATE: update it on the next turn
    END;
  END LOOP;
END`;
  const vector = `${ident(vectorSchema)}.vector`;
  const name = upsertFunctionName(c.name);
  const create =
    `CREATE FUNCTION ${qualified(API_SCHEMA, name)}(id text, embedding ${vector}(${c.dimension}), metadata jsonb DEFAULT '{}'::jsonb) ` +
    `RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS ${DOLLAR}${body}${DOLLAR}`;
  // Not granted to api_roles: writes stay with the owner unless someone grants them (e.g. to service_role).
  return functionObject({ schema: API_SCHEMA, name, argTypes: `text, ${vector}, jsonb`, create, body, grantees: [] });
}

/**
 * `public.upsert_<c>(rows jsonb)`: the batch form, rows as a JSON array of `{"id", "embedding", "metadata"}` (what
 * supabase-js `rpc()` sends), in array order (a later duplicate id wins). An overload by arity, so a call is never
 * ambiguous. Sharded: one INSERT into vecscale_write.<c>, so postgres_fdw batches each partition's rows (batch_size)
 * and every row is an ON CONFLICT upsert on its shard. One secondary: upsert_<c> per row.
 */
export function upsertBatchFunction(c: CollectionSpec, vectorSchema: string): FunctionObject {
  const vector = `${ident(vectorSchema)}.vector`;
  const name = upsertFunctionName(c.name);
  const source =
    `(SELECT e.value->>'id' AS id, (e.value->>'embedding')::${vector} AS embedding, NULLIF(e.value->'metadata', 'null'::jsonb) AS metadata, e.n ` +
    `FROM pg_catalog.jsonb_array_elements(rows) WITH ORDINALITY AS e(value, n)) r`;
  const apply =
    c.shards === undefined
      ? `FOR one IN SELECT r.id, r.embedding, r.metadata FROM ${source} ORDER BY r.n LOOP
    PERFORM ${qualified(API_SCHEMA, name)}(one.id, one.embedding, one.metadata);
  END LOOP;`
      : `INSERT INTO ${qualified(WRITE_SCHEMA, c.name)} (id, embedding, metadata)
    SELECT r.id, r.embedding, COALESCE(r.metadata, '{}'::jsonb) FROM ${source} ORDER BY r.n;`;
  const body = `
DECLARE
  one record;
BEGIN
  IF rows IS NULL OR pg_catalog.jsonb_typeof(rows) <> 'array' THEN
    RAISE EXCEPTION 'vecscale: rows must be a JSON array of {"id": …, "embedding": […], "metadata": {…}}' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(rows) e
              WHERE pg_catalog.jsonb_typeof(e) <> 'object' OR e->'id' IS NULL OR e->'embedding' IS NULL
                 OR e->'id' = 'null'::jsonb OR e->'embedding' = 'null'::jsonb) THEN
    RAISE EXCEPTION 'vecscale: every row needs an id and an embedding' USING ERRCODE = '22004';
  END IF;
  ${apply}
END`;
  const create =
    `CREATE FUNCTION ${qualified(API_SCHEMA, name)}(rows jsonb) ` +
    `RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS ${DOLLAR}${body}${DOLLAR}`;
  return functionObject({ schema: API_SCHEMA, name, argTypes: 'jsonb', create, body, grantees: [], overload: 'rows' });
}
