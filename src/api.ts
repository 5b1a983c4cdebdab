/**
 * The library: `plan()`, `apply()` and `destroy()` over a validated topology. The CLI is a thin layer over these;
 * tests call them directly too.
 */
import { executePlan, type ApplyEvents } from './apply/execute.js';
import { acquireLocks, type LockTarget } from './apply/lock.js';
import type { Topology } from './config/types.js';
import { closeAll, connectAll, type Db, describeTarget, type Target } from './db/connect.js';
import { desiredSecrets } from './desired/index.js';
import { VecscaleError } from './errors.js';
import { introspectAll } from './introspect/index.js';
import { type LiveDatabase } from './model/state.js';
import { answered, consulting, probeRows, questionsFor } from './introspect/rows.js';
import { buildPlan, type PlanOptions } from './plan/planner.js';
import { type MoveReport, runMoves } from './move/run.js';
import { savePlan, staleness, type SavedPlan } from './plan/saved.js';
import { hasChanges, type Plan, stepKey } from './plan/types.js';
import { redactUrl } from './util/url.js';

export interface RunOptions {
  /** Per-connection timeout (default 10 s). */
  readonly connectTimeoutMs?: number;
  /**
   * statement_timeout of vecscale's own statements (index builds excepted), and with a second's grace how long any
   * of them may go unanswered; 0: none (default 30 s; see src/db/connect.ts).
   */
  readonly statementTimeoutMs?: number;
}

export const targetsOf = (t: Topology): Target[] => [
  { database: 'primary', url: t.primary.url },
  ...t.secondaries.map((s) => ({ database: s.name, url: s.url })),
];

async function withConnections<T>(
  topology: Topology,
  opts: RunOptions & { readOnly?: boolean; command: string },
  fn: (dbs: Map<string, Db>) => Promise<T>,
): Promise<T> {
  const dbs = await connectAll(targetsOf(topology), {
    timeoutMs: opts.connectTimeoutMs,
    readOnly: opts.readOnly,
    applicationName: `vecscale ${opts.command}`,
    ...(opts.statementTimeoutMs !== undefined ? { statementTimeoutMs: opts.statementTimeoutMs } : {}),
    // plan, apply and destroy hold session locks or session settings: no transaction-mode pooler in between.
    requireSession: true,
  });
  try {
    return await fn(dbs);
  } finally {
    await closeAll(dbs);
  }
}

/** How many times a plan is made again with the answers to what it asked (each round asks only new questions). */
const PROBE_ROUNDS = 4;

/**
 * Plans over `live`; then asks each database, in one statement, about the tables whose rows the plan's decisions
 * looked up (src/introspect/rows.ts) and those its destructive steps would drop (counted, for the plan to say how
 * many rows), and plans again with the answers, until nothing new is asked. A converged plan asks nothing.
 */
async function planWithRows(topology: Topology, dbs: ReadonlyMap<string, Db>, first: Map<string, LiveDatabase>, opts: PlanOptions): Promise<{ plan: Plan; live: Map<string, LiveDatabase> }> {
  let live = first;
  for (let round = 1; ; round++) {
    const asked = new Map([...live.keys()].map((name) => [name, { exists: new Set<string>(), count: new Set<string>() }]));
    const watched = new Map([...live].map(([name, l]) => [name, { ...l, facts: consulting(l.facts, asked.get(name)!) }]));
    const p = buildPlan(topology, watched, opts);
    const dropped = new Map<string, string[]>();
    for (const step of p.databases.flatMap((d) => d.steps)) {
      if (step.risk === 'destructive' && step.kind === 'table') dropped.set(step.database, [...(dropped.get(step.database) ?? []), stepKey(step)]);
    }
    const questions = [...live].map(([name, l]) => [name, questionsFor(asked.get(name)!, dropped.get(name) ?? [], l.facts)] as const).filter(([, q]) => q.length > 0);
    if (questions.length === 0 || round === PROBE_ROUNDS) return { plan: p, live };
    const answers = await Promise.all(questions.map(async ([name, q]) => [name, q, await probeRows(dbs.get(name)!, q)] as const));
    live = new Map(live);
    for (const [name, q, a] of answers) live.set(name, answered(live.get(name)!, q, a));
  }
}

/** Introspects and plans (./planWithRows). */
async function planOn(topology: Topology, dbs: ReadonlyMap<string, Db>, opts: PlanOptions & RunOptions): Promise<{ plan: Plan; live: Map<string, LiveDatabase> }> {
  // Standbys: read-only sessions, bounded like every connection (a silent one is a note, not a hang).
  const live = await introspectAll(topology, dbs, { timeoutMs: opts.connectTimeoutMs, ...(opts.statementTimeoutMs !== undefined ? { statementTimeoutMs: opts.statementTimeoutMs } : {}) });
  return planWithRows(topology, dbs, live, opts);
}

export interface PlanRunOptions extends RunOptions, PlanOptions {
  /** Also return the saved form of the plan (`plan --out`), its topology file named as given. */
  readonly save?: { readonly topologyFile: string };
}

/** Connects read-only, introspects every database and returns the plan. Changes nothing. */
export async function plan(topology: Topology, opts: PlanRunOptions = {}): Promise<Plan> {
  return (await planAndSave(topology, opts)).plan;
}

