/**
 * The pure planner: live state + topology → ordered, reviewable steps. Decides what each difference means
 * (create, in-place change, adopt, replace, or refuse) and in which fixed order statements run.
 */
import type { Topology } from '../config/types.js';
import { buildDesired, type DesiredContext } from '../desired.js';
import { diff } from '../diff.js';
import { VecscaleError } from '../errors.js';
import {
  API_SCHEMA,
  type DatabaseState,
  type DbObject,
  describeObject,
  HELPER_SCHEMA,
  type LiveDatabase,
  keys,
  type ObjectKind,
  VECS_SCHEMA,
} from '../model/state.js';
import { isTableOf, partsOf } from '../model/placement.js';
import { hasSecret, qualified } from '../sql/quote.js';
import { parsePgUrl, redactUrl } from '../util/url.js';
import { describeFields, purpose } from './reasons.js';
import { alterSql, appendsColumns, createSql, dropSql, markSql } from './sql.js';
import type { Action, Blocker, DatabasePlan, Note, Plan, PlanStep, Risk } from './types.js';

/** Creates run in this order, drops of replaced objects in the reverse. */
export const PHASES: readonly ObjectKind[] = [
  'schema',
  'extension',
  'table',
  'index',
  'server',
  'user_mapping',
  'foreign_table',
  // Functions before views: a view's write trigger needs its function (PL/pgSQL bodies are not checked at creation).
  'function',
  'view',
];

/** Where pgvector goes, and as whom the primary connects. Throws when the databases disagree on pgvector's schema. */
export function resolveContext(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): DesiredContext {
  const order = ['primary', ...topology.secondaries.map((s) => s.name)];
  const installed = order.flatMap((db) => {
    const schema = live.get(db)?.facts.vectorSchema;
    return schema ? [{ db, schema }] : [];
  });
  const wanted = topology.extensionSchema ?? installed[0]?.schema ?? API_SCHEMA;
  const elsewhere = installed.filter((i) => i.schema !== wanted);
  if (elsewhere.length > 0) {
    const where = installed.map((i) => `${i.db}: ${i.schema}`).join(', ');
    throw new VecscaleError(
      'precondition',
      `pgvector must sit in the same schema on the primary and every secondary (postgres_fdw ships its operators ` +
        `qualified with the primary's schema); ${topology.extensionSchema ? `extension_schema is ${wanted}, ` : ''}found ${where}`,
      { hint: 'move it with ALTER EXTENSION vector SET SCHEMA <schema>, or set extension_schema in the topology', meta: { installed } },
    );
  }
  const primary = live.get('primary');
  if (!primary) throw new Error('no live state for the primary');
  return { vectorSchema: wanted, dblinkSchema: primary.facts.dblinkSchema ?? HELPER_SCHEMA, primaryRole: primary.facts.currentUser };
}

/**
 * postgres_fdw and dblink insist on password authentication for roles that are not superusers: a secondary URL
 * without a password works for a superuser primary role only, and fails at query time otherwise.
 */
function passwordlessSecondaries(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): Note[] {
  if (live.get('primary')?.facts.superuser) return [];
  return topology.secondaries
    .filter((s) => parsePgUrl(s.url).password === undefined)
    .map((s) => ({
      database: 'primary',
      object: `user mapping for secondary ${s.name}`,
      message: `warning: ${s.name}'s URL has no password; the primary's role is not a superuser, so postgres_fdw and dblink will refuse to connect ("password is required") when queried`,
    }));
}

/** Live conditions the plan cannot fix and will not work around. */
function preconditionBlockers(live: ReadonlyMap<string, LiveDatabase>): Blocker[] {
  const primary = live.get('primary');
  if (!primary?.facts.dblinkPublic) return [];
  const schema = primary.facts.dblinkSchema ?? '?';
  return [
    {
      database: 'primary',
      object: `extension dblink (schema ${schema})`,
      reason:
        `PUBLIC may execute dblink's functions, and match_* keeps a dblink connection as its owner in the session: any role ` +
        `could then use it. Revoke it (REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} FROM PUBLIC, if only dblink lives there) ` +
        `or let vecscale own it (ALTER EXTENSION dblink SET SCHEMA ${HELPER_SCHEMA})`,
    },
  ];
}

/**
 * Rows of a collection in a table its layout no longer uses — it moved to another secondary, or its shards or
 * partitions changed — would be left behind, out of the primary's reach. vecscale does not move rows: it refuses.
 */
