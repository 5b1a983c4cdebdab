/**
 * Saved plans (`plan --out plan.json`, `apply plan.json`). A saved plan is applied only to the state it was made
 * against: it records a fingerprint of the live catalog state of every object it touches or depends on, and a hash of
 * the normalised topology. Applying re-introspects; any difference refuses the plan (exit 5) and is shown.
 * Pure; reading and writing the file is the CLI's.
 */
import { createHash } from 'node:crypto';
import type { Topology } from '../config/types.js';
import { stateOf } from '../diff.js';
import { describeObject, type LiveDatabase } from '../model/state.js';
import { redactUrl } from '../util/url.js';
import type { PlanOptions } from './planner.js';
import { type Plan, stepKey } from './types.js';

export const SAVED_PLAN_FORMAT = 1;

export interface SavedPlan {
  /** Marks the file as a vecscale plan, and its format. */
  readonly vecscalePlan: typeof SAVED_PLAN_FORMAT;
  /** The topology file, relative to the plan file's directory. */
  readonly topologyFile: string;
  /** sha256 of the normalised topology (secrets left out). */
  readonly topologyHash: string;
  readonly options: { readonly allowDestructive: readonly string[] | 'all' | null; readonly destroy: boolean; readonly rotateFdwPasswords: boolean };
  /** Per database, per object key: sha256 of its live state when planned, or 'absent'. */
  readonly fingerprints: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The plan as made; SQL carries secret placeholders, never values. */
  readonly plan: Plan;
}

const sha = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/**
 * The topology as it decides a plan: no file path, no secret values (a URL keeps user@host:port/db and its
 * sslmode; a configured wrapper password counts as configured, not by value).
 */
export function topologyHash(t: Topology): string {
  const url = (u: string) => {
    const ssl = new URL(u).searchParams.get('sslmode');
    return `${redactUrl(u)}${ssl ? `?sslmode=${ssl}` : ''}`;
  };
  return sha(
    JSON.stringify({
      version: t.version,
      primary: url(t.primary.url),
      secondaries: t.secondaries.map((s) => ({ name: s.name, url: url(s.url), fdwUser: s.fdwUser, fdwPassword: s.fdwPassword === undefined ? 'generated' : 'configured' })),
      collections: t.collections,
      extensionSchema: t.extensionSchema ?? null,
      apiRoles: t.apiRoles,
    }),
  );
}

/** Fingerprints of every object in scope of the plan: all the live objects it read, and those it creates. */
export function fingerprints(plan: Plan, live: ReadonlyMap<string, LiveDatabase>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const db of plan.databases) {
    const have = live.get(db.database);
    const keys = new Set([...(have?.state.objects.keys() ?? []), ...db.steps.map(stepKey)]);
    const entries = [...keys].sort().map((k) => {
      const o = have?.state.objects.get(k);
      return [k, o && have ? sha(stateOf(o, have.facts)) : 'absent'] as const;
    });
    out[db.database] = Object.fromEntries(entries);
  }
  return out;
}

export function savePlan(plan: Plan, live: ReadonlyMap<string, LiveDatabase>, topology: Topology, topologyFile: string, opts: PlanOptions): SavedPlan {
  return {
    vecscalePlan: SAVED_PLAN_FORMAT,
    topologyFile,
    topologyHash: topologyHash(topology),
    options: { allowDestructive: opts.allowDestructive ?? null, destroy: opts.destroy ?? false, rotateFdwPasswords: opts.rotateFdwPasswords ?? false },
    fingerprints: fingerprints(plan, live),
    plan,
  };
}

/** What changed since a plan was saved: one line per difference, empty when it may be applied. */
export function staleness(saved: SavedPlan, topology: Topology, live: ReadonlyMap<string, LiveDatabase>, fresh: Plan): string[] {
  const out: string[] = [];
  if (saved.topologyHash !== topologyHash(topology)) out.push('the topology file changed since the plan was made');
  const now = fingerprints(fresh, live);
  for (const [database, then] of Object.entries(saved.fingerprints)) {
    const current = now[database] ?? {};
    const objects = live.get(database)?.state.objects;
    const name = (k: string) => {
      const o = objects?.get(k);
      return o ? describeObject(o) : k.replace(/^[a-z_]+:/, (m) => `${m.slice(0, -1).replace('_', ' ')} `);
    };
    for (const k of [...new Set([...Object.keys(then), ...Object.keys(current)])].sort()) {
      const a = then[k] ?? 'absent';
      const b = current[k] ?? 'absent';
      if (a === b) continue;
      const what = a === 'absent' ? 'appeared' : b === 'absent' ? 'was removed' : 'changed';
      out.push(`${database}: ${name(k)} ${what} since the plan was made`);
    }
  }
  // Last line of defence: what the same inputs plan now (e.g. a changed password, which no fingerprint records).
  if (out.length === 0 && JSON.stringify(stepsOf(fresh)) !== JSON.stringify(stepsOf(saved.plan))) {
    // An index build's raised settings follow the table's row estimate: name the build whose SETs moved.
    const sets = (p: Plan) => new Map(p.databases.flatMap((d) => d.steps.map((st) => [st.id, st.sql.filter((x) => /^SET /.test(x)).join('; ')] as const)));
    const was = sets(saved.plan);
    const moved = [...sets(fresh)].filter(([id, now]) => was.has(id) && was.get(id) !== now);
    out.push(
      moved.length > 0
        ? `the index build settings moved with the tables' row estimates since the plan was made (${moved.map(([id, now]) => `${id}: ${was.get(id) || 'none'} → ${now || 'none'}`).join('; ')}); pin them with index.build to keep saved plans valid`
        : 'planning again now gives other steps (a secret or a setting the fingerprints do not record changed)',
    );
  }
  return out;
}

const stepsOf = (p: Plan) => ({
  steps: p.databases.map((d) => [d.database, d.steps.map((s) => [s.id, s.action, s.drop, s.sql])]),
  blockers: p.blockers.map((b) => [b.database, b.object]),
});
