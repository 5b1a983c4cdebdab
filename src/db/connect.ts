/**
 * Connections to the topology's databases. Failures become plain, located errors naming the database (never the
 * password); every connection says who it is (application_name) so lock holders can be named.
 *
 * No wait on a silent database is unbounded. Connection set-up has `connect_timeout`; after that every session has
 * a `statement_timeout` (the server cancels a statement that runs too long) and vecscale's own bound on every answer
 * (that timeout plus ANSWER_GRACE_MS: a server whose processes are stopped or whose host is gone cancels nothing and
 * answers nothing). A connection whose answer did not come is destroyed at once — its session, and any advisory lock
 * it holds, end when the server notices — and the caller is told which database stopped answering and while doing
 * what. TCP keepalives are on, so the kernel also notices a vanished host on an idle connection. Index builds are
 * the one exception (`queryUnbounded`): they may rightly run for hours.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { VecscaleError } from '../errors.js';
import { pgConnection, redactUrl } from '../util/url.js';
import { refuseTransactionPooler } from './pooler.js';

export const APPLICATION_NAME = 'vecscale';

/** `--statement-timeout`'s default. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
/** How much longer than the statement timeout vecscale waits for an answer: the server's own cancel comes first. */
export const ANSWER_GRACE_MS = 1_000;
/** How long end() may take before the socket is destroyed (a stopped server never answers the goodbye). */
const END_GRACE_MS = 1_000;
/** Node's largest timer (about 24.8 days; a larger value fires at once): "no bound" for pg's per-query timeout. */
const NO_BOUND_MS = 2 ** 31 - 1;
/** First TCP keepalive probe after this much silence (the kernel's interval and count apply after it). */
const KEEPALIVE_IDLE_MS = 10_000;

export interface Target {
  /** 'primary' or a secondary's name. */
  readonly database: string;
  readonly url: string;
}

export type Db = pg.Client;

/** How messages name a database: `the primary (postgres://u@h:p/db)` or `secondary pod_a (…)`; never a password. */
export const describeTarget = (t: Target): string =>
  `${t.database === 'primary' ? 'the primary' : `secondary ${t.database}`} (${redactUrl(t.url)})`;

/** What vecscale knows about a connection it opened. */
interface Session {
  readonly target: Target;
  /** 0: none. */
  readonly statementTimeoutMs: number;
  /** Set when an answer did not come in time: the socket is destroyed, nothing more is sent. */
  abandoned: boolean;
}

const sessions = new WeakMap<Db, Session>();

/** The database a connection opened by `connect` reaches (undefined for one opened elsewhere). */
export const targetOf = (db: Db): Target | undefined => sessions.get(db)?.target;

/** pg's own error when `query_timeout` passes without an answer. */
const NO_ANSWER = 'Query read timeout';

/** Ends the socket now, without a goodbye: for a server that does not answer. */
function destroySocket(db: Db): void {
  db.connection.stream.destroy();
}

/**
 * pg's Client, but a query whose answer did not come in time destroys the connection at once: pg keeps such a query
 * "active" and queues every later one behind it, so the connection could never be used again anyway, and a prompt
 * close is what ends the server's session (and its locks) as soon as the server can notice.
 */
class BoundedClient extends pg.Client {
  // Every overload of query() lands here; vecscale uses the promise forms only.
  override query(...args: any[]): any {
    const result: unknown = (super.query as (...a: unknown[]) => unknown).apply(this, args);
    if (!(result instanceof Promise)) return result;
    return result.then(
      (r: unknown) => {
        // A COMMIT of a transaction an earlier statement aborted (an error caught and ignored) is answered ROLLBACK,
        // not an error: taken as committed, a rolled-back apply would be reported as done.
        if (args[0] === 'COMMIT' && (r as pg.QueryResult | undefined)?.command === 'ROLLBACK') {
          throw Object.assign(new Error('the transaction was rolled back at COMMIT: an earlier statement of it failed'), { code: '25P02' });
        }
        return r;
      },
      (err: unknown) => {
        if ((err as Error | undefined)?.message === NO_ANSWER) {
          const s = sessions.get(this);
          if (s) s.abandoned = true;
          destroySocket(this);
        }
        throw err;
      },
    );
  }
}

/** Maps a driver error to what a user can act on. */
export function connectionError(t: Target, err: unknown): VecscaleError {
  const e = err as { code?: string; message?: string };
  const where = describeTarget(t);
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused: is the server running and listening there?',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name could not be resolved',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'connection reset by the server',
    '28P01': 'password authentication failed',
    '28000': 'authentication rejected (pg_hba.conf or role)',
    '3D000': 'database does not exist',
    '57P03': 'the server is starting up or shutting down',
    '53300': 'too many connections',
  };
  const reason =
    (e.code && reasons[e.code]) ??
    (/timeout/i.test(e.message ?? '') ? 'connection timed out' : (e.message ?? String(err)).split('\n')[0]);
  return new VecscaleError('connection', `cannot connect to ${where}: ${reason}`, {
    meta: { database: t.database, url: redactUrl(t.url), reason: e.code ?? null },
  });
}

