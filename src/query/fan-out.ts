/**
 * `vecscale.search_<c>(…)`: the one SECURITY DEFINER function of the query path, for both shapes of collection. It
 * sends the search statement to every target at once over dblink connections the session keeps, then collects the
 * answers: a collection on one secondary has one target, a sharded one a target per partition. Only id, metadata,
 * distance and the extracted columns come back, one statement per target per call.
 *
 * Why dblink and not postgres_fdw (../../README.md, "Sharded collections"; ../../../shared/FACTS.md, "Fan-out facts"):
 * postgres_fdw sends 5 statements per foreign scan (a transaction and a cursor) and fetches every candidate's vector
 * to sort it again on the primary; it runs the partitions behind one server one after another, and a hash-partitioned
 * parent gives plain `ORDER BY … LIMIT` a Merge Append, which is never async. dblink's send/collect calls run every
 * target concurrently, each on its own connection — partitions that share a secondary too — and the statement is
 * exactly what the secondary runs directly. PL/Proxy was faster still by hand but is not on Supabase; dblink is.
 *
 * Targets are connection slots: `vecscale:<server>#<slot>:<fingerprint of the server's options>`. Every collection
 * reached through a server shares its slot 0; the n-th partition on the same server uses slot n-1. An apply that
 * changes a server's options (settings, host) changes the fingerprint, so the next call opens a new connection (dblink
 * keeps an open one as it is) and closes the old one of that slot.
 */
import { type CollectionSpec, ITERATIVE_SCAN_MODES, QUERY_SETTING_BOUNDS } from '../config/types.js';
import { byCodePoint } from '../util/fingerprint.js';
import { type Acl, type FunctionObject, HELPER_SCHEMA } from '../model/state.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { T } from '../sql/types.js';
import { defineFunction, type FunctionArg } from './function-object.js';
import { ownerDeclarations } from './access.js';
import { matchArgs, matchSqlFunctionName, resultColumns, searchFunctionName, searchSettingsArgs } from './match-function.js';

/** The longest a match_<c> statement may run on the secondary, whatever the caller's statement_timeout (ms). */
export const MAX_REMOTE_MS = 60_000;
/** How often the secondary checks, while it runs a match query, that the primary's session is still there (ms). */
export const REMOTE_CHECK_MS = 250;
/** How much longer than the remote statement's own timeout search_<c> waits for its answer (ms). */
export const REMOTE_GRACE_MS = 500;
/**
 * The wait for the secondaries' answers: dblink_is_busy polled, spinning for the first SPIN_MS when there is one
 * target, then (and from the start when there are several) about 1 ms of sleep between polls (pg_sleep's granularity:
 * nothing finer is interruptible), from SLEEP_LONGER_AFTER on about 5 ms. A spinning primary slows down secondaries
 * that share its cores (the sandbox: 2 vCPUs for the primary and the pods): with one target the spin still pays, with
 * several it does not, even once the first has answered. Measured on 20k × 384 HNSW (ef_search 100, p50, 400
 * interleaved calls, the statement run on the pod = 1): one pod, spinning 10 ms 0.93–1.18×, spinning 3 ms then
 * sleeping 1.03–1.43× (an answer just after the spin waits a whole sleep), sleeping only 1.2–1.4×; 2 partitions,
 * spinning 3 ms 2.0×, spinning once one answered 1.6–1.9×, sleeping only 1.3–1.5×; a blocking dblink_get_result
 * (not interruptible, so not an option) 1.0–1.3× and 1.0–1.2×. The price of the spin is CPU on the primary: up to
 * SPIN_MS of it per call.
 */
export const SPIN_MS = 10;
const SLEEP_LONGER_AFTER = "interval '100 milliseconds'";
// pg_sleep rounds up to whole milliseconds and sleeps again when woken a hair early: pg_sleep(0.001) often takes
// 2 ms, pg_sleep(0.0009) one.
const SHORT_SLEEP = '0.0009';
const LONG_SLEEP = '0.0049';
const TIMESTAMPTZ = 'pg_catalog.timestamptz';

/**
 * The session setting that makes match_<c> read from the secondaries themselves, never from a standby:
 * `SET vecscale.read_from = 'secondary'` (read-your-writes; README, "Read replicas"). Unset, or any other value:
 * a standby when one is up.
 */
export const READ_FROM_SETTING = 'vecscale.read_from';
export const READ_FROM_SECONDARY = 'secondary';

