/**
 * Runs a plan: the secondaries first (at once, those on one cluster one after another), then the primary; each database's transactional steps in one transaction
 * (drops of replaced objects first, in reverse phase order, then creates in phase order), then its
 * non-transactional steps (CREATE INDEX CONCURRENTLY) one by one. A failure rolls back that database's transaction
 * and stops; a failure outside the transaction leaves what the steps before it did, and is reported with what the
 * failed step itself left (an interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index).
 *
 * Every statement runs under the session's statement timeout (src/db/connect.ts), except index builds: they run
 * unbounded, and report their progress (./index-progress.ts) to `onProgress` when one is given.
 */
import { type Db, queryUnbounded, silentOr, targetOf, usable } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { PHASES } from '../plan/planner.js';
import type { DatabasePlan, Plan, PlanStep } from '../plan/types.js';
import { hasSecret } from '../sql/quote.js';
import { runSecretStatement } from './secrets.js';
import { describeLeftover } from './leftover.js';
import { backendPid, withIndexProgress } from './index-progress.js';
import type { ProgressSink } from '../model/progress.js';
import { clusterOf, scrub } from '../util/url.js';

export interface ApplyEvents {
  onDatabaseStart?(db: DatabasePlan): void;
  /** A step is about to run. */
  onStep?(step: PlanStep): void;
  /** A step's statements ran (in a database's transaction: they commit with it), in `ms`. */
  onStepDone?(step: PlanStep, ms: number): void;
  onWarning?(database: string, message: string): void;
  /** Progress of long steps (index builds): step-started, progress in blocks, step-finished. */
  onProgress?: ProgressSink;
}

export interface ApplyOutcome {
  /** Databases whose changes are committed, in order. */
  readonly committed: readonly string[];
}

const reversePhase = (a: PlanStep, b: PlanStep) => PHASES.indexOf(b.kind) - PHASES.indexOf(a.kind);

/** CREATE INDEX [CONCURRENTLY]: not cut off by the statement timeout. */
const isIndexBuild = (sql: string): boolean => /^\s*CREATE\s+(UNIQUE\s+)?INDEX\b/i.test(sql);

/** An index build, watched from a second connection when someone listens for progress. */
async function buildIndex(db: Db, step: PlanStep, sink: ProgressSink | undefined, build: () => Promise<void>): Promise<void> {
  const target = targetOf(db);
  const pid = sink && target ? await backendPid(db) : undefined;
  if (!sink || !target || pid === undefined) return build();
  const label = `building ${step.kind === 'index' ? step.object : `an index of ${step.object}`} (${step.database})`;
  // `index:pod_b:vecs.ix_…`: the step's object key (`pod_b/index:vecs.ix_…`) without its database and kind.
  const key = step.id.slice(step.id.indexOf('/') + 1).replace(/^index:/, '');
  await withIndexProgress(target, pid, { id: `index:${step.database}:${key}`, label }, sink, build);
}

/**
 * A step's statements inside its database's transaction, consecutive plain ones joined into one message (one round
 * trip; the simple query protocol runs them in order and stops at the first error, which still names the step).
 * Index builds and statements that carry a secret stay on their own: they run their own way.
 */
function batched(statements: readonly string[]): string[] {
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => {
    // On a line of its own: a statement may end with a -- comment.
    if (run.length > 0) out.push(run.join('\n;\n'));
    run = [];
  };
  for (const sql of statements) {
    if (isIndexBuild(sql) || hasSecret(sql)) {
      flush();
      out.push(sql);
    } else run.push(sql.replace(/;\s*$/, ''));
  }
  flush();
  return out;
}

/**
 * An index build's session settings (`SET maintenance_work_mem …` before it, `RESET …` after: src/plan/index-build.ts)
 * go back to the session's when a statement of its step failed outside a transaction, where no ROLLBACK undoes them.
 * A connection that no longer answers is closed instead, and its settings end with its session.
 */
async function resetAfterFailure(db: Db, statements: readonly string[], failed: string): Promise<void> {
  if (!usable(db)) return;
  for (const sql of statements.slice(statements.indexOf(failed) + 1)) {
    if (/^RESET [a-z_]+$/.test(sql)) await db.query(sql).catch(() => undefined);
  }
}

/** How far one database got: what the failure message must say is left. */
interface Progress {
  txCommitted: boolean;
  /** COMMIT was sent and no answer came back: whether it committed is unknown. */
  committing?: boolean;
  /** Steps outside the transaction that finished. */
  outsideDone: number;
  /** The step outside the transaction that failed, and the statement of it that did. */
  failedOutside?: { readonly step: PlanStep; readonly sql: string };
}

