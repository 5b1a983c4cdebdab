/**
 * Runs a database's planned steps inside a transaction the move already holds open (the cutover's, with its locks):
 * drops of replaced objects first, in reverse phase order, then the steps in phase order — the order
 * src/apply/execute.ts uses. Statements that carry a password go through the same secret path.
 */
import type { Db } from '../db/connect.js';
import { runSecretStatement } from '../apply/secrets.js';
import { VecscaleError } from '../errors.js';
import { PHASES } from '../plan/planner.js';
import type { DatabasePlan } from '../plan/types.js';
import { hasSecret } from '../sql/quote.js';
import { scrub } from '../util/url.js';

export async function runStepsInTransaction(db: Db, plan: DatabasePlan, secrets: ReadonlyMap<string, string>): Promise<void> {
  const steps = plan.steps.filter((s) => s.transactional);
  const reverse = [...steps].sort((a, b) => PHASES.indexOf(b.kind) - PHASES.indexOf(a.kind));
  const run = async (object: string, sql: string) => {
    try {
      if (hasSecret(sql)) await runSecretStatement(db, sql, secrets);
      else await db.query(sql);
    } catch (err) {
      const e = err as { message?: string; code?: string };
      throw new VecscaleError('database', `${plan.database}: ${object}: ${scrub(e.message ?? String(err), secrets.values())}`, {
        meta: { database: plan.database, sqlstate: e.code ?? null },
        cause: err,
      });
    }
  };
  for (const s of reverse) for (const sql of s.drop) await run(s.object, sql);
  for (const s of steps) for (const sql of s.sql) await run(s.object, sql);
}
