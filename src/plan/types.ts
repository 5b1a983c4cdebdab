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

export interface DatabasePlan {
  readonly database: string;
  readonly role: 'primary' | 'secondary';
  /** Redacted: `postgres://user@host:port/db`. */
  readonly url: string;
  readonly steps: readonly PlanStep[];
}

export interface Plan {
  readonly formatVersion: 1;
  /** In apply order: secondaries first (topology order), then the primary. */
  readonly databases: readonly DatabasePlan[];
  readonly blockers: readonly Blocker[];
  readonly notes: readonly Note[];
  readonly summary: { readonly create: number; readonly change: number; readonly replace: number; readonly drop: number };
}

/** The object key a step acts on (its id without the database): how live state and facts are looked up for it. */
export const stepKey = (s: PlanStep): string => s.id.slice(s.database.length + 1);

export const hasChanges = (plan: Plan): boolean => plan.databases.some((d) => d.steps.length > 0);
