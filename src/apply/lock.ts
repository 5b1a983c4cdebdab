/**
 * vecscale's cross-run lock: one PostgreSQL advisory lock per database, so two runs (two CI jobs, a laptop and a
 * pipeline) never converge the same database at once.
 *
 * - A SESSION lock (pg_try_advisory_lock): it lives as long as the connection, so a killed run leaves nothing stale.
 * - Taken by POLLING pg_try_advisory_lock (a short autocommit statement) with a sleep in Node, never the blocking
 *   pg_advisory_lock: a session blocked inside a statement holds a snapshot, and the other run's
 *   CREATE INDEX CONCURRENTLY on that database waits for every such snapshot, while we wait for its lock: a deadlock
 *   no one would detect.
 * - Taken in one fixed order (targets sorted by `order`, code point by code point), so two runs over overlapping
 *   sets of databases cannot each hold what the other waits for. All or nothing: on a failure the locks this call
 *   took are released.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Db, silentOr, usable } from '../db/connect.js';
import { VecscaleError } from '../errors.js';

/**
 * The lock key: the eight bytes of the ASCII string 'vecscale', read as two big-endian int4s,
 * i.e. pg_try_advisory_lock(1986356083, 1667329125) ('vecs' = 0x76656373, 'cale' = 0x63616c65). In pg_locks the
 * two-int4 form shows as classid = the first, objid = the second, objsubid = 2. Both are positive, so they read the
 * same as int4 and as oid. Anyone can see who holds it with:
 *
 *   SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 *   WHERE l.locktype = 'advisory' AND l.classid = 1986356083 AND l.objid = 1667329125 AND l.objsubid = 2;
 */
export const LOCK_KEY = Object.freeze([0x76656373, 0x63616c65] as const);

const DEFAULT_POLL_MS = 200;

export interface LockTarget {
  /** 'primary' or a secondary's name (for meta and callers). */
  readonly database: string;
  readonly db: Db;
  /** How messages name the database, e.g. `secondary pod_a (postgres://u@h:5432/db)`; never a password. */
  readonly label: string;
  /** Sort key for the fixed lock order, e.g. the redacted `host:port/dbname`. */
  readonly order: string;
}

/** The session holding vecscale's lock on a database, as pg_locks and pg_stat_activity show it. */
export interface Holder {
  readonly pid: number;
  /** '' when the session set none. */
  readonly applicationName: string;
  /** null for a Unix-socket client, or when this role may not see the session's details. */
  readonly clientAddr: string | null;
  /** When the holding session connected (ISO 8601, UTC); null when this role may not see it. */
  readonly since: string | null;
}

export interface AcquireOptions {
  /** Total budget across all targets; 0 tries each once. */
  readonly timeoutMs: number;
  /** Pause between tries (default 200 ms, plus up to 25 % jitter). */
  readonly pollMs?: number;
  /** Called once per target, the first time its lock is found held by another session. */
  readonly onWait?: (t: LockTarget, holder: Holder | undefined) => void;
}

/** What the holder lookup found: the holder, nobody (released meanwhile), or nothing visible to this role. */
type Lookup =
  | { readonly kind: 'holder'; readonly holder: Holder; readonly self: LockTarget | undefined }
  | { readonly kind: 'none' }
  | { readonly kind: 'hidden'; readonly reason: string };

/** Where one of our own connections sits, to recognise a lock we hold ourselves (two targets, one database). */
interface SessionId {
  readonly pid: number;
  readonly datid: string;
  readonly started: string;
}

/** Code-point order (JS `<` compares UTF-16 code units, which differs above U+FFFF). */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

const firstLine = (e: unknown): string => {
  const m = (e as { message?: unknown })?.message;
  return (typeof m === 'string' && m !== '' ? m : String(e)).split('\n')[0]!;
};

/** A driver error while locking: a lost connection is `connection`, a failing statement `database`. */
function lockingError(t: LockTarget, err: unknown): VecscaleError {
  if (err instanceof VecscaleError) return err;
  const silent = silentOr(t.db, "taking vecscale's lock", err);
  if (silent) return silent;
  const code = (err as { code?: unknown })?.code;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  // Class 08 (connection exception), 57P01-03 (server shutting down), or no SQLSTATE at all (socket errors,
  // "Connection terminated", "Client was closed"): the connection is gone.
  const lost = sqlstate === undefined || sqlstate.startsWith('08') || /^57P0[1-3]$/.test(sqlstate);
  return new VecscaleError(
    lost ? 'connection' : 'database',
    `cannot take vecscale's lock on ${t.label}: ${lost ? 'the connection failed: ' : ''}${firstLine(err)}`,
    { meta: { database: t.database, reason: typeof code === 'string' ? code : null }, cause: err },
  );
}

async function tryLock(t: LockTarget): Promise<{ locked: boolean; id: SessionId }> {
  const r = await t.db.query<{ locked: boolean; pid: number; datid: string; started: string }>(
    `SELECT pg_try_advisory_lock($1::int4, $2::int4) AS locked, pg_backend_pid() AS pid,
            (SELECT oid FROM pg_database WHERE datname = current_database())::text AS datid,
            extract(epoch FROM pg_postmaster_start_time())::text AS started`,
    [LOCK_KEY[0], LOCK_KEY[1]],
  );
  const row = r.rows[0]!;
  return { locked: row.locked, id: { pid: row.pid, datid: row.datid, started: row.started } };
}