/** The iterative scan modes, as match_<c>'s message lists them. */
const ITERATIVE_SCANS = [...ITERATIVE_SCAN_MODES].sort(byCodePoint);

/** One connection search_<c> sends to: a foreign server (its options and user mapping) and a slot on it. */
export interface SearchTarget {
  /** The foreign server on the primary. */
  readonly server: string;
  /** A fingerprint of the server's options. */
  readonly fingerprint: string;
  /** 0 for the first connection to the server a call uses, 1 for the second (a second partition there), … */
  readonly slot: number;
  /** The secondary, for messages. */
  readonly secondary: string;
}

/** The dblink connection name of a target, and the prefix its stale connections (other options) share. */
export const connectionPrefix = (t: Pick<SearchTarget, 'server' | 'slot'>): string => `vecscale:${t.server}#${t.slot}:`;
export const connectionName = (t: SearchTarget): string => connectionPrefix(t) + t.fingerprint;

/** The slots of targets on servers, in order: the n-th target on a server gets slot n-1. */
export function withSlots(targets: ReadonlyArray<Omit<SearchTarget, 'slot'>>): SearchTarget[] {
  const used = new Map<string, number>();
  return targets.map((t) => {
    const slot = used.get(t.server) ?? 0;
    used.set(t.server, slot + 1);
    return { ...t, slot };
  });
}

const array = (values: readonly string[]): string => `ARRAY[${values.map(literal).join(', ')}]::${T.textArray}`;

/**
 * PL/pgSQL that returns once `dblink_get_result(conns[i])` will not block: dblink_is_busy polled, spinning for at
 * most SPIN_MS when `spin`, else with pg_sleep between polls. PL/pgSQL checks for interrupts between statements and
 * pg_sleep waits on the latch, so a cancel or the caller's statement_timeout ends the wait at once; past `deadline` it
 * raises 57014 naming the secondary.
 */
function awaitAnswer(dblink: (f: string) => string, spin: boolean): string {
  return `
      WHILE ${dblink('dblink_is_busy')}(conns[i]) = 1 LOOP
        waited := pg_catalog.clock_timestamp() - sent_at;
        IF pg_catalog.clock_timestamp() >= deadline THEN
          RAISE EXCEPTION 'vecscale: secondary % did not answer within % ms', secondaries[i], pg_catalog.ceil(budget_ms)
            USING ERRCODE = 'query_canceled', HINT = 'the secondary is down, overloaded or unreachable';
        ELSIF waited >= ${SLEEP_LONGER_AFTER} THEN
          PERFORM pg_catalog.pg_sleep(${LONG_SLEEP});
        ${spin ? `ELSIF waited >= interval '${SPIN_MS} milliseconds' THEN` : 'ELSE'}
          PERFORM pg_catalog.pg_sleep(${SHORT_SLEEP});
        END IF;
      END LOOP;`;
}

/**
 * `vecscale.search_<c>(query_embedding, match_count, filter, ef_search, probes, iterative_scan)`.
 *
 * `statements` is PL/pgSQL for a text[] of one statement per target (built by vecscale.match_sql_<c>: filter compiled,
 * vector and LIMIT inlined). Each is sent with the remote transaction's settings in front (one round trip): the
 * budget as statement_timeout, client_connection_check_interval, and the call's own search settings. The answers are
 * merged by `ORDER BY distance, id LIMIT match_count` when there are several.
 *
 * SECURITY DEFINER, because: dblink is executable by its owner only — a role that could call dblink() could run any SQL
 * on the secondary as the wrapper role, or connect anywhere — and the connections this function keeps in the session
 * are the owner's. Its callers (EXECUTE: the topology's readers) get rows of this one query, nothing more. It lives in
 * vecscale's private schema, never an API schema.
 *
 * No wait is unbounded. PG15's blocking dblink calls (dblink(), and dblink_get_result on a result not yet there) wait
 * inside libpq without checking for interrupts: a secondary that stops answering would hold the caller forever, deaf
 * to its statement_timeout and to pg_cancel_backend. So the statements are sent with dblink_send_query and results
 * collected with dblink_get_result only once dblink_is_busy says they are there; the wait between is an interruptible
 * loop (awaitAnswer), bounded by what is left of the caller's statement_timeout, at most MAX_REMOTE_MS (also for a
 * caller without one). The same budget travels with each statement as its own statement_timeout, and the remote
 * sessions check every REMOTE_CHECK_MS that the primary is still there: when the call ends early (a timeout, a cancel,
 * an error on one target) every connection of the call is closed, and the secondaries stop too. (No
 * dblink_cancel_query: PG15's PQcancel blocks, uninterruptibly, on a secondary whose postmaster does not answer.)
 */
