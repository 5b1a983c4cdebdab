/**
 * The cutover of a move: the only moment applications notice it. In one attempt:
 *
 * 1. the primary: `LOCK public.<c> IN ACCESS EXCLUSIVE MODE`, then the collection's write lock
 *    (src/model/write-lock.ts), then the same lock on vecscale_write.<c> and vecscale_remote.<c> — writes (and plain
 *    reads of public.<c>) wait from here; every writer takes the view first too, so none can deadlock us;
 * 2. each source: `LOCK vecs.<old> IN EXCLUSIVE MODE` — a direct writer there waits too (reads go on);
 * 3. each target catches up: inside a database the change log is resynced to empty; across databases the flow's
 *    beacon, advanced on the source now, has arrived (a subscription applies in commit order);
 * 4. row count and checksum over (id, metadata, vec) of every target equal those of its sources' rows (src/move/sql.ts);
 * 5. the primary's wrappers switch to the new layout (the plan's steps, in this transaction), and each source
 *    replaces what the new layout reads there (its plan's steps but the drops of old tables, in its transaction);
 * 6. the primary commits: writes resume, on the new tables (a read of a source's replaced object waits on its lock);
 *    then each source drops its old tables and commits: a direct writer that waited on them fails loudly (the table
 *    is gone), never writes into a dead copy.
 *
 * Locks are taken with a short lock_timeout, so a long transaction in the way costs an attempt (rolled back, tried
 * again after a pause) rather than a long stall of every writer behind the lock queue.
 */
import { VecscaleError } from '../errors.js';
import { API_SCHEMA, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import type { MoveFlow, MovePlan, Plan, PlanStep } from '../plan/types.js';
import { ident, qualified } from '../sql/quote.js';
import type { MoveRunOptions } from './run.js';
import { checksumSql, FAST_DEADLOCK_CHECK } from './sql.js';
import { WRITE_LOCK_CLASS, writeLockKey } from '../model/write-lock.js';
import { runStepsInTransaction } from './steps.js';

export interface ReplicationGroup {
  readonly name: string;
  readonly source: string;
  readonly target: string;
  readonly flows: readonly MoveFlow[];
}

export interface CutoverResult {
  readonly rows: number;
  /** From the primary's lock request to its commit: the longest any write through the primary waited. */
  readonly pauseMs: number;
  /** Where the pause went, in ms: taking the locks, the targets' catch-up, the verification, the switch and commit. */
  readonly pauseParts: { readonly locks: number; readonly catchUp: number; readonly verify: number; readonly switch: number };
  readonly attempts: number;
}

interface Input {
  readonly o: MoveRunOptions;
  readonly move: MovePlan;
  readonly groups: readonly ReplicationGroup[];
  readonly plan: Plan;
  readonly waitBeacons: (source: string, flows: readonly { target: string; name: string }[]) => Promise<void>;
  /** Brings a source's logged changes over to its targets in the same database (moves inside one database). */
  readonly drain: (source: string) => Promise<void>;
  /** The schema of pgvector's functions on a database. */
  readonly vectorSchema: (database: string) => string;
}

const ATTEMPTS = 10;
// Below deadlock_timeout (1 s by default): a writer that waits on us while we wait on it is never the one chosen.
const LOCK_TIMEOUT = '500ms';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Retry extends Error {}

export async function runCutover(input: Input): Promise<CutoverResult> {
  let last: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      return { ...(await attemptCutover(input)), attempts: attempt };
    } catch (err) {
      if (!(err instanceof Retry)) throw err;
      last = err;
      await sleep(250 * attempt);
    }
  }
  throw new VecscaleError(
    'database',
    `the cutover of ${input.move.collection} did not succeed in ${ATTEMPTS} attempts (${(last as Error).message}); nothing was switched: applications still use the old tables, and the next apply starts the move again`,
  );
}

/** A lock not had in time, or a deadlock that chose this attempt: tried again. */
const isLockTimeout = (err: unknown): boolean => {
  const code = (err as { code?: string }).code ?? (err as VecscaleError).meta?.sqlstate;
  return code === '55P03' || code === '40P01';
};