export interface ConnectOptions {
  readonly timeoutMs?: number;
  /** Every transaction of the session is READ ONLY (plan): a bug cannot write. */
  readonly readOnly?: boolean;
  /** application_name, e.g. `vecscale apply`: how another run's lock message names this one (default `vecscale`). */
  readonly applicationName?: string;
  /**
   * The session's statement_timeout, and (plus ANSWER_GRACE_MS) how long any statement may go unanswered; 0: no
   * bound. Default DEFAULT_STATEMENT_TIMEOUT_MS.
   */
  readonly statementTimeoutMs?: number;
  /**
   * The session must be the server's own for its whole life (it holds a session advisory lock and session settings):
   * refuse a URL that goes through a transaction-mode pooler (exit 6, with the direct URL's advice).
   */
  readonly requireSession?: boolean;
}

/** `2 s`, `1.5 s`, `250 ms`: how a timeout reads in messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/**
 * Opens a connection or throws a `connection` error naming the database. Then, in one round trip, sets the session's
 * statement_timeout (and READ ONLY) and reads the backend's pid, to see a transaction-mode pooler in between (./pooler.ts).
 */
export async function connect(t: Target, opts: ConnectOptions = {}): Promise<Db> {
  const statementTimeoutMs = Math.max(0, Math.round(opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS));
  // Host, port, database, user, password and TLS as libpq reads the URL (the wrappers do): never a connection string,
  // which node-pg reads its own way (its sslmode=prefer is verify-full, with no fallback).
  const { ssl: attempts, ...where } = pgConnection(t.url);
  let client: Db | undefined;
  let failure: unknown;
  for (const ssl of attempts) {
    const attempt: Db = new BoundedClient({
      ...where,
      ssl,
      application_name: opts.applicationName ?? APPLICATION_NAME,
      connectionTimeoutMillis: opts.timeoutMs ?? 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      ...(statementTimeoutMs > 0 ? { query_timeout: statementTimeoutMs + ANSWER_GRACE_MS } : {}),
    });
    // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
    attempt.on('error', () => undefined);
    sessions.set(attempt, { target: t, statementTimeoutMs, abandoned: false });
    try {
      await attempt.connect();
      client = attempt;
      break;
    } catch (err) {
      // prefer and allow try the other way once, after any failure of the first attempt, as libpq does.
      await close(attempt);
      failure = err;
    }
  }
  if (!client) throw connectionError(t, failure);
  let backendPid: number;
  try {
    // Set with SQL, not as startup parameters: a pooler (PgBouncer) refuses unknown startup parameters, and this way
    // it is found and named below instead. A URL's `options` cannot undo them either: they come after.
    // READ COMMITTED whatever the database's or role's default: every lock-then-check vecscale does (a drop of a table
    // planned as empty: LOCK, then IF EXISTS … RAISE) needs the check's snapshot taken after the lock; under
    // REPEATABLE READ an earlier statement of the transaction fixes it, and a row committed while the lock was
    // awaited is not seen — the table was dropped with it.
    // search_path: a database's or role's default (or PGOPTIONS) could put a schema whose look-alike operators and
    // functions (an evil.=(text, text)) would run, as vecscale's role, in every unqualified name of its own SQL.
    // idle_in_transaction_session_timeout (and idle_session_timeout): a move's cutover holds its primary transaction
    // open while the pods catch up; a server that ends it loses the cutover, not a forgotten session.
    const r = await client.query<{ pid: number }>(
      `SELECT pg_catalog.pg_backend_pid() AS pid, pg_catalog.set_config('statement_timeout', $1, false),
              pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false),
              pg_catalog.set_config('idle_in_transaction_session_timeout', '0', false),
              pg_catalog.set_config('idle_session_timeout', '0', false),
              pg_catalog.set_config('default_transaction_isolation', 'read committed', false)${
        opts.readOnly ? ", pg_catalog.set_config('default_transaction_read_only', 'on', false)" : ''
      }`,
      [String(statementTimeoutMs)],
    );
    backendPid = r.rows[0]!.pid;
  } catch (err) {
    await close(client);
    throw silentOr(client, 'setting up the session', err) ?? connectionError(t, err);
  }
  if (opts.requireSession) {
    try {
      await refuseTransactionPooler(client, t, backendPid, { ...opts, requireSession: false });
    } catch (err) {
      await close(client);
      throw err;
    }
  }
  return client;
}