export function searchFunction(c: CollectionSpec, ctx: FanOutContext, acl: Acl): FunctionObject {
  const columns = resultColumns(c);
  return fanOutFunction(
    c,
    {
      name: searchFunctionName(c.name),
      // The settings' defaults as match_<c>'s: a reader calling it directly gets what match_<c> would give.
      args: matchArgs(c, ctx.vectorSchema, false),
      returns: columns,
      remoteColumns: columns,
      collect: (results) =>
        results.length === 1
          ? `RETURN QUERY ${results[0]};`
          : `RETURN QUERY SELECT r.* FROM (${results.join(' UNION ALL ')}) r ORDER BY r.distance, r.id LIMIT match_count;`,
    },
    ctx,
    acl,
  );
}

/** Where a fan-out function sends: its targets, the statements for them, and (with standbys) the fresh targets. */
export interface FanOutContext {
  readonly vectorSchema: string;
  readonly dblinkSchema: string;
  readonly targets: readonly SearchTarget[];
  /** PL/pgSQL for a text[] of one statement per target, over the function's arguments (and `owner`). */
  readonly statements: string;
  /** For a read server of a secondary with standbys, its write server: fresh reads (READ_FROM_SETTING) go there. */
  readonly freshTarget?: (server: string) => { server: string; fingerprint: string } | undefined;
}

/** What a fan-out function is: its name (vecscale's schema), leading arguments, result, each target's answer, the merge. */
export interface FanOutSpec {
  readonly name: string;
  /** The arguments before the per-call search settings (ef_search, probes, iterative_scan). */
  readonly args: readonly FunctionArg[];
  /** Its result columns, `name type`. */
  readonly returns: readonly string[];
  /** The columns of each target's answer, `name type`. */
  readonly remoteColumns: readonly string[];
  /** PL/pgSQL returning the result from the targets' answers: one `SELECT * FROM dblink_get_result(…) AS t(…)` each. */
  readonly collect: (results: readonly string[]) => string;
  /** PL/pgSQL checks of the function's own arguments, run before any round trip. */
  readonly checks?: string;
}

/**
 * A SECURITY DEFINER function in vecscale's schema that sends one statement to each target at once and returns
 * `spec.collect` over their answers: search_<c> (match_<c>) and hybrid's (src/query/hybrid.ts). See searchFunction.
 */