function layoutBlockers(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): Blocker[] {
  const blockers: Blocker[] = [];
  const prefix = keys.relation(VECS_SCHEMA, '');
  for (const c of topology.collections) {
    const wanted = new Set(partsOf(c).map((p) => `${p.secondary}/${p.table}`));
    const layout = c.shards === undefined ? `on ${c.secondary}` : `in ${c.partitions} partitions over ${c.shards.join(', ')}`;
    for (const s of topology.secondaries) {
      for (const key of [...(live.get(s.name)?.facts.nonEmpty ?? [])].sort()) {
        const table = key.slice(prefix.length);
        if (!key.startsWith(prefix) || !isTableOf(c.name, table) || wanted.has(`${s.name}/${table}`)) continue;
        blockers.push({
          database: s.name,
          object: `table ${VECS_SCHEMA}.${table}`,
          reason:
            `holds rows of collection ${c.name}, which the topology now places ${layout}: a move/rebalance is needed, and vecscale ` +
            `does not move rows (nothing is changed or lost). Copy the rows to the new layout first, or change the topology back`,
        });
      }
    }
  }
  return blockers;
}

interface Decision {
  action: Action;
  risk: Risk;
  reason: string;
  readonly desired: DbObject;
  readonly actual: DbObject | undefined;
}

function decide(
  actual: LiveDatabase,
  desired: DatabaseState,
  blockers: Blocker[],
  notes: Note[],
): Map<string, Decision> {
  const decisions = new Map<string, Decision>();
  const db = desired.database;
  for (const change of diff(actual.state, desired)) {
    if (change.op === 'create') {
      decisions.set(change.key, { action: 'create', risk: 'safe', reason: purpose(change.desired), desired: change.desired, actual: undefined });
      continue;
    }
    if (change.op === 'orphan') {
      notes.push({
        database: db,
        object: describeObject(change.actual),
        message: 'managed by vecscale but not in the topology: left in place (vecscale does not drop collections or wrappers yet)',
      });
      continue;
    }
    const { actual: a, desired: d, fields } = change;
    const what = describeFields(fields);
    const ownedElsewhere = !a.managed && d.managed && d.kind !== 'user_mapping';
    if (ownedElsewhere) {
      // A view's definition cannot be compared with ours (only its columns can): never adopt one.
      if (d.kind !== 'view' && Object.keys(fields).every((f) => f === 'managed')) {
        decisions.set(change.key, { action: 'adopt', risk: 'safe', reason: 'exists exactly as needed but unmarked: adopted as managed', desired: d, actual: a });
      } else {
        blockers.push({
          database: db,
          object: describeObject(a),
          reason: `exists, was not created by vecscale, and differs from the topology (${what}); vecscale does not replace what it does not own — rename or remove it, or change the topology`,
        });
      }
      continue;
    }
    switch (d.kind) {
      case 'server':
      case 'user_mapping':
        if ('wrapper' in fields) {
          blockers.push({ database: db, object: describeObject(a), reason: `uses another foreign-data wrapper (${what})` });
        } else {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
        }
        break;
      case 'table':
        if (actual.facts.nonEmpty.has(change.key)) {
          blockers.push({
            database: db,
            object: describeObject(a),
            reason: `holds rows, and ${what} needs the table recreated, losing them; change it back, or move the rows out first`,
          });
        } else {
          decisions.set(change.key, { action: 'replace', risk: 'disruptive', reason: `${what} (the table is empty)`, desired: d, actual: a });
        }
        break;
      case 'view':
      case 'foreign_table':
        // Columns only appended (a new metadata key) and/or grants: changed in place, so grants and dependants survive.
        if (
          a.kind === d.kind &&
          Object.keys(fields).every((f) => f === 'columns' || f === 'grantees' || f === 'writeTrigger') &&
          (!('columns' in fields) || appendsColumns(a.columns, d.columns))
        ) {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
          break;
        }
        decisions.set(change.key, { action: 'replace', risk: 'disruptive', reason: what || 'definition changed', desired: d, actual: a });
        break;
      case 'function':
        // Grants alone change in place; a new definition replaces the function (its return type may differ).
        decisions.set(change.key, Object.keys(fields).every((f) => f === 'grantees') || (d.kind === 'function' && d.replaceable && !('kind' in fields))
          ? { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a }
          : { action: 'replace', risk: 'safe', reason: what, desired: d, actual: a });
        break;
      default:
        decisions.set(change.key, { action: 'replace', risk: 'disruptive', reason: what || 'definition changed', desired: d, actual: a });
    }
  }
  cascade(desired, actual.state, decisions);
  return decisions;
}

/** Whatever is built on a replaced object is replaced with it (DROP … RESTRICT would refuse otherwise). */
function cascade(desired: DatabaseState, actual: DatabaseState, decisions: Map<string, Decision>): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const d of desired.objects.values()) {
      const a = actual.objects.get(d.key);
      const current = decisions.get(d.key);
      if (!a || current?.action === 'replace' || current?.action === 'create') continue;
      const cause = d.dependsOn?.find((k) => decisions.get(k)?.action === 'replace');
      if (!cause) continue;
      decisions.set(d.key, {
        action: 'replace',
        risk: 'disruptive',
        reason: `rebuilt with ${describeObject(desired.objects.get(cause)!)}`,
        desired: d,
        actual: a,
      });
      changed = true;
    }
  }
}