/** Who holds the key in the target's database; never throws for lack of privileges (says so instead). */
async function lookupHolder(t: LockTarget, ours: ReadonlyMap<LockTarget, SessionId>): Promise<Lookup> {
  let rows: { pid: number; application_name: string | null; client_addr: string | null; since: string | null; datid: string; started: string }[];
  try {
    rows = (
      await t.db.query(
        `SELECT l.pid, a.application_name, host(a.client_addr) AS client_addr,
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since,
                l.database::text AS datid, extract(epoch FROM pg_postmaster_start_time())::text AS started
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2
            AND l.pid <> pg_backend_pid()
          LIMIT 1`,
        [LOCK_KEY[0], LOCK_KEY[1]],
      )
    ).rows;
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    // 42501 insufficient_privilege: pg_locks or pg_stat_activity was revoked from this role.
    if (code === '42501') return { kind: 'hidden', reason: firstLine(err) };
    throw err;
  }
  const row = rows[0];
  if (!row) return { kind: 'none' };
  const holder: Holder = {
    pid: row.pid,
    applicationName: row.application_name ?? '',
    clientAddr: row.client_addr,
    since: row.since,
  };
  let self: LockTarget | undefined;
  for (const [other, id] of ours) {
    if (id.pid === row.pid && id.datid === row.datid && id.started === row.started) self = other;
  }
  return { kind: 'holder', holder, self };
}

function describeHolder(h: Holder): string {
  const parts = [`application_name "${h.applicationName}"`, `pid ${h.pid}`];
  if (h.clientAddr) parts.push(`from ${h.clientAddr}`);
  if (h.since) parts.push(`since ${h.since}`);
  else parts.push('(this role may not see when it connected or from where)');
  return parts.join(', ');
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

function timeoutError(t: LockTarget, found: Lookup, timeoutMs: number): VecscaleError {
  const hint = 'wait for it to finish, or raise --lock-timeout';
  const waited = `gave up after ${seconds(timeoutMs)}`;
  if (found.kind === 'holder') {
    const h = found.holder;
    const who = h.applicationName.startsWith('vecscale') ? 'another vecscale run' : 'another session';
    return new VecscaleError('lock', `${who} holds the lock on ${t.label}: ${describeHolder(h)}; ${waited}`, {
      hint,
      meta: { database: t.database, holder: { pid: h.pid, applicationName: h.applicationName } },
    });
  }
  const why =
    found.kind === 'hidden'
      ? `the holder could not be identified: this role may not read pg_locks or pg_stat_activity (${found.reason})`
      : 'the holder could not be seen (it may have released the lock just now)';
  return new VecscaleError('lock', `another session holds vecscale's lock on ${t.label}; ${why}; ${waited}`, {
    hint,
    meta: { database: t.database, holder: null },
  });
}

async function unlock(t: LockTarget): Promise<void> {
  // A connection that stopped answering is closed already: its session's locks end with it.
  if (!usable(t.db)) return;
  try {
    await t.db.query('SELECT pg_advisory_unlock($1::int4, $2::int4)', [LOCK_KEY[0], LOCK_KEY[1]]);
  } catch {
    // Best effort: a broken connection has already released its session locks.
  }
}

/**
 * Takes vecscale's session advisory lock on every target, in a fixed order (by `order`, code point by code point),
 * waiting up to `timeoutMs` in total. Throws `lock` when a lock stays held by another session (naming it), `config`
 * when two targets turn out to be the same database, `connection`/`database` when a connection fails. Whatever it
 * throws, it first releases the locks it took. Locks taken twice on one connection nest (one release each).
 */
export async function acquireLocks(targets: readonly LockTarget[], opts: AcquireOptions): Promise<void> {
  const pollMs = Math.max(1, opts.pollMs ?? DEFAULT_POLL_MS);
  const timeoutMs = Math.max(0, opts.timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const ordered = [...targets].sort((a, b) => compareCodePoints(a.order, b.order));
  const taken = new Map<LockTarget, SessionId>();
  try {
    for (const t of ordered) {
      let waited = false;
      for (;;) {
        let res: Awaited<ReturnType<typeof tryLock>>;
        try {
          res = await tryLock(t);
        } catch (err) {
          throw lockingError(t, err);
        }
        if (res.locked) {
          taken.set(t, res.id);
          break;
        }
        const remaining = deadline - Date.now();
        if (!waited || remaining <= 0) {
          let found: Lookup;
          try {
            found = await lookupHolder(t, taken);
          } catch (err) {
            throw lockingError(t, err);
          }
          if (found.kind === 'holder' && found.self) {
            throw new VecscaleError(
              'config',
              `${t.label} and ${found.self.label} are the same database: this run already holds its lock through the latter`,
              {
                hint: 'point each database of the topology at a different database',
                meta: { database: t.database, sameAs: found.self.database },
              },
            );
          }
          if (remaining <= 0) throw timeoutError(t, found, timeoutMs);
          if (!waited) {
            waited = true;
            opts.onWait?.(t, found.kind === 'holder' ? found.holder : undefined);
          }
        }
        const pause = pollMs * (1 + Math.random() * 0.25);
        await sleep(Math.max(0, Math.min(pause, deadline - Date.now())));
      }
    }
  } catch (err) {
    await releaseLocks([...taken.keys()]);
    throw err;
  }
}

/**
 * Releases vecscale's lock on every target (best effort, never throws). Closing a connection releases its session
 * locks anyway; this is for a caller that keeps its connections open.
 */
export async function releaseLocks(targets: readonly LockTarget[]): Promise<void> {
  // One connection runs its statements in order; distinct connections in parallel.
  await Promise.all(targets.map(unlock));
}