/** The plan, and its saved form when `opts.save` asks for one. */
export function planAndSave(topology: Topology, opts: PlanRunOptions = {}): Promise<{ plan: Plan; saved?: SavedPlan }> {
  return withConnections(topology, { ...opts, readOnly: true, command: 'plan' }, async (dbs) => {
    const { plan: p, live } = await planOn(topology, dbs, opts);
    return opts.save ? { plan: p, saved: savePlan(p, live, topology, opts.save.topologyFile, opts) } : { plan: p };
  });
}

export interface ApplyOptions extends RunOptions, PlanOptions {
  /** Called with the plan when it has changes and no blockers; resolve true to go ahead. Not asked for a saved plan. */
  readonly approve: (plan: Plan) => Promise<boolean>;
  /** Called once the plan is known, before approval (to show it). */
  readonly onPlan?: (plan: Plan) => void;
  readonly events?: ApplyEvents;
  /** How long to wait for another vecscale run's locks (default 30 s). */
  readonly lockTimeoutMs?: number;
  /** Called while waiting for a lock another run holds. */
  readonly onLockWait?: (database: string) => void;
  /** Apply this saved plan instead of planning: refused (stale_plan) unless the live state and topology still match. */
  readonly saved?: SavedPlan;
}

export type ApplyResult =
  | { readonly status: 'no_changes'; readonly plan: Plan }
  | { readonly status: 'blocked'; readonly plan: Plan }
  | { readonly status: 'declined'; readonly plan: Plan }
  | { readonly status: 'applied'; readonly plan: Plan; readonly committed: readonly string[]; readonly moves?: readonly MoveReport[] };

/** Every database's lock, in one fixed order (by where it is), so overlapping runs cannot deadlock. */
function lockTargets(topology: Topology, dbs: ReadonlyMap<string, Db>): LockTarget[] {
  return targetsOf(topology).map((t) => ({
    database: t.database,
    db: dbs.get(t.database)!,
    label: describeTarget(t),
    order: redactUrl(t.url).replace(/^[a-z]+:\/\/[^@/]*@/, ''),
  }));
}

/**
 * Locks every database, then plans (so a run that waited plans against what the other run left), asks for
 * approval, and converges. Throws `lock`, `stale_plan`, `database` or `partial_apply`.
 */
export function apply(topology: Topology, opts: ApplyOptions): Promise<ApplyResult> {
  return withConnections(topology, { ...opts, command: opts.destroy ? 'destroy' : 'apply' }, async (dbs) => {
    await acquireLocks(lockTargets(topology, dbs), {
      timeoutMs: opts.lockTimeoutMs ?? 30_000,
      onWait: (t) => opts.onLockWait?.(t.database),
    });
    const planOpts: PlanOptions = opts.saved
      ? {
          allowDestructive: opts.saved.options.allowDestructive ?? undefined,
          destroy: opts.saved.options.destroy,
          rotateFdwPasswords: opts.saved.options.rotateFdwPasswords === true,
        }
      : opts;
    const { plan: fresh, live } = await planOn(topology, dbs, planOpts);
    let p = fresh;
    if (opts.saved) {
      const changed = staleness(opts.saved, topology, live, fresh);
      if (changed.length > 0) {
        throw new VecscaleError('stale_plan', `the saved plan no longer matches; nothing was applied:\n${changed.map((c) => `  - ${c}`).join('\n')}`, {
          hint: 'make a new plan (vecscale plan --out …) and review it',
          meta: { changes: changed },
        });
      }
      p = opts.saved.plan;
    }
    opts.onPlan?.(p);
    if (p.blockers.length > 0) return { status: 'blocked', plan: p };
    if (!hasChanges(p)) return { status: 'no_changes', plan: p };
    // A saved plan was reviewed when it was made, and is unchanged: no second question.
    if (!opts.saved && !(await opts.approve(p))) return { status: 'declined', plan: p };
    const secrets = desiredSecrets(topology);
    const { committed } = await executePlan(p, dbs, secrets, opts.events);
    if (!p.moves?.length) return { status: 'applied', plan: p, committed };
    const moves = await runMoves(p.moves, {
      topology,
      dbs,
      secrets,
      planOptions: planOpts,
      replan: async (t, o) => planWithRows(t, dbs, await introspectAll(t, dbs), o),
      execute: async (inner) => {
        await executePlan(inner, dbs, secrets, opts.events);
      },
      ...(opts.events?.onProgress ? { progress: opts.events.onProgress } : {}),
    });
    // What the moves leave to converge: the old layout's views and grants, servers no longer used.
    const { plan: rest } = await planOn(topology, dbs, planOpts);
    if (rest.blockers.length > 0) {
      throw new VecscaleError('partial_apply', `the moves finished, but converging the rest is blocked:\n${rest.blockers.map((b) => `  - ${b.database}: ${b.object}: ${b.reason}`).join('\n')}`, {
        hint: 'run plan to see the blockers; the moved collections are already on their new tables',
      });
    }
    if (hasChanges(rest)) await executePlan(rest, dbs, secrets, opts.events);
    return { status: 'applied', plan: p, committed, moves };
  });
}