function toStep(database: string, dec: Decision, decisions: ReadonlyMap<string, Decision>, ctx: DesiredContext): PlanStep {
  const { desired: d, actual: a } = dec;
  // An adopted object keeps its own name (a vecs-made index its suffix): describe what is there.
  const shown = dec.action === 'adopt' && a ? a : d;
  const base = { id: `${database}/${d.key}`, database, action: dec.action, kind: d.kind, object: describeObject(shown), reason: dec.reason, risk: dec.risk };
  const sqlCtx = { vectorSchema: ctx.vectorSchema };
  // An index on a table that already exists is built CONCURRENTLY, outside the transaction: no write lock on rows.
  if (d.kind === 'index' && (dec.action === 'create' || dec.action === 'replace')) {
    const table = decisions.get(d.dependsOn?.[0] ?? '');
    const tableIsNew = table?.action === 'create' || table?.action === 'replace';
    if (!tableIsNew) {
      // An interrupted CONCURRENTLY build leaves an invalid index under the new name: clear it first.
      const leftover = `DROP INDEX CONCURRENTLY IF EXISTS ${qualified(d.schema, d.name)}`;
      const build = createSql(d, sqlCtx, { concurrently: true });
      const old = a ? (dropSql(a, { concurrently: true }) ?? []) : [];
      const sameName = a?.kind === 'index' && a.name === d.name;
      return { ...base, drop: [], sql: sameName ? [...old, ...build] : [leftover, ...build, ...old], transactional: false };
    }
  }
  switch (dec.action) {
    case 'create':
      return { ...base, drop: [], sql: createSql(d, sqlCtx), transactional: true };
    case 'adopt':
      // Mark what exists under its own name (a vecs-made index keeps its random suffix).
      return { ...base, drop: [], sql: [markSql(a!) ?? ''].filter(Boolean), transactional: true };
    case 'alter':
      return { ...base, drop: [], sql: alterSql(a!, d, sqlCtx), transactional: true };
    case 'replace': {
      const drop = dropSql(a!);
      if (!drop) throw new Error(`vecscale never drops a ${a!.kind}`);
      return { ...base, drop, sql: createSql(d, sqlCtx), transactional: true };
    }
  }
}

const phaseOf = (s: PlanStep): number => PHASES.indexOf(s.kind);

/** Plans every database of the topology against its live state. Same inputs, byte-identical plan. */
export function buildPlan(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): Plan {
  const ctx = resolveContext(topology, live);
  const desired = buildDesired(topology, ctx);
  const blockers: Blocker[] = [...preconditionBlockers(live), ...layoutBlockers(topology, live)];
  const notes: Note[] = passwordlessSecondaries(topology, live);
  const urls = new Map([['primary', topology.primary.url], ...topology.secondaries.map((s) => [s.name, s.url] as const)]);
  const plans = desired.map((want): DatabasePlan => {
    const have = live.get(want.database);
    if (!have) throw new Error(`no live state for ${want.database}`);
    const decisions = decide(have, want, blockers, notes);
    const steps = [...decisions.values()]
      .map((dec) => toStep(want.database, dec, decisions, ctx))
      .sort((x, y) => phaseOf(x) - phaseOf(y) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    return { database: want.database, role: want.role, url: redactUrl(urls.get(want.database) ?? ''), steps };
  });
  // Apply order: secondaries first, so the primary's wrappers point at objects that exist.
  const databases = [...plans.filter((p) => p.role === 'secondary'), ...plans.filter((p) => p.role === 'primary')];
  const all = databases.flatMap((p) => p.steps);
  // Statements that carry a password run with statement logging off, where the role may turn it off.
  for (const db of databases) {
    const facts = live.get(db.database)?.facts;
    if (facts?.canQuietLog === false && db.steps.some((s) => s.sql.some(hasSecret))) {
      notes.push({
        database: db.database,
        object: 'statement logging',
        message:
          `warning: ${facts.currentUser} may not SET log_statement/log_min_error_statement/log_min_duration_statement: a server ` +
          'that logs DDL or failing statements would write the user-mapping password to its log (GRANT SET ON PARAMETER … to it, or apply as a superuser)',
      });
    }
  }
  return {
    formatVersion: 1,
    databases,
    blockers,
    notes,
    summary: {
      create: all.filter((s) => s.action === 'create').length,
      change: all.filter((s) => s.action === 'alter' || s.action === 'adopt').length,
      replace: all.filter((s) => s.action === 'replace').length,
      drop: 0,
    },
  };
}