/** A failed statement of a step, as the user reads it: what was running, on which database, and why it failed. */
class StepFailure extends VecscaleError {
  constructor(
    readonly step: PlanStep,
    readonly sql: string,
    e: VecscaleError,
  ) {
    super(e.code, e.message, { meta: { ...e.meta }, ...(e.hint ? { hint: e.hint } : {}), cause: e.cause });
  }
}

async function applyDatabase(
  db: Db,
  plan: DatabasePlan,
  secrets: ReadonlyMap<string, string>,
  events: ApplyEvents,
  progress: Progress,
): Promise<void> {
  const inTx = plan.steps.filter((s) => s.transactional);
  const outside = plan.steps.filter((s) => !s.transactional);
  let warned = false;
  const run = async (step: PlanStep, statements: readonly string[], inTransaction: boolean) => {
    const n = plan.steps.indexOf(step) + 1;
    for (const sql of inTransaction ? batched(statements) : statements) {
      try {
        if (isIndexBuild(sql)) {
          await buildIndex(db, step, events.onProgress, () => queryUnbounded(db, sql, { local: inTransaction }));
          continue;
        }
        if (!hasSecret(sql)) {
          await db.query(sql);
          continue;
        }
        const refused = await runSecretStatement(db, sql, secrets);
        if (refused.length > 0 && !warned) {
          warned = true;
          events.onWarning?.(
            plan.database,
            `this role may not set ${refused.join(', ')}: a server configured to log such statements records the wrapper password`,
          );
        }
      } catch (err) {
        // Inside the transaction the ROLLBACK undoes a build's SETs; outside, its RESETs run anyway.
        if (!inTransaction) await resetAfterFailure(db, statements, sql);
        const e = err as { message?: string; code?: string };
        const silent = silentOr(db, `running step ${n} of ${plan.steps.length} (${step.object})`, err);
        throw new StepFailure(
          step,
          sql,
          silent ??
            new VecscaleError('database', `${step.object}: ${scrub(e.message ?? String(err), secrets.values())}`, {
              meta: { database: plan.database, step: step.id, sqlstate: e.code ?? null },
              cause: err,
            }),
        );
      }
    }
  };
  /** A statement of vecscale's own (BEGIN, COMMIT), its failure named like a step's. */
  const own = async (sql: string, doing: string) => {
    try {
      await db.query(sql);
    } catch (err) {
      throw silentOr(db, doing, err) ?? err;
    }
  };
  if (inTx.length > 0) {
    await own('BEGIN', 'starting its transaction');
    try {
      // Literals are quoted the standard way (quote.ts): make sure the server reads them that way.
      await own('SET LOCAL standard_conforming_strings = on', 'starting its transaction');
      // A step starts with its drop (replaced and dropped objects go first, in reverse phase order).
      const started = new Map<PlanStep, number>();
      const start = (step: PlanStep) => {
        if (started.has(step)) return;
        started.set(step, performance.now());
        events.onStep?.(step);
      };
      for (const step of [...inTx].sort(reversePhase)) {
        if (step.drop.length === 0) continue;
        start(step);
        await run(step, step.drop, true);
      }
      for (const step of inTx) {
        start(step);
        await run(step, step.sql, true);
        events.onStepDone?.(step, Math.round(performance.now() - started.get(step)!));
      }
      progress.committing = true;
      await own('COMMIT', 'committing its transaction');
      progress.committing = false;
      progress.txCommitted = true;
    } catch (err) {
      // A connection that stopped answering is closed: the server rolls back when it notices.
      if (usable(db)) await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  for (const step of outside) {
    events.onStep?.(step);
    const started = performance.now();
    try {
      await run(step, step.sql, false);
    } catch (err) {
      if (err instanceof StepFailure) progress.failedOutside = { step, sql: err.sql };
      throw err;
    }
    progress.outsideDone++;
    events.onStepDone?.(step, Math.round(performance.now() - started));
  }
}

/** What a database that failed has kept, for the message: `failed and was rolled back`, or what is left. */
async function failureStory(db: Db, dbPlan: DatabasePlan, progress: Progress, cause: string): Promise<string> {
  const name = dbPlan.database;
  if (progress.committing && !usable(db)) {
    return `${name} stopped answering after COMMIT was sent; whether its transaction committed is unknown (the next plan shows it): ${cause}`;
  }
  if (!progress.failedOutside) {
    return usable(db) ? `${name} failed and was rolled back: ${cause}` : `${name} failed; its transaction did not commit: ${cause}`;
  }
  const outsideTotal = dbPlan.steps.filter((s) => !s.transactional).length;
  const before = [
    ...(progress.txCommitted ? ['its transaction committed'] : []),
    ...(progress.outsideDone > 0 ? [`${progress.outsideDone} of its ${outsideTotal} steps outside the transaction finished`] : []),
  ];
  const left = await describeLeftover(db, progress.failedOutside.step.sql, progress.failedOutside.sql);
  return `${name} failed ${before.length > 0 ? `after ${before.join(' and ')}` : 'at a step outside any transaction (nothing of it is rolled back)'}: ${cause}${left ? `; ${left}` : ''}`;
}

/**
 * Executes the plan. Throws `database` (nothing committed anywhere) or `partial_apply` (earlier databases
 * committed; the message names them and the one that failed).
 */
export async function executePlan(
  plan: Plan,
  dbs: ReadonlyMap<string, Db>,
  secrets: ReadonlyMap<string, string>,
  events: ApplyEvents = {},
): Promise<ApplyOutcome> {
  const committed: string[] = [];
  const todo = plan.databases.filter((d) => d.steps.length > 0);
  const connection = (dbPlan: DatabasePlan): Db => {
    const db = dbs.get(dbPlan.database);
    if (!db) throw new Error(`no connection for ${dbPlan.database}`);
    return db;
  };
  const failures: Array<{ dbPlan: DatabasePlan; err: unknown; progress: Progress }> = [];
  const started = new Set<string>();
  const runOne = async (dbPlan: DatabasePlan): Promise<void> => {
    started.add(dbPlan.database);
    const progress: Progress = { txCommitted: false, outsideDone: 0 };
    try {
      const db = connection(dbPlan);
      events.onDatabaseStart?.(dbPlan);
      await applyDatabase(db, dbPlan, secrets, events, progress);
      committed.push(dbPlan.database);
    } catch (err) {
      // A step outside the transaction (CREATE INDEX CONCURRENTLY) fails after the database's transaction committed.
      if (progress.txCommitted) committed.push(`${dbPlan.database} (transaction only)`);
      else if (progress.outsideDone > 0) committed.push(`${dbPlan.database} (${progress.outsideDone} steps outside the transaction)`);
      failures.push({ dbPlan, err, progress });
    }
  };
  // Secondaries at once, one cluster's one after another (roles are cluster-wide: the first database of a cluster
  // creates the wrapper role the others grant to); none starts after one failed; the primary after all of them.
  // Every run is awaited (allSettled, and runOne never throws): nothing is left running when this returns.
  const secondaries = todo.filter((d) => d.role !== 'primary');
  await Promise.allSettled(
    clusters(secondaries, dbs).map(async (group) => {
      for (const dbPlan of group) {
        if (failures.length > 0) return;
        await runOne(dbPlan);
      }
    }),
  );
  const primary = todo.find((d) => d.role === 'primary');
  if (failures.length === 0 && primary) await runOne(primary);
  if (failures.length === 0) return { committed };
  const order = (entry: string) => todo.findIndex((d) => entry === d.database || entry.startsWith(`${d.database} (`));
  committed.sort((a, b) => order(a) - order(b));
  failures.sort((a, b) => order(a.dbPlan.database) - order(b.dbPlan.database));
  // Every database that failed is named with what it kept (two pods can fail at once).
  const stories = await Promise.all(
    failures.map(({ dbPlan, err, progress }) => failureStory(connection(dbPlan), dbPlan, progress, err instanceof VecscaleError ? err.message : String(err))),
  );
  const { dbPlan, err } = failures[0]!;
  const failedOn = stories.join('; ');
  const failed = failures.map((f) => f.dbPlan.database);
  const rest = todo.filter((d) => !started.has(d.database)).map((d) => d.database);
  const hint = err instanceof VecscaleError ? err.hint : undefined;
  if (committed.length === 0) {
    throw new VecscaleError('database', failedOn, {
      meta: { failed: dbPlan.database, failedAll: failed, committed: [], notAttempted: rest },
      ...(hint ? { hint } : {}),
      cause: err,
    });
  }
  throw new VecscaleError(
    'partial_apply',
    `partial apply: committed ${committed.join(', ')}; ${failedOn}${rest.length ? `; not attempted: ${rest.join(', ')}` : ''}`,
    {
      meta: { failed: dbPlan.database, failedAll: failed, committed, notAttempted: rest },
      // A wrapper password set on a secondary's role but not yet in the primary's mappings is invisible to the next plan.
      hint: plan.databases.some((d) => d.steps.some((st) => st.kind === 'role' && st.action === 'alter' && st.sql.some(hasSecret)))
        ? 'fix the cause and run apply --rotate-fdw-passwords: the wrapper password was set on a secondary but not on the primary'
        : 'fix the cause and run apply again: it converges from where it stopped',
      cause: err,
    },
  );
}

/** Database plans grouped by the cluster (host and port) they are on, in plan order within and across groups. */
function clusters(plans: readonly DatabasePlan[], dbs: ReadonlyMap<string, Db>): DatabasePlan[][] {
  const groups = new Map<string, DatabasePlan[]>();
  for (const p of plans) {
    const t = targetOf(dbs.get(p.database)!);
    const key = t ? clusterOf(t.url) : p.database;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.values()];
}
