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
import { type Acl, API_SCHEMA, type FunctionObject, HELPER_SCHEMA, REMOTE_SCHEMA, SECONDARY_SCHEMA } from '../model/state.js';
import { WRITE_LOCK_CLASS, writeLockKey } from '../model/write-lock.js';
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
  END IF;${c.metric === 'cosine' ? zeroVectorCheck(vectorSchema) : ''}`;

/**
 * Cosine distance divides by the vectors' norms: pgvector returns NaN for a zero query vector, ranked anywhere. Its
 * cosine sums the squares in single precision, as `<#>` does, so [1e-25, 0, 0] is zero there too (vector_norm, in
 * double precision, says 1e-25).
 */
const zeroVectorCheck = (vectorSchema: string): string => `
  IF (query_embedding OPERATOR(${ident(vectorSchema)}.<#>) query_embedding) = 0 THEN
    RAISE EXCEPTION 'vecscale: a zero vector has no cosine distance' USING ERRCODE = '22023',
      HINT = 'a vector whose every component is 0 has no direction to compare: query with another one';
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

/** How often the secondary checks, while it runs a match query, that the primary's session is still there (ms). */
export const REMOTE_CHECK_MS = 250;
/** How much longer than the remote statement's own timeout search_<c> waits for its answer (ms). */
export const REMOTE_GRACE_MS = 500;
/**
 * The wait for the secondary's answer: polls spin this long first (most answers take a few milliseconds, and a
 * sleep costs a millisecond or more), then sleep about 1 ms between polls, and from SLEEP_LONGER_AFTER on about 5 ms.
 * Measured (loopback, 20k × 384 HNSW, p50): spinning 3 ms matches the blocking dblink() call; 1 ms then 1 ms sleeps
 * cost +1.2 ms. The price is CPU: up to SPIN_MS of it per call on the primary.
 */
export const SPIN_MS = 3;
const SLEEP_LONGER_AFTER = "interval '100 milliseconds'";
// pg_sleep rounds up to whole milliseconds and sleeps again when woken a hair early: pg_sleep(0.001) often takes
// 2 ms, pg_sleep(0.0009) one.
const SHORT_SLEEP = '0.0009';
const LONG_SLEEP = '0.0049';
const TIMESTAMPTZ = 'pg_catalog.timestamptz';

/**
 * PL/pgSQL that returns once `dblink_get_result(conn)` will not block: dblink_is_busy polled, spinning for SPIN_MS,
 * then with pg_sleep between polls. PL/pgSQL checks for interrupts between statements and pg_sleep waits on the
 * latch, so a cancel or the caller's statement_timeout ends the wait at once; past `deadline` it raises 57014 naming
 * the secondary.
 */
function awaitAnswer(dblink: (f: string) => string, conn: string, secondary: string): string {
  return `
    WHILE ${dblink('dblink_is_busy')}(${conn}) = 1 LOOP
      waited := pg_catalog.clock_timestamp() - sent_at;
      IF pg_catalog.clock_timestamp() >= deadline THEN
        RAISE EXCEPTION 'vecscale: secondary ${secondary.replace(/'/g, "''")} did not answer within % ms', pg_catalog.ceil(budget_ms)
          USING ERRCODE = 'query_canceled', HINT = 'the secondary is down, overloaded or unreachable';
      ELSIF waited >= ${SLEEP_LONGER_AFTER} THEN
        PERFORM pg_catalog.pg_sleep(${LONG_SLEEP});
      ELSIF waited >= interval '${SPIN_MS} milliseconds' THEN
        PERFORM pg_catalog.pg_sleep(${SHORT_SLEEP});
      END IF;
    END LOOP;`;
}

/**
 * `vecscale.search_<c>(query_embedding, match_count, filter)`: sends the statement over a dblink connection the session
 * keeps, opened from the collection's foreign server (its options, so its session settings, and its user mapping);
 * only id, metadata, distance and the extracted columns come back, in one round trip. The send is EXECUTEd, so
 * auto_explain logs the SQL sent, LIMIT included.
 *
 * SECURITY DEFINER, because: dblink is executable by its owner only — a role that could call dblink() could run any SQL
 * on the secondary as the wrapper role, or connect anywhere — and the connection this function keeps in the session is
 * the owner's. Its callers (EXECUTE: the topology's readers) get rows of this one query, nothing more. It lives in
 * vecscale's private schema, never an API schema.
 *
 * No wait is unbounded. PG15's blocking dblink calls (dblink(), and dblink_get_result on a result not yet there)
 * wait inside libpq without checking for interrupts: a secondary that stops answering would hold the caller forever,
 * deaf to its statement_timeout and to pg_cancel_backend. So the statement is sent with dblink_send_query and its
 * results collected with dblink_get_result only once dblink_is_busy says they are there; the wait between is an
 * interruptible loop (awaitAnswer), bounded by what is left of the caller's statement_timeout, at most MAX_REMOTE_MS
 * (also for a caller without one). The same budget travels with the statement as its own statement_timeout, and the
 * remote session checks every REMOTE_CHECK_MS that the primary is still there: when the call ends early (a timeout,
 * a cancel) the connection is closed and the secondary stops too. (No dblink_cancel_query: PG15's PQcancel blocks,
 * uninterruptibly, on a secondary whose postmaster does not answer.)
 */
export function searchFunction(
  c: CollectionSpec,
  ctx: { vectorSchema: string; dblinkSchema: string; server: string; serverFingerprint: string },
  acl: Acl,
): FunctionObject {
  const dblink = (f: string) => `${ident(ctx.dblinkSchema)}.${f}`;
  const conn = literal(connectionPrefix(ctx.server) + ctx.serverFingerprint);
  const secondary = c.secondary ?? ctx.server;
  const wait = awaitAnswer(dblink, conn, secondary);
  const body = `
