/**
 * Runs a plan: secondaries first, then the primary; each database's transactional steps in one transaction
 * (drops of replaced objects first, in reverse phase order, then creates in phase order), then its
 * non-transactional steps (CREATE INDEX CONCURRENTLY) one by one. A failure rolls back that database and stops.
 */
import type { Db } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { PHASES } from '../plan/planner.js';
import type { DatabasePlan, Plan, PlanStep } from '../plan/types.js';
import { hasSecret } from '../sql/quote.js';
import { runSecretStatement } from './secrets.js';
import { scrub } from '../util/url.js';

export interface ApplyEvents {
  onDatabaseStart?(db: DatabasePlan): void;
  onStep?(step: PlanStep): void;
  onWarning?(database: string, message: string): void;
}

export interface ApplyOutcome {
  /** Databases whose changes are committed, in order. */
  readonly committed: readonly string[];
}

const reversePhase = (a: PlanStep, b: PlanStep) => PHASES.indexOf(b.kind) - PHASES.indexOf(a.kind);

async function applyDatabase(
  db: Db,
  plan: DatabasePlan,
  secrets: ReadonlyMap<string, string>,
  events: ApplyEvents,
  onCommit: () => void,
): Promise<void> {
  const inTx = plan.steps.filter((s) => s.transactional);
  const outside = plan.steps.filter((s) => !s.transactional);
  let warned = false;
  const run = async (step: PlanStep, statements: readonly string[]) => {
    for (const sql of statements) {
      try {
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
        const e = err as { message?: string; code?: string };
        throw new VecscaleError('database', `${step.object}: ${scrub(e.message ?? String(err), secrets.values())}`, {
          meta: { database: plan.database, step: step.id, sqlstate: e.code ?? null },
          cause: err,
        });
      }
    }
  };
  if (inTx.length > 0) {
    await db.query('BEGIN');
    try {
      // Literals are quoted the standard way (quote.ts): make sure the server reads them that way.
      await db.query("SET LOCAL standard_conforming_strings = on");
      for (const step of [...inTx].sort(reversePhase)) if (step.drop.length > 0) await run(step, step.drop);
      for (const step of inTx) {
        events.onStep?.(step);
        await run(step, step.sql);
      }
      await db.query('COMMIT');
      onCommit();
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  for (const step of outside) {
    events.onStep?.(step);
    await run(step, step.sql);
  }
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
  for (const dbPlan of todo) {
    const db = dbs.get(dbPlan.database);
    if (!db) throw new Error(`no connection for ${dbPlan.database}`);
    events.onDatabaseStart?.(dbPlan);
    let txCommitted = false;
    try {
      await applyDatabase(db, dbPlan, secrets, events, () => (txCommitted = true));
      committed.push(dbPlan.database);
    } catch (err) {
      const cause = err instanceof VecscaleError ? err.message : String(err);
      const rest = todo.slice(todo.indexOf(dbPlan) + 1).map((d) => d.database);
      // A step outside the transaction (CREATE INDEX CONCURRENTLY) fails after the database's transaction committed.
      if (txCommitted) committed.push(`${dbPlan.database} (transaction only)`);
      const failedOn = txCommitted
        ? `${dbPlan.database} failed after its transaction committed: ${cause}`
        : `${dbPlan.database} failed and was rolled back: ${cause}`;
      if (committed.length === 0) {
        throw new VecscaleError('database', failedOn, {
          meta: { failed: dbPlan.database, committed: [], notAttempted: rest },
          cause: err,
        });
      }
      throw new VecscaleError(
        'partial_apply',
        `partial apply: committed ${committed.join(', ')}; ${failedOn}${rest.length ? `; not attempted: ${rest.join(', ')}` : ''}`,
        {
          meta: { failed: dbPlan.database, committed, notAttempted: rest },
          // A wrapper password set on a secondary's role but not yet in the primary's mappings is invisible to the next plan.
          hint: plan.databases.some((d) => d.steps.some((st) => st.kind === 'role' && st.action === 'alter' && st.sql.some(hasSecret)))
            ? 'fix the cause and run apply --rotate-fdw-passwords: the wrapper password was set on a secondary but not on the primary'
            : 'fix the cause and run apply again: it converges from where it stopped',
          cause: err,
        },
      );
    }
  }
  return { committed };
}