/** Connects to every target, all or none: on a failure the opened ones are closed and every failure is named. */
export async function connectAll(targets: readonly Target[], opts: ConnectOptions = {}): Promise<Map<string, Db>> {
  const settled = await Promise.allSettled(targets.map((t) => connect(t, opts)));
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failed.length > 0) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? close(s.value) : undefined)));
    if (failed.length === 1) throw failed[0];
    const errors = failed.map((e) => (e instanceof VecscaleError ? e : connectionError({ database: '?', url: '' }, e)));
    // A pooler refusal is a config error: keep its class (exit 6) when every failure is one.
    const code = errors.every((e) => e.code === 'config') ? 'config' : 'connection';
    throw new VecscaleError(code, errors.map((e) => e.message).join('\n'), {
      meta: { databases: errors.map((e) => e.meta) },
      ...(errors[0]?.hint ? { hint: errors[0].hint } : {}),
    });
  }
  return new Map(targets.map((t, i) => [t.database, (settled[i] as PromiseFulfilledResult<Db>).value]));
}

/**
 * Ends a connection: a graceful end() for a server that answers, the socket destroyed after END_GRACE_MS for one that
 * does not (pg's end() waits for the server to close its side). Never throws.
 */
export async function close(db: Db): Promise<void> {
  if (sessions.get(db)?.abandoned) {
    destroySocket(db);
    return;
  }
  const ended = db.end().then(
    () => true,
    () => true,
  );
  const gaveUp = sleep(END_GRACE_MS, false, { ref: false });
  if (!(await Promise.race([ended, gaveUp]))) destroySocket(db);
}

export async function closeAll(dbs: ReadonlyMap<string, Db>): Promise<void> {
  await Promise.all([...dbs.values()].map(close));
}

/** Whether a statement may still be sent on this connection (false once an answer did not come). */
export const usable = (db: Db): boolean => !sessions.get(db)?.abandoned;

/**
 * Runs a statement with no statement timeout and no bound on the wait (index builds: they may rightly take hours,
 * and show progress instead), then puts the session's timeout back. `local`: inside a transaction (SET LOCAL
 * semantics, so a failure cannot leave the timeout off).
 */
export async function queryUnbounded(db: Db, sql: string, opts: { local: boolean }): Promise<void> {
  const ms = sessions.get(db)?.statementTimeoutMs ?? 0;
  const set = (value: number) => db.query('SELECT pg_catalog.set_config($1, $2, $3)', ['statement_timeout', String(value), opts.local]);
  if (ms === 0) {
    await db.query({ text: sql, query_timeout: NO_BOUND_MS } as pg.QueryConfig);
    return;
  }
  await set(0);
  try {
    await db.query({ text: sql, query_timeout: NO_BOUND_MS } as pg.QueryConfig);
  } finally {
    // Inside a transaction a failure ends it, and SET LOCAL with it; outside, put the timeout back by hand.
    if (!opts.local && usable(db)) await set(ms).catch(() => undefined);
  }
  if (opts.local) await set(ms);
}

/**
 * A timeout, as the user should read it: the database named, what vecscale was doing (`doing`, e.g. `reading its
 * catalogs`), and the bound. Undefined when `err` is no timeout. A server that did not answer at all is a
 * `connection` error, one that cancelled the statement itself a `database` error; both exit 1.
 */
export function silentOr(db: Db, doing: string, err: unknown): VecscaleError | undefined {
  const s = sessions.get(db);
  if (!s) return undefined;
  const e = err as { message?: unknown; code?: unknown };
  const where = describeTarget(s.target);
  const bound = formatDuration(s.statementTimeoutMs);
  const hint = 'check that the database is up and not overloaded, or raise --statement-timeout (0: no limit)';
  const meta = { database: s.target.database, url: redactUrl(s.target.url), doing, statementTimeoutMs: s.statementTimeoutMs };
  if (e?.message === NO_ANSWER || s.abandoned) {
    return new VecscaleError(
      'connection',
      `${where} stopped answering: no answer within ${formatDuration(s.statementTimeoutMs + ANSWER_GRACE_MS)} while ${doing} ` +
        `(statement timeout ${bound}); vecscale closed its connection (the server ends that session, and so its locks, as soon as it notices)`,
      { hint, meta: { ...meta, reason: 'no_answer' }, cause: err },
    );
  }
  if (e?.code === '57014' && typeof e.message === 'string' && /statement timeout/.test(e.message)) {
    return new VecscaleError('database', `${where}: ${doing} took longer than the statement timeout (${bound}) and was cancelled`, {
      hint,
      meta: { ...meta, reason: 'statement_timeout', sqlstate: '57014' },
      cause: err,
    });
  }
  return undefined;
}