DECLARE
  sql ${T.text} := ${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}(query_embedding, match_count, filter);
  budget_ms ${T.float8} := pg_catalog.date_part('epoch', pg_catalog.current_setting('statement_timeout')::${T.interval}) * 1000;
  open_connections ${T.textArray} := COALESCE(${dblink('dblink_get_connections')}(), '{}'::${T.textArray});
  stale ${T.text};
  sent ${T.int4};
  sent_at ${TIMESTAMPTZ};
  waited ${T.interval};
  deadline ${TIMESTAMPTZ};
BEGIN
  -- What is left of the caller's statement_timeout, at most ${MAX_REMOTE_MS} ms (also for a caller without one): the
  -- secondary cancels the statement itself when it runs out. (GREATEST and LEAST are SQL syntax, not functions: they
  -- cannot be qualified, and need no qualifying.)
  IF budget_ms > 0 THEN
    budget_ms := GREATEST(1, budget_ms - pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000);
  END IF;
  budget_ms := CASE WHEN budget_ms > 0 THEN LEAST(budget_ms, ${MAX_REMOTE_MS}) ELSE ${MAX_REMOTE_MS} END;
  deadline := pg_catalog.clock_timestamp() + (budget_ms + ${REMOTE_GRACE_MS}) * interval '1 millisecond';
  -- Two statements, one round trip: the settings of the remote transaction, then the query.
  sql := pg_catalog.format('SELECT pg_catalog.set_config(''statement_timeout'', %L, true), pg_catalog.set_config(''client_connection_check_interval'', %L, true); %s',
    pg_catalog.ceil(budget_ms)::${T.int8}::${T.text}, ${literal(String(REMOTE_CHECK_MS))}, sql);
  IF NOT ${conn} = ANY (open_connections) THEN
    -- Connections to this server opened with its former options: close them.
    FOREACH stale IN ARRAY open_connections LOOP
      IF pg_catalog.starts_with(stale, ${literal(connectionPrefix(ctx.server))}) THEN
        PERFORM ${dblink('dblink_disconnect')}(stale);
      END IF;
    END LOOP;
    PERFORM ${dblink('dblink_connect')}(${conn}, ${literal(ctx.server)});
  END IF;
  FOR attempt IN 1..2 LOOP
    BEGIN
      EXECUTE pg_catalog.format('SELECT ${dblink('dblink_send_query').replace(/'/g, "''")}(%L, %L)', ${conn}, sql) INTO sent;
      IF sent <> 1 THEN
        RAISE EXCEPTION 'vecscale: the connection to secondary ${secondary.replace(/'/g, "''")} is broken' USING ERRCODE = 'connection_failure';
      END IF;
      sent_at := pg_catalog.clock_timestamp();${wait}
      -- The settings' row. A connection that broke while the session kept it fails here, before any row is returned.
      PERFORM * FROM ${dblink('dblink_get_result')}(${conn}) AS s(statement_timeout ${T.text}, check_interval ${T.text});
      EXIT;
    EXCEPTION
      WHEN query_canceled THEN
        -- A timeout or a cancel: close the connection (the secondary notices and stops); the session's next call opens
        -- a fresh one.
        PERFORM ${dblink('dblink_disconnect')}(${conn});
        RAISE;
      WHEN connection_exception OR internal_error THEN
        -- The session's connection broke (the secondary restarted) or was left busy: connect again, once. (dblink
        -- raises a connection it cannot use as an internal error; the query is read-only, so running it twice is safe.)
        PERFORM ${dblink('dblink_disconnect')}(${conn});
        IF attempt = 2 THEN
          RAISE;
        END IF;
        PERFORM ${dblink('dblink_connect')}(${conn}, ${literal(ctx.server)});
    END;
  END LOOP;
  BEGIN${wait}
    RETURN QUERY SELECT * FROM ${dblink('dblink_get_result')}(${conn}) AS t(${resultColumns(c).join(', ')});${wait}
    -- The end of the results: the connection is ready for the next call.
    PERFORM * FROM ${dblink('dblink_get_result')}(${conn}) AS e(status ${T.text});
  EXCEPTION
    -- A timeout, a cancel (OTHERS does not catch those), a remote error, a broken connection: the connection may be
    -- mid-result. Close it.
    WHEN query_canceled THEN
      PERFORM ${dblink('dblink_disconnect')}(${conn});
      RAISE;
    WHEN OTHERS THEN
      PERFORM ${dblink('dblink_disconnect')}(${conn});
      RAISE;
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
  -- While a move's cutover switches this collection's layout, wait; if it changed shape under this call, run the
  -- definition in place now (see src/model/write-lock.ts).
  PERFORM pg_catalog.pg_advisory_xact_lock_shared(${WRITE_LOCK_CLASS}, ${writeLockKey(c.name)});
  IF (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = pg_catalog.to_regclass(${literal(qualified(REMOTE_SCHEMA, c.name))})) OPERATOR(pg_catalog.<>) '${c.shards === undefined ? 'f' : 'p'}'::pg_catalog."char" THEN
    RETURN QUERY SELECT * FROM ${qualified(API_SCHEMA, matchFunctionName(c.name))}(query_embedding, match_count, filter);
    RETURN;
  END IF;
  ${returning}
END`,
    acl,
  });
}

/** A collection on one secondary: match_<c> passes its arguments to vecscale.search_<c> and returns what that returns. */
export function matchFunction(c: CollectionSpec, vectorSchema: string, acl: Acl): FunctionObject {
  return matchApiFunction(c, vectorSchema, `RETURN QUERY SELECT * FROM ${qualified(HELPER_SCHEMA, searchFunctionName(c.name))}(query_embedding, match_count, filter);`, acl);
}