export function fanOutFunction(c: CollectionSpec, spec: FanOutSpec, ctx: FanOutContext, acl: Acl): FunctionObject {
  const dblink = (f: string) => `${ident(ctx.dblinkSchema)}.${f}`;
  const n = ctx.targets.length;
  // Fresh reads: the same slots on the write servers (a target without standbys keeps its server).
  const freshTargets = ctx.targets.map((t) => ({ ...t, ...(ctx.freshTarget?.(t.server) ?? {}) }));
  const fresh = freshTargets.some((t, i) => t.server !== ctx.targets[i]!.server)
    ? `
  -- Read-your-writes: ${READ_FROM_SETTING} = '${READ_FROM_SECONDARY}' reads from the secondaries themselves, never a
  -- standby (replica lag), through their write servers (the same settings profile).
  IF pg_catalog.current_setting(${literal(READ_FROM_SETTING)}, true) OPERATOR(pg_catalog.=) ${literal(READ_FROM_SECONDARY)} THEN
    conns := ${array(freshTargets.map(connectionName))};
    prefixes := ${array(freshTargets.map(connectionPrefix))};
    servers := ${array(freshTargets.map((t) => t.server))};
  END IF;`
    : '';
  // The ends of results come at once: spin. The settings' rows come with the answers (a backend flushes its output
  // when the whole query string is done), so waiting for them is waiting for the answers: see SPIN_MS.
  const wait = awaitAnswer(dblink, true);
  const waitAnswer = awaitAnswer(dblink, n === 1);
  const { efSearch, probes } = QUERY_SETTING_BOUNDS;
  // A plain call: the statement is not quoted into another and parsed again here (measured: 0.15 ms a call on 20k × 384).
  const send = `sent := ${dblink('dblink_send_query')}(conns[i], settings || sqls[i]);
        IF sent <> 1 THEN
          RAISE EXCEPTION 'vecscale: the connection to secondary % is broken', secondaries[i] USING ERRCODE = 'connection_failure';
        END IF;`;
  const results = Array.from({ length: n }, (_, i) => `SELECT * FROM ${dblink('dblink_get_result')}(conns[${i + 1}]) AS t(${spec.remoteColumns.join(', ')})`);
  const collect = spec.collect(results);
  const body = `
DECLARE${ownerDeclarations(c)}
  sqls ${T.textArray};
  conns ${T.textArray} := ${array(ctx.targets.map(connectionName))};
  prefixes ${T.textArray} := ${array(ctx.targets.map(connectionPrefix))};
  servers ${T.textArray} := ${array(ctx.targets.map((t) => t.server))};
  secondaries ${T.textArray} := ${array(ctx.targets.map((t) => t.secondary))};
  budget_ms ${T.float8} := pg_catalog.date_part('epoch', pg_catalog.current_setting('statement_timeout')::${T.interval}) * 1000;
  open_connections ${T.textArray} := COALESCE(${dblink('dblink_get_connections')}(), '{}'::${T.textArray});
  settings ${T.text};
  stale ${T.text};
  sent ${T.int4};
  sent_at ${TIMESTAMPTZ};
  waited ${T.interval};
  deadline ${TIMESTAMPTZ};
BEGIN${c.access === undefined ? '' : `
  -- Owned rows: a caller restricted to its own rows without a claim (no JWT, or no ${c.access.claim} in it) owns none.
  IF restricted AND owner IS NULL THEN
    RETURN;
  END IF;`}
${spec.checks ?? ''}
  sqls := ${ctx.statements};
  -- The call's own search settings: bounded here, before any round trip (pgvector's bounds; an API caller must not
  -- make a secondary walk a graph of 10^9 candidates).
  IF ef_search IS NOT NULL AND (ef_search < ${efSearch.min} OR ef_search > ${efSearch.max}) THEN
    RAISE EXCEPTION 'vecscale: ef_search must be between ${efSearch.min} and ${efSearch.max} (got %)', ef_search USING ERRCODE = '22023';
  END IF;
  IF probes IS NOT NULL AND (probes < ${probes.min} OR probes > ${probes.max}) THEN
    RAISE EXCEPTION 'vecscale: probes must be between ${probes.min} and ${probes.max} (got %)', probes USING ERRCODE = '22023';
  END IF;
  IF iterative_scan IS NOT NULL AND NOT iterative_scan OPERATOR(pg_catalog.=) ANY (${array(ITERATIVE_SCANS)}) THEN
    RAISE EXCEPTION 'vecscale: iterative_scan must be one of ${ITERATIVE_SCANS.join(', ')} (got %)', iterative_scan USING ERRCODE = '22023';
  END IF;
  -- What is left of the caller's statement_timeout, at most ${MAX_REMOTE_MS} ms (also for a caller without one): the
  -- secondaries cancel the statement themselves when it runs out. (GREATEST and LEAST are SQL syntax, not functions:
  -- they cannot be qualified, and need no qualifying.)
  IF budget_ms > 0 THEN
    budget_ms := GREATEST(1, budget_ms - pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000);
  END IF;
  budget_ms := CASE WHEN budget_ms > 0 THEN LEAST(budget_ms, ${MAX_REMOTE_MS}) ELSE ${MAX_REMOTE_MS} END;${fresh}
  deadline := pg_catalog.clock_timestamp() + (budget_ms + ${REMOTE_GRACE_MS}) * interval '1 millisecond';
  -- Two statements, one round trip: the settings of the remote transaction (one row, one column), then the query.
  settings := pg_catalog.format('SELECT pg_catalog.concat(pg_catalog.set_config(''statement_timeout'', %L, true), pg_catalog.set_config(''client_connection_check_interval'', %L, true)',
    pg_catalog.ceil(budget_ms)::${T.int8}::${T.text}, ${literal(String(REMOTE_CHECK_MS))});
  IF ef_search IS NOT NULL THEN
    settings := settings || pg_catalog.format(', pg_catalog.set_config(''hnsw.ef_search'', %L, true)', ef_search::${T.text});
  END IF;
  IF probes IS NOT NULL THEN
    settings := settings || pg_catalog.format(', pg_catalog.set_config(''ivfflat.probes'', %L, true)', probes::${T.text});
  END IF;
  IF iterative_scan IS NOT NULL THEN
    settings := settings || pg_catalog.format(', pg_catalog.set_config(''hnsw.iterative_scan'', %L, true)', iterative_scan);
  END IF;
  settings := settings || '); ';
  FOR i IN 1..${n} LOOP
    IF NOT conns[i] = ANY (open_connections) THEN
      -- This slot's connection opened with the server's former options: close it.
      FOREACH stale IN ARRAY open_connections LOOP
        IF pg_catalog.starts_with(stale, prefixes[i]) THEN
          PERFORM ${dblink('dblink_disconnect')}(stale);
        END IF;
      END LOOP;
      PERFORM ${dblink('dblink_connect')}(conns[i], servers[i]);
    END IF;
  END LOOP;
  BEGIN
    -- Every target at once.
    FOR i IN 1..${n} LOOP
      FOR attempt IN 1..2 LOOP
        BEGIN
          ${send}
          EXIT;
        EXCEPTION WHEN connection_exception OR internal_error OR admin_shutdown THEN
          -- The session's connection broke (the secondary restarted, a standby stopped: admin_shutdown is what its
          -- backend said last) or was left busy: connect again, once (a standby's read server falls back to its secondary).
          PERFORM ${dblink('dblink_disconnect')}(conns[i]);
          IF attempt = 2 THEN
            RAISE;
          END IF;
          PERFORM ${dblink('dblink_connect')}(conns[i], servers[i]);
        END;
      END LOOP;
    END LOOP;
    sent_at := pg_catalog.clock_timestamp();
    -- The settings' rows. A connection that broke while the session kept it fails here, before any row is returned:
    -- connect again and send once more (the query is read-only, so running it twice is safe).
    FOR i IN 1..${n} LOOP
      FOR attempt IN 1..2 LOOP
        BEGIN${waitAnswer}
          PERFORM * FROM ${dblink('dblink_get_result')}(conns[i]) AS s(settings ${T.text});
          EXIT;
        EXCEPTION WHEN connection_exception OR internal_error OR admin_shutdown THEN
          PERFORM ${dblink('dblink_disconnect')}(conns[i]);
          IF attempt = 2 THEN
            RAISE;
          END IF;
          PERFORM ${dblink('dblink_connect')}(conns[i], servers[i]);
          ${send}
        END;
      END LOOP;
    END LOOP;
    -- The answers, once every one is there.
    FOR i IN 1..${n} LOOP${waitAnswer}
    END LOOP;
    ${collect}
    -- The end of each target's results: its connection is ready for the next call.
    FOR i IN 1..${n} LOOP${wait}
      PERFORM * FROM ${dblink('dblink_get_result')}(conns[i]) AS e(status ${T.text});
    END LOOP;
  EXCEPTION
    -- A timeout, a cancel (OTHERS alone does not catch those), a remote error, a broken connection: connections may be
    -- mid-result. Close every one of the call (each secondary notices and stops); the session's next call opens
    -- fresh ones.
    WHEN query_canceled OR OTHERS THEN
      FOR i IN 1..${n} LOOP
        IF conns[i] = ANY (${dblink('dblink_get_connections')}()) THEN
          PERFORM ${dblink('dblink_disconnect')}(conns[i]);
        END IF;
      END LOOP;
      RAISE;
  END;
END`;
  return defineFunction({
    schema: HELPER_SCHEMA,
    name: spec.name,
    args: [...spec.args, ...searchSettingsArgs(true)],
    returns: `TABLE(${spec.returns.join(', ')})`,
    volatility: 'VOLATILE',
    definer: { reason: "dblink is executable by its owner only, and the session keeps the owner's connections" },
    customPlan: true,
    body,
    acl,
  });
}

/** The statements of a collection's targets: vecscale.match_sql_<c>'s (an array for a sharded collection). */
export const matchSqlCall = (c: CollectionSpec): string => {
  const call = `${qualified(HELPER_SCHEMA, matchSqlFunctionName(c.name))}(query_embedding, match_count, filter${c.access === undefined ? '' : ', owner'})`;
  return c.shards === undefined ? `ARRAY[${call}]` : call;
};