async function attemptCutover({ o, move, groups, plan, waitBeacons, drain, vectorSchema }: Input): Promise<Omit<CutoverResult, 'attempts'>> {
  const c = move.collection;
  const primary = o.dbs.get('primary')!;
  const sources = [...new Set(move.flows.map((f) => f.source.secondary))].sort();
  const open: string[] = [];
  const rollbackAll = async () => {
    for (const name of open) await o.dbs.get(name)?.query('ROLLBACK').catch(() => undefined);
  };
  // Nothing is locked yet: a target whose apply worker is not running (failing on a change, restarting) would keep
  // every writer waiting for the whole catch-up bound, so it costs an attempt here instead.
  for (const g of groups) {
    const r = await o.dbs.get(g.target)!.query<{ n: number }>(
      'SELECT pg_catalog.count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_subscription WHERE subname OPERATOR(pg_catalog.=) $1 AND relid IS NULL AND pid IS NOT NULL ' +
        'AND subid IN (SELECT s.oid FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.subdbid WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())',
      [g.name],
    );
    if ((r.rows[0]?.n ?? 0) === 0) throw new Retry(`${g.target}: the subscription ${g.name} has no running apply worker (see the server log of ${g.target})`);
  }
  const requested = Date.now();
  // What the attempt was doing when it failed: said in the message of a lost attempt.
  let stage = 'primary: begin';
  try {
    await primary.query('BEGIN');
    open.push('primary');
    await primary.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
    await primary.query('SET LOCAL standard_conforming_strings = on');
    // The view first, then the write lock, then the wrappers: every call of upsert_<c> or match_<c> takes the view
    // before the write lock (src/model/write-lock.ts), and so does every write through the view, so a transaction in
    // flight that holds either also holds the view. Waiting here for the view waits those transactions out — a later
    // statement of theirs on the view jumps the queue, as PostgreSQL lets a holder do — and once it is had, the write
    // lock is free and nothing is half-way through an old definition. (The write lock first let a transaction that had
    // written through the view wait on it at its next upsert while holding the view this waits for: a cycle only the
    // lock timeout broke, every attempt, under a steady mix of multi-statement writers.)
    const wanted = [qualified(API_SCHEMA, c), qualified(WRITE_SCHEMA, c), qualified(REMOTE_SCHEMA, c)];
    const present = await primary.query<{ r: string; kind: string | null; owner: string | null }>(
      `SELECT r, c.relkind::pg_catalog.text AS kind, pg_catalog.pg_get_userbyid(c.relowner) AS owner
         FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(r, i) LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.r) ORDER BY u.i`,
      [wanted],
    );
    let writeLocked = false;
    const takeWriteLock = async () => {
      stage = 'primary: write lock';
      // upsert_<c> and match_<c> calls wait at their start, never half-way through an old definition.
      await primary.query('SELECT pg_catalog.pg_advisory_xact_lock($1, $2)', [WRITE_LOCK_CLASS, writeLockKey(c)]);
      writeLocked = true;
    };
    for (const row of present.rows) {
      if (row.kind === null) continue;
      if (row.r !== wanted[0] && !writeLocked) await takeWriteLock();
      stage = `primary: lock ${row.r}`;
      // LOCK TABLE refuses foreign tables; ALTER … OWNER TO its own owner changes nothing and takes the same lock.
      if (row.kind === 'f') await primary.query(`ALTER FOREIGN TABLE ${row.r} OWNER TO ${ident(row.owner!)}`);
      else await primary.query(`LOCK TABLE ${row.r} IN ACCESS EXCLUSIVE MODE`);
    }
    if (!writeLocked) await takeWriteLock();
    for (const s of sources) {
      const db = o.dbs.get(s)!;
      await db.query('BEGIN');
      open.push(s);
      await db.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      await db.query(FAST_DEADLOCK_CHECK);
      await db.query('SET LOCAL standard_conforming_strings = on');
      const tables = [...new Set(move.flows.filter((f) => f.source.secondary === s).map((f) => qualified(VECS_SCHEMA, f.source.table)))];
      stage = `${s}: lock ${tables.join(', ')}`;
      await db.query(`LOCK TABLE ${tables.join(', ')} IN EXCLUSIVE MODE`);
    }
    const locked = Date.now();
    for (const s of sources) {
      stage = `${s}: catch-up of its targets`;
      await drain(s);
      await waitBeacons(s, groups.filter((g) => g.source === s).map((g) => ({ target: g.target, name: g.name })));
    }
    const caughtUp = Date.now();
    stage = 'verification';
    const rows = await verify(o, move, vectorSchema);
    const verified = Date.now();
    const primaryPlan = plan.databases.find((d) => d.database === 'primary');
    stage = 'primary: switch';
    if (primaryPlan) await runStepsInTransaction(primary, primaryPlan, o.secrets);
    // Each source's steps but the drops of its old tables run now, before the primary commits: a source can be a
    // target too, and the new wrappers may read an object its steps replace (sharded → single: vecscale.<c>, a shard
    // view no wrapper may read, becomes the wrapper view). Run after the primary's commit, a read in between found the
    // old object (42501 permission denied for view <c>, or only that shard's rows); now it waits on the source's lock
    // until the source commits, right after the primary. A failure here still rolls everything back.
    const isOldTable = (st: PlanStep) => st.action === 'drop' && st.kind === 'table';
    for (const s of open.slice(1)) {
      const dbPlan = plan.databases.find((d) => d.database === s);
      stage = `${s}: what the new wrappers read`;
      if (dbPlan) await runStepsInTransaction(o.dbs.get(s)!, { ...dbPlan, steps: dbPlan.steps.filter((st) => !isOldTable(st)) }, o.secrets);
    }
    await primary.query('COMMIT');
    open.shift();
    const committed = Date.now();
    const pauseMs = committed - requested;
    const pauseParts = { locks: locked - requested, catchUp: caughtUp - locked, verify: verified - caughtUp, switch: committed - verified };
    // Committed: the primary reads and writes the new tables. What is left is retiring the old ones: a reader of one
    // on its pod (pg_dump, a direct vecs client) delays only this, and a failure leaves a move that apply finishes.
    // Each source on its own from here: nothing is rolled back any more (what the new wrappers read is in these
    // transactions), a failed drop goes back to its savepoint, and one source's trouble never undoes another's.
    let retireError: unknown;
    for (const s of [...open]) {
      const db = o.dbs.get(s)!;
      const dbPlan = plan.databases.find((d) => d.database === s);
      open.shift();
      try {
        await db.query('SAVEPOINT vecscale_retire');
        try {
          // Short: a reader of an old table in the way costs only the drop, which the next apply finishes.
          await db.query("SET LOCAL lock_timeout = '100ms'");
          if (dbPlan) await runStepsInTransaction(db, { ...dbPlan, steps: dbPlan.steps.filter(isOldTable) }, o.secrets);
        } catch (err) {
          await db.query('ROLLBACK TO SAVEPOINT vecscale_retire');
          retireError ??= err;
        }
        await db.query('COMMIT');
      } catch (err) {
        retireError ??= err;
      }
    }
    if (retireError) throw retireError;
    return { rows, pauseMs, pauseParts };
  } catch (err) {
    const beforeSwitch = open[0] === 'primary';
    await rollbackAll();
    if (beforeSwitch && (isLockTimeout(err) || (err as VecscaleError).meta?.reason === 'catch_up' || err instanceof Retry)) {
      throw new Retry(`${stage}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!beforeSwitch) {
      throw new VecscaleError('partial_apply', `the cutover of ${c} committed on the primary (applications use the new tables), but retiring the old tables failed: ${(err as Error).message}`, {
        hint: 'run apply again: it finishes the move (the old tables are write-locked, caught up with, and dropped)',
        cause: err,
      });
    }
    // Located: which database and which stage of the cutover failed, and that nothing was switched.
    if (err instanceof VecscaleError) throw err;
    const e = err as { message?: string; code?: string };
    throw new VecscaleError('database', `the cutover of ${c} failed at ${stage}: ${e?.message ?? String(err)}; nothing was switched: applications still use the old tables, and the next apply starts the cutover again`, {
      meta: { stage, sqlstate: e?.code ?? null },
      cause: err,
    });
  }
}

/**
 * Each target's row count and checksum against its sources' rows that belong on it. The sources are write-locked
 * and the targets caught up, so they must agree exactly; if not, the attempt is abandoned (nothing switched).
 */
async function verify(o: MoveRunOptions, move: MovePlan, vectorSchema: (database: string) => string): Promise<number> {
  const targets = [...new Map(move.flows.map((f) => [`${f.target.secondary}/${f.target.table}`, f.target])).values()];
  let rows = 0;
  // The checksums are most of the pause: let each server scan in parallel where it can (this session only).
  for (const db of new Set([...targets.map((t) => t.secondary), ...move.flows.map((f) => f.source.secondary)])) {
    await o.dbs.get(db)!.query("SELECT pg_catalog.set_config('max_parallel_workers_per_gather', '4', false), pg_catalog.set_config('parallel_setup_cost', '10', false)");
  }
  // One connection per database answers one query at a time: each database's queries in turn, databases at once.
  const chains = new Map<string, Promise<unknown>>();
  const run = (db: string, sql: string): Promise<{ n: string; h: string }> => {
    const next = (chains.get(db) ?? Promise.resolve()).then(async () => (await o.dbs.get(db)!.query<{ n: string; h: string }>(sql)).rows[0]!);
    chains.set(db, next.catch(() => undefined));
    return next;
  };
  // Each flow's rows on its source, each target's rows, and each source's row count, all at once.
  const sources = [...new Map(move.flows.map((f) => [`${f.source.secondary}/${f.source.table}`, f.source])).values()];
  const [perFlow, perTarget, perSource] = await Promise.all([
    Promise.all(move.flows.map((f) => run(f.source.secondary, checksumSql(f.source.table, f.filter, vectorSchema(f.source.secondary))))),
    Promise.all(targets.map((t) => run(t.secondary, checksumSql(t.table, undefined, vectorSchema(t.secondary))))),
    Promise.all(sources.map((s) => run(s.secondary, `SELECT pg_catalog.count(*)::pg_catalog.int8 AS n, '0' AS h FROM ONLY ${qualified(VECS_SCHEMA, s.table)}`))),
  ]);
  // Every source row must land on some target: a row on the wrong partition would otherwise be left behind.
  for (const [i, s] of sources.entries()) {
    const covered = move.flows.reduce((a, f, j) => (f.source.secondary === s.secondary && f.source.table === s.table ? a + BigInt(perFlow[j]!.n) : a), 0n);
    const total = BigInt(perSource[i]!.n);
    if (covered !== total) {
      throw new VecscaleError('precondition', `${s.secondary}: ${total - covered} row(s) of ${VECS_SCHEMA}.${s.table} belong to no partition of the new layout (written straight into the shard's table during the move); nothing was switched`, {
        hint: 'run vecscale check, put those rows where they belong, and apply again',
      });
    }
  }
  const results = targets.map((t, i) => {
    const expected = move.flows.flatMap((f, j) => (f.target.secondary === t.secondary && f.target.table === t.table ? [perFlow[j]!] : []));
    const actual = perTarget[i]!;
    const n = expected.reduce((a, e) => a + BigInt(e.n), 0n);
    const h = expected.reduce((a, e) => a ^ BigInt(e.h), 0n);
    return { t, ok: BigInt(actual.n) === n && BigInt(actual.h) === h, n: Number(actual.n), expected: Number(n) };
  });
  for (const r of results) {
    if (!r.ok) throw new Retry(`${r.t.secondary}: ${VECS_SCHEMA}.${r.t.table} holds ${r.n} rows against ${r.expected} expected, or their checksums differ`);
    rows += r.n;
  }
  return rows;
}
