/**
 * The library: `plan()` and `apply()` over a validated topology. The CLI is a thin layer over these; tests call
 * them directly too.
 */
import { executePlan, type ApplyEvents } from './apply/execute.js';
import type { Topology } from './config/types.js';
import { closeAll, connectAll, type Db, type Target } from './db/connect.js';
import { desiredSecrets } from './desired.js';
import { introspectAll } from './introspect/index.js';
import { buildPlan } from './plan/planner.js';
import { hasChanges, type Plan } from './plan/types.js';

export interface RunOptions {
  /** Per-connection timeout (default 10 s). */
  readonly connectTimeoutMs?: number;
}

export const targetsOf = (t: Topology): Target[] => [
  { database: 'primary', url: t.primary.url },
  ...t.secondaries.map((s) => ({ database: s.name, url: s.url })),
];

async function withConnections<T>(
  topology: Topology,
  opts: RunOptions & { readOnly?: boolean },
  fn: (dbs: Map<string, Db>) => Promise<T>,
): Promise<T> {
  const dbs = await connectAll(targetsOf(topology), { timeoutMs: opts.connectTimeoutMs, readOnly: opts.readOnly });
  try {
    return await fn(dbs);
  } finally {
    await closeAll(dbs);
  }
}

/** Connects read-only, introspects every database and returns the plan. Changes nothing. */
export function plan(topology: Topology, opts: RunOptions = {}): Promise<Plan> {
  return withConnections(topology, { ...opts, readOnly: true }, async (dbs) => buildPlan(topology, await introspectAll(topology, dbs)));
}

export interface ApplyOptions extends RunOptions {
  /** Called with the plan when it has changes and no blockers; resolve true to go ahead. */
  readonly approve: (plan: Plan) => Promise<boolean>;
  /** Called once the plan is known, before approval (to show it). */
  readonly onPlan?: (plan: Plan) => void;
  readonly events?: ApplyEvents;
}

export type ApplyResult =
  | { readonly status: 'no_changes'; readonly plan: Plan }
  | { readonly status: 'blocked'; readonly plan: Plan }
  | { readonly status: 'declined'; readonly plan: Plan }
  | { readonly status: 'applied'; readonly plan: Plan; readonly committed: readonly string[] };

/** Plans, asks for approval, and converges every database. Throws `database`/`partial_apply` on failure. */
export function apply(topology: Topology, opts: ApplyOptions): Promise<ApplyResult> {
  return withConnections(topology, opts, async (dbs) => {
    const p = buildPlan(topology, await introspectAll(topology, dbs));
    opts.onPlan?.(p);
    if (p.blockers.length > 0) return { status: 'blocked', plan: p };
    if (!hasChanges(p)) return { status: 'no_changes', plan: p };
    if (!(await opts.approve(p))) return { status: 'declined', plan: p };
    const { committed } = await executePlan(p, dbs, desiredSecrets(topology), opts.events);
    return { status: 'applied', plan: p, committed };
  });
}
