/** A plan is data: reviewed in PRs, rendered for humans, serialised as JSON, executed by the applier. */
import type { ObjectKind } from '../model/state.js';

export type Risk = 'safe' | 'disruptive' | 'destructive';

/** + create, ~ alter or adopt, -/+ replace, - drop. */
export type Action = 'create' | 'alter' | 'adopt' | 'replace' | 'drop';

export interface PlanStep {
  /** Stable id: `<database>/<object key>`. */
  readonly id: string;
  readonly database: string;
  readonly action: Action;
  readonly kind: ObjectKind;
  /** Human name, e.g. `view public.docs`. */
  readonly object: string;
  /** Statements that remove the old object of a replace, or the object of a drop: run first, in reverse phase order. */
  readonly drop: readonly string[];
  /** Statements that create or change the object, in phase order. Secrets appear only as placeholders. */
  readonly sql: readonly string[];
  readonly reason: string;
  readonly risk: Risk;
  /** The collection whose rows a destructive step loses (what --allow-destructive names). */
  readonly collection?: string;
  /** How many rows a destructive step loses, counted when the plan was made. */
  readonly rows?: number;
  /** false: runs after the database's transaction commits (CREATE INDEX CONCURRENTLY). */
  readonly transactional: boolean;
}

/** Something the plan will not do; apply refuses (exit 3) while any exists. */
export interface Blocker {
  readonly database: string;
  readonly object: string;
  readonly reason: string;
}

/** Informational: objects left alone, warnings. No effect on exit codes. */
export interface Note {
  readonly database: string;
  readonly object: string;
  readonly message: string;
}

/** One table of a layout, as a move names it: `pod_a: vecs.docs` (partition bounds in `modulus`/`remainder`). */
export interface MovePart {
  readonly secondary: string;
  readonly table: string;
  readonly modulus?: number;
  readonly remainder?: number;
}

/** A stream of rows of a move: logical replication across databases, a trigger and a locked copy inside one. */
export interface MoveFlow {
  readonly source: MovePart;
  readonly target: MovePart;
  readonly method: 'replication' | 'trigger';
  /** A split: only the source rows whose hash(id) falls on the target's side. */
  readonly filter?: { readonly modulus: number; readonly remainder: number };
}

/** Something an interrupted move left: removed by the next apply. */
export interface MoveLeftover {
  readonly database: string;
  readonly kind: 'replication slot' | 'publication' | 'subscription' | 'function' | 'table';
  readonly name: string;
  readonly detail?: string;
}

/**
 * A collection that changes placement while it holds rows (src/move/). `move`: rows go from `from` (where the
 * primary's wrappers point now) to `to` (the topology's layout). `finish`: a move whose cutover committed, its old
 * tables still to retire. `cleanup`: only leftovers to remove.
 */
export interface MovePlan {
  readonly collection: string;
  readonly kind: 'move' | 'finish' | 'cleanup';
  readonly from: readonly MovePart[];
  readonly to: readonly MovePart[];
  readonly flows: readonly MoveFlow[];
  /** What apply does, in order, each with its risk: the plan shows them as steps. */
  readonly steps: readonly { readonly database: string; readonly description: string; readonly risk: Risk }[];
  readonly leftovers: readonly MoveLeftover[];
  /** How long writes through the primary pause, and why. */
  readonly writePause: string;
}

export interface DatabasePlan {
  readonly database: string;
  readonly role: 'primary' | 'secondary';
  /** Redacted: `postgres://user@host:port/db`. */
  readonly url: string;
  readonly steps: readonly PlanStep[];
}

/** The plan document's format_version, "MAJOR.MINOR": within a major version documents only gain fields (src/plan/schema.ts). */
export const PLAN_FORMAT_VERSION = '1.0';

export interface Plan {
  readonly formatVersion: 1;
  /** In apply order: secondaries first (topology order), then the primary. */
  readonly databases: readonly DatabasePlan[];
  readonly blockers: readonly Blocker[];
  readonly notes: readonly Note[];
  /** Collections whose rows move, in topology order (absent in plans saved before moves existed). */
  readonly moves?: readonly MovePlan[];
  readonly summary: { readonly create: number; readonly change: number; readonly replace: number; readonly drop: number };
}

/** The object key a step acts on (its id without the database): how live state and facts are looked up for it. */
export const stepKey = (s: PlanStep): string => s.id.slice(s.database.length + 1);

export const hasChanges = (plan: Plan): boolean => plan.databases.some((d) => d.steps.length > 0) || (plan.moves?.length ?? 0) > 0;
