/**
 * The pure planner: live state + topology → ordered, reviewable steps. Decides what each difference means
 * (create, in-place change, adopt, replace, or refuse) and in which fixed order statements run.
 */
import type { Topology } from '../config/types.js';
import { buildDesired, type DesiredContext, type FdwPassword, GENERATED_FINGERPRINT, MAPPING_ROLE, serversOf } from '../desired/index.js';
import { roleGroup, roleHome } from '../model/fdw-role.js';
import { secretFingerprint } from '../util/fingerprint.js';
import { diff } from '../diff.js';
import { VecscaleError } from '../errors.js';
import {
  API_SCHEMA,
  type DatabaseState,
  type DbObject,
  describeObject,
  HELPER_SCHEMA,
  initialAcl,
  type LiveDatabase,
  type LiveFacts,
  keys,
  type ObjectKind,
  type Privilege,
  type WrapperLogin,
  VECS_SCHEMA,
} from '../model/state.js';
import { collectionOfTable, describeLayout, isTableOf, secondariesOf } from '../model/placement.js';
import { decideMoves, replicationDemands } from '../move/plan.js';
import { replicationBlockers } from '../move/prerequisites.js';
import { QUIET_SETTINGS } from '../model/log-sinks.js';
import { hasSecret, qualified } from '../sql/quote.js';
import { redactUrl } from '../util/url.js';
import { buildNote, planIndexBuild, withBuildSettings } from './index-build.js';
import { describeFields, purpose } from './reasons.js';
import { adoptSql, alterSql, appendsColumns, createSql, dropSql, type SqlContext } from './sql.js';
import { type Action, type Blocker, type DatabasePlan, type Note, type Plan, type PlanStep, type Risk, stepKey } from './types.js';

/** Creates run in this order, drops of replaced objects in the reverse. */
export const PHASES: readonly ObjectKind[] = [
  'role',
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
  'settings',
  // Privileges last: on everything the plan has just created.
  'grants',
];

/** Where pgvector goes, and as whom the primary connects. Throws when the databases disagree on pgvector's schema. */
export function resolveContext(topology: Topology, live: ReadonlyMap<string, LiveDatabase>, opts: PlanOptions = {}): DesiredContext {
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
  return {
    vectorSchema: wanted,
    dblinkSchema: primary.facts.dblinkSchema ?? HELPER_SCHEMA,
    fdwSchema: extensionSchema(primary, 'postgres_fdw'),
    owners: new Map([...live].map(([db, l]) => [db, l.facts.currentUser])),
    fdwPasswords: fdwPasswords(topology, live, opts.rotateFdwPasswords ?? false),
  };
}

/**
 * Per secondary, whether this run sets the wrapper password. A password is kept when the role exists as vecscale
 * made it and every user mapping of its group already holds one and the same password for it (the configured one,
 * if `fdw_password` is set); otherwise it is set on the role and every mapping of the group together.
 */
function fdwPasswords(topology: Topology, live: ReadonlyMap<string, LiveDatabase>, rotate: boolean): Map<string, FdwPassword> {
  const primary = live.get('primary')!.state.objects;
  const logins = live.get('primary')!.facts.wrapperLogins ?? new Map<string, WrapperLogin>();
  const byGroup = new Map<string, FdwPassword>();
  const out = new Map<string, FdwPassword>();
  for (const s of topology.secondaries) {
    const group = roleGroup(s);
    let decided = byGroup.get(group);
    if (!decided) {
      const members = topology.secondaries.filter((x) => roleGroup(x) === group);
      const role = live.get(roleHome(topology, s))?.state.objects.get(keys.role(s.fdwUser));
      const held = members.flatMap((m) =>
        serversOf(topology, m.name).map((server) => {
          const um = primary.get(keys.userMapping(server, MAPPING_ROLE));
          return um?.kind === 'user_mapping' && um.options.user === m.fdwUser ? um.options.password : undefined;
        }),
      );
      const configured = s.fdwPassword === undefined ? undefined : secretFingerprint(s.fdwPassword);
      const wanted = configured ?? held[0];
      // The secondary refused the mappings' password (a rotation cut off half-way, ALTER ROLE … PASSWORD by hand):
      // what the catalogs agree on does not log in, so it is set again on the role and every mapping.
      const refused = members.some((m) => serversOf(topology, m.name).some((server) => passwordRefused(logins.get(server))));
      // --rotate-fdw-passwords: every generated password is replaced (a configured one stays what the file says).
      const keep =
        !(rotate && configured === undefined) && !refused && role?.kind === 'role' && role.managed && wanted !== undefined && held.every((h) => h === wanted);
      decided = keep ? { mode: 'keep', fingerprint: wanted } : { mode: 'set', fingerprint: configured ?? GENERATED_FINGERPRINT };
      byGroup.set(group, decided);
    }
    out.set(s.name, decided);
  }
  return out;
}

const extensionSchema = (db: LiveDatabase, name: string): string | undefined => {
  const e = db.state.objects.get(keys.extension(name));
  return e?.kind === 'extension' ? e.schema : undefined;
};

/** Live conditions the plan cannot fix and will not work around. */
function preconditionBlockers(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): Blocker[] {
  const primary = live.get('primary');
  const out: Blocker[] = [];
  // dblink in vecscale's schema is its owner's only (vecscale revokes the rest); elsewhere it is someone else's ACL.
  const dblink = primary?.state.objects.get(keys.extension('dblink'));
  const executors = dblink?.kind === 'extension' && dblink.schema !== HELPER_SCHEMA
    ? [...new Set((dblink.grants ?? []).filter((g) => g.split(' ')[1] === 'EXECUTE').map((g) => g.split(' ')[0]!))]
    : [];
  if (dblink?.kind === 'extension' && executors.length > 0) {
    out.push({
      database: 'primary',
      object: `extension dblink (schema ${dblink.schema})`,
      reason:
        `${executors.join(', ')} may execute dblink's functions, and match_* keeps a dblink connection as its owner in the session: ` +
        `any role that may call dblink() could use it to run any SQL on a secondary. Let vecscale own it ` +
        `(ALTER EXTENSION dblink SET SCHEMA ${HELPER_SCHEMA}: vecscale then keeps its functions its owner's only), or revoke EXECUTE ` +
        `on each of its functions from ${executors.join(', ')}`,
    });
  }
  // A GRANT to a role that does not exist fails the apply halfway through the primary's transaction: say so first.
  const declared = [...topology.apiRoles.map((r) => ['api_roles', r] as const), ...topology.writeRoles.map((r) => ['write_roles', r] as const)];
  for (const [list, role] of declared) {
    if (primary?.facts.roles && !primary.facts.roles.has(role)) {
      out.push({ database: 'primary', object: `role ${role}`, reason: `is in ${list} but does not exist on the primary: create it (CREATE ROLE ${role} NOLOGIN) or remove it from ${list}` });
    }
  }
  return out;
}

/** Declared roles that may not use pgvector's schema: their calls would fail to find the vector type. */
function roleNotes(topology: Topology, live: ReadonlyMap<string, LiveDatabase>, vectorSchema: string): Note[] {
  const roles = live.get('primary')?.facts.roles;
  return [...new Set([...topology.apiRoles, ...topology.writeRoles])].flatMap((role) =>
    roles?.get(role)?.usesVectorSchema === false
      ? [{
          database: 'primary',
          object: `role ${role}`,
          message: `warning: ${role} has no USAGE on schema ${vectorSchema}, where pgvector lives: its match_ and upsert_ calls cannot name the vector type (GRANT USAGE ON SCHEMA ${vectorSchema} TO ${role}; vecscale does not own that schema)`,
        }]
      : [],
  );
}

const passwordRefused = (l: WrapperLogin | undefined): boolean => l?.ok === false && l.password;

/**
 * What a login through each foreign server found, when it failed: a refused password is repaired by this plan (the
 * password is set again on both sides); anything else (the secondary unreachable from the primary, its view gone) is
 * a warning the plan cannot act on.
 */
function loginNotes(live: ReadonlyMap<string, LiveDatabase>): Note[] {
  return [...(live.get('primary')?.facts.wrapperLogins ?? [])].flatMap(([server, l]): Note[] => {
    if (l.ok) return [];
    const message = l.password
      ? `a login through this server was refused (${l.message}): the wrapper role's password and the user mappings' disagree; apply sets the password again on both sides`
      : `warning: a login through this server failed (${l.message}); every query through it fails too`;
    return [{ database: 'primary', object: `server ${server}`, message }];
  });
}

/**
 * Each standby a secondary names must be a physical standby of it (in recovery, the same system identifier): reads
 * go there, and another database would answer with other rows (a promoted standby, another pod's URL). One that
 * cannot be reached is a warning: reads fall back to the secondary (at a connect_timeout's cost per new connection
 * while it is silent, nothing when it refuses).
 */
function replicaProblems(topology: Topology, live: ReadonlyMap<string, LiveDatabase>): { blockers: Blocker[]; notes: Note[] } {
  const blockers: Blocker[] = [];
  const notes: Note[] = [];
  for (const s of topology.secondaries) {
    for (const r of live.get(s.name)?.facts.replicas ?? []) {
      const object = `replica secondaries.${s.name}.replicas[${r.index}] (${r.url})`;
      if (r.status === 'not_standby') {
        blockers.push({ database: s.name, object, reason: `is not a standby (pg_is_in_recovery() is false): reads would go to a database that does not follow ${s.name}'s writes, and vecscale never writes to a replica; name a streaming standby of ${s.name}, or remove it` });
      } else if (r.status === 'other_system') {
        blockers.push({ database: s.name, object, reason: `is a standby of another cluster (system identifier ${r.system}, ${s.name}'s is ${r.secondarySystem}): reads would return that cluster's rows; name a standby of ${s.name}` });
      } else if (r.status === 'unreachable') {
        notes.push({ database: s.name, object, message: `warning: cannot check it (${r.message}); reads fall back to ${s.name} while it is down, each new connection first waiting up to connect_timeout (10 s) if it is silent` });
      }
    }
  }
  return { blockers, notes };
}

/** Options of a plan: what the user allows, and whether it tears down instead of converging. */
export interface PlanOptions {
  /** Collections whose destructive steps may run (`--allow-destructive a,b`), or every collection's. */
  readonly allowDestructive?: readonly string[] | 'all';
  /** `vecscale destroy`: drop the primary's wrappers, and the collections `allowDestructive` names. */
  readonly destroy?: boolean;
  /** Generate new wrapper passwords where vecscale generates them, even if the current ones still agree. */
  readonly rotateFdwPasswords?: boolean;
  /**
   * A move's own plans (src/move/run.ts): the collection tables (`<database>/<key>`) whose rows the move has verified
   * on their new tables, so dropping them loses nothing. Such a plan plans the topology as it is, moves excluded.
   */
  readonly movedTables?: ReadonlySet<string>;
}

interface Decision {
  action: Action;
  risk: Risk;
  reason: string;
  readonly desired: DbObject | undefined;
  readonly actual: DbObject | undefined;
  /** The collection whose rows a destructive step loses. */
  readonly collection?: string;
  /** A drop of a table planned as empty: checked again under its lock. */
  readonly guardEmpty?: boolean;
}

/** Per kind, the fields whose change alone is made in place (ALTER, CREATE OR REPLACE, GRANT/REVOKE). */
const IN_PLACE: Partial<Record<ObjectKind, readonly string[]>> = {
  view: ['columns', 'queryMd5', 'acl', 'owner', 'writeTrigger', 'options'],
  foreign_table: ['columns', 'acl', 'owner', 'options'],
  function: ['acl', 'owner', 'securityDefiner', 'config', 'bodyMd5'],
};

/**
 * The wrapper role's privileges on objects whose whole ACL vecscale owns are those objects' business (their `acl`;
 * or, for one vecscale no longer wants, its drop): its grants object covers the rest of the database (the schemas it
 * uses, and anything granted to it elsewhere).
 */
function withoutOwnedAcls(actual: DatabaseState, desired: DatabaseState): DatabaseState {
  const owned = (p: Privilege) => {
    const key = p.on === 'table' ? keys.relation(p.schema, p.name ?? '') : keys.schema(p.schema);
    const o = desired.objects.get(key);
    return (o !== undefined && 'acl' in o && o.acl !== undefined) || (o === undefined && actual.objects.get(key)?.managed === true);
  };
  const objects = new Map(
    [...actual.objects].map(([k, o]) => [k, o.kind === 'grants' ? { ...o, privileges: o.privileges.filter((p) => !owned(p)) } : o]),
  );
  return { ...actual, objects };
}

/** Kinds vecscale drops when they are marked as its own and no longer wanted. Roles and schemas are left (see notes). */
const DROPPABLE: ReadonlySet<ObjectKind> = new Set(['table', 'index', 'view', 'foreign_table', 'function', 'server', 'user_mapping', 'settings']);


/** Why a collection table is no longer wanted where it is. */
function goneReason(topology: Topology, table: string, database: string): string {
  const name = collectionOfTable(table);
  const c = topology.collections.find((x) => x.name === name && isTableOf(x.name, table));
  if (!c) return `collection ${name} is no longer in the topology`;
  // Named with its table and database: "placed on pod_1, not in this table on pod_1" (a partition of an earlier
  // layout) read as a contradiction.
  return `${VECS_SCHEMA}.${table} on ${database} is not in collection ${name}'s layout: the topology places it ${describeLayout(c)}`;
}

function decide(
  topology: Topology,
  actual: LiveDatabase,
  desired: DatabaseState,
  blockers: Blocker[],
  notes: Note[],
  movedTables: ReadonlySet<string>,
): Map<string, Decision> {
  const decisions = new Map<string, Decision>();
  const db = desired.database;
  actual = { ...actual, state: withoutOwnedAcls(actual.state, desired) };
  const changes = diff(actual.state, desired);
  const fdwUsers = new Set(topology.secondaries.map((s) => s.fdwUser));
  const orphans = changes.flatMap((c) => (c.op === 'orphan' ? [c.actual] : []));
  const droppedTables = new Set(orphans.filter((o) => o.kind === 'table').map((o) => o.key));
  const droppedServers = new Set(orphans.flatMap((o) => (o.kind === 'server' ? [o.name] : [])));
  for (const change of changes) {
    if (change.op === 'create') {
      decisions.set(change.key, { action: 'create', risk: 'safe', reason: purpose(change.desired), desired: change.desired, actual: undefined });
      continue;
    }
    if (change.op === 'orphan') {
      const a = change.actual;
      // An index goes with its table; a mapping on a server vecscale keeps is left to whoever made it.
      if (a.kind === 'index' && droppedTables.has(keys.relation(a.schema, a.table))) continue;
      if (a.kind === 'user_mapping' && !droppedServers.has(a.server)) {
        // vecscale's own mapping from before the wrappers ran as their callers (one FOR the applying role): replaced.
        if (a.options.user !== undefined && fdwUsers.has(a.options.user)) {
          decisions.set(change.key, { action: 'drop', risk: 'safe', reason: `replaced by the mapping FOR PUBLIC (the wrappers run as their callers)`, desired: undefined, actual: a });
        } else {
          notes.push({ database: db, object: describeObject(a), message: 'on a server vecscale manages but not the mapping it uses: left in place' });
        }
        continue;
      }
      if (!DROPPABLE.has(a.kind)) {
        notes.push({ database: db, object: describeObject(a), message: 'managed by vecscale but no longer used: left in place (vecscale does not drop schemas or roles)' });
        continue;
      }
      if (a.kind === 'table' && a.schema === VECS_SCHEMA && movedTables.has(`${db}/${change.key}`)) {
        decisions.set(change.key, { action: 'drop', risk: 'disruptive', reason: `its rows were moved to collection ${collectionOfTable(a.name)}'s new tables and verified there`, desired: undefined, actual: a });
        continue;
      }
      if (a.kind === 'table' && a.schema === VECS_SCHEMA) {
        const rows = actual.facts.nonEmpty.has(change.key);
        decisions.set(change.key, {
          action: 'drop',
          risk: rows ? 'destructive' : 'disruptive',
          reason: `${goneReason(topology, a.name, db)}${rows ? '' : ' (the table is empty)'}`,
          desired: undefined,
          actual: a,
          collection: collectionOfTable(a.name),
          guardEmpty: !rows,
        });
        continue;
      }
      const reason = a.kind === 'settings' ? 'no collection here asks for them any more: the defaults are reset' : 'no longer in the topology';
      decisions.set(change.key, { action: 'drop', risk: a.kind === 'settings' ? 'safe' : 'disruptive', reason, desired: undefined, actual: a });
      continue;
    }
    const { actual: a, desired: d, fields } = change;
    const what = describeFields(fields);
    const ownedElsewhere = !a.managed && d.managed && d.kind !== 'user_mapping' && d.kind !== 'grants';
    if (ownedElsewhere) {
      // A view's definition cannot be compared with ours (only its columns can), and a role is someone's: never adopt those.
      // Privileges do not stop an adoption: vecscale makes the ACL exact as it adopts.
      if (d.kind !== 'view' && d.kind !== 'role' && Object.keys(fields).every((f) => f === 'managed' || f === 'acl' || f === 'owner')) {
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
      case 'extension':
      case 'schema':
        decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
        break;
      case 'server':
      case 'user_mapping':
        if ('wrapper' in fields) {
          blockers.push({ database: db, object: describeObject(a), reason: `uses another foreign-data wrapper (${what})` });
        } else {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
        }
        break;
      case 'role':
        if ('owner' in fields && a.kind === 'role' && a.owner !== null) {
          blockers.push({
            database: db,
            object: describeObject(a),
            reason: `is the wrapper role of another primary (${a.owner}); roles are cluster-wide and two primaries would reset each other's password — set fdw_user to a role of its own for this topology`,
          });
        } else {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
        }
        break;
      case 'grants':
      case 'settings':
        decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
        break;
      case 'table': {
        if (Object.keys(fields).every((f) => f === 'protected' || f === 'acl' || f === 'owner')) {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
          break;
        }
        // A sharded collection's partitioned table on the primary (no rows of its own) gaining an extracted column:
        // ADD COLUMN, which PostgreSQL adds to every partition too.
        if (a.kind === 'table' && d.kind === 'table' && !a.ordinary && !d.ordinary &&
            Object.keys(fields).every((f) => f === 'columns' || f === 'acl' || f === 'owner') && appendsColumns(a.columns, d.columns)) {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
          break;
        }
        const rows = actual.facts.nonEmpty.has(change.key);
        decisions.set(change.key, rows
          ? { action: 'replace', risk: 'destructive', reason: `${what}: the table is recreated and its rows are lost`, desired: d, actual: a, collection: collectionOfTable(d.name) }
          : { action: 'replace', risk: 'disruptive', reason: `${what} (the table is empty)`, desired: d, actual: a, guardEmpty: a.kind === 'table' && a.ordinary });
        break;
      }
      case 'view':
      case 'foreign_table':
        // Columns only appended (a new metadata key) and/or grants: changed in place, so grants and dependants survive.
        if (
          a.kind === d.kind &&
          Object.keys(fields).every((f) => IN_PLACE[d.kind]?.includes(f)) &&
          (!('columns' in fields) || appendsColumns(a.columns, d.columns))
        ) {
          decisions.set(change.key, { action: 'alter', risk: 'safe', reason: what, desired: d, actual: a });
          break;
        }
        decisions.set(change.key, { action: 'replace', risk: 'disruptive', reason: what || 'definition changed', desired: d, actual: a });
        break;
      case 'function': {
        // The ACL, the owner, or a body or attribute changed by hand (CREATE OR REPLACE sets the same definition
        // back) change in place; a new definition replaces the function (its return type may differ) unless it keeps
        // its signature and result by construction (replaceable).
        const inPlace = Object.keys(fields).every((f) => IN_PLACE.function!.includes(f)) || (d.replaceable === true && !('kind' in fields));
        decisions.set(change.key, { action: inPlace ? 'alter' : 'replace', risk: 'safe', reason: what, desired: d, actual: a });
        break;
      }
      default:
        decisions.set(change.key, { action: 'replace', risk: 'disruptive', reason: what || 'definition changed', desired: d, actual: a });
    }
  }
  cascade(desired, actual, decisions);
  settleGrants(desired, actual.state, decisions);
  unownedDefaults(actual, decisions, notes);
  return decisions;
}

/**
 * The database defaults are the owner's to set: a run by another role leaves them and says what direct clients lose
 * (nothing else depends on them, so the rest of the plan goes ahead).
 */
function unownedDefaults(actual: LiveDatabase, decisions: Map<string, Decision>, notes: Note[]): void {
  const key = keys.databaseSettings();
  const d = decisions.get(key);
  if (!d || actual.facts.ownsDatabase !== false) return;
  decisions.delete(key);
  const set = d.desired?.kind === 'settings' ? Object.entries(d.desired.values).map(([k, v]) => `SET ${k} = ${v}`) : [];
  const want = set.join(', ') || 'RESET hnsw.iterative_scan';
  notes.push({
    database: actual.facts.database,
    object: 'database defaults',
    message: `warning: ${actual.facts.currentUser} does not own this database, so its defaults stay as they are: clients that connect directly (the vecs client) may get fewer than k rows from a filtered search; the owner can run ALTER DATABASE … ${want}`,
  });
}

/**
 * Privileges on a relation the plan drops or rebuilds go with the old relation: the role's grants are planned
 * against what will be left, so nothing is revoked on a dropped table and a rebuilt one is granted again.
 */
function settleGrants(desired: DatabaseState, actual: DatabaseState, decisions: Map<string, Decision>): void {
  for (const d of desired.objects.values()) {
    const a = actual.objects.get(d.key);
    if (d.kind !== 'grants' || a?.kind !== 'grants' || !a.managed) continue;
    const gone = (p: Privilege) => {
      const dec = decisions.get(p.on === 'table' ? keys.relation(p.schema, p.name ?? '') : keys.schema(p.schema));
      return dec?.action === 'drop' || dec?.action === 'replace';
    };
    const left = { ...a, privileges: a.privileges.filter((p) => !gone(p)) };
    const fields = diff({ ...actual, objects: new Map([[d.key, left]]) }, { ...desired, objects: new Map([[d.key, d]]) })[0];
    if (fields?.op !== 'alter') {
      decisions.delete(d.key);
      continue;
    }
    const kept = (p: Privilege) => d.privileges.some((x) => x.on === p.on && x.schema === p.schema && x.name === p.name);
    const rebuilt = a.privileges.filter((p) => gone(p) && kept(p));
    // Described against what the role holds now, less what goes with dropped relations: the real changes only.
    const asIs = { ...a, privileges: a.privileges.filter((p) => !gone(p) || kept(p)) };
    const real = diff({ ...actual, objects: new Map([[d.key, asIs]]) }, { ...desired, objects: new Map([[d.key, d]]) })[0];
    const again = rebuilt.length ? `granted again on rebuilt ${rebuilt.map((p) => `${p.schema}.${p.name ?? ''}`).join(', ')}` : '';
    const reason = [real?.op === 'alter' ? describeFields(real.fields) : '', again].filter(Boolean).join('; ');
    decisions.set(d.key, { action: 'alter', risk: 'safe', reason, desired: d, actual: left });
  }
}

/**
 * Whatever is built on a replaced object is replaced with it (DROP … RESTRICT would refuse otherwise); privileges on
 * a rebuilt relation are granted again.
 */
function cascade(desired: DatabaseState, live: LiveDatabase, decisions: Map<string, Decision>): void {
  const actual = live.state;
  const rebuilt = (k: string) => decisions.get(k)?.action === 'replace';
  const removed = (k: string) => decisions.get(k)?.action === 'replace' || decisions.get(k)?.action === 'drop';
  // What a live view reads now (its desired definition may read other relations, e.g. new partitions).
  const reads = new Map<string, string[]>();
  for (const [source, views] of live.facts.readBy ?? []) for (const v of views) reads.set(v, [...(reads.get(v) ?? []), source]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const d of desired.objects.values()) {
      const a = actual.objects.get(d.key);
      const current = decisions.get(d.key);
      if (!a || current?.action === 'replace' || current?.action === 'create') continue;
      const causes = [...(d.dependsOn?.filter(rebuilt) ?? []), ...(reads.get(d.key)?.filter(removed) ?? [])];
      if (causes.length === 0) continue;
      if (d.kind === 'grants') continue; // see settleGrants
      decisions.set(d.key, {
        action: 'replace',
        risk: 'disruptive',
        reason: `rebuilt with ${describeObject(desired.objects.get(causes[0]!) ?? actual.objects.get(causes[0]!)!)}`,
        desired: d,
        actual: a,
      });
      changed = true;
    }
  }
}

function toStep(database: string, key: string, dec: Decision, decisions: ReadonlyMap<string, Decision>, ctx: DesiredContext, facts: LiveFacts): PlanStep {
  const { desired: d, actual: a } = dec;
  // An adopted or dropped object is described as it is (a vecs-made index keeps its own suffix).
  const shown = (dec.action === 'adopt' || dec.action === 'drop' ? a : d)!;
  const base = {
    id: `${database}/${key}`,
    database,
    action: dec.action,
    kind: shown.kind,
    object: describeObject(shown),
    reason: dec.reason,
    risk: dec.risk,
    ...(dec.collection !== undefined ? { collection: dec.collection } : {}),
  };
  const sqlCtx: SqlContext = { vectorSchema: ctx.vectorSchema, initialAcl: (type, schema) => initialAcl(facts.defaultAcl, type, schema) };
  const dropOld = (): string[] => {
    const drop = dropSql(a!, { guardEmpty: dec.guardEmpty ?? false });
    if (!drop) throw new Error(`vecscale never drops a ${a!.kind}`);
    return drop;
  };
  if (dec.action === 'drop') return { ...base, drop: dropOld(), sql: [], transactional: true };
  if (!d) throw new Error(`no desired state for ${key}`);
  // An index on a table that already exists is built CONCURRENTLY, outside the transaction: no write lock on rows.
  if (d.kind === 'index' && (dec.action === 'create' || dec.action === 'replace')) {
    const table = decisions.get(d.dependsOn?.[0] ?? '');
    const tableIsNew = table?.action === 'create' || table?.action === 'replace';
    if (!tableIsNew) {
      // An interrupted CONCURRENTLY build leaves an invalid index under the new name: clear it first.
      const leftover = `DROP INDEX CONCURRENTLY IF EXISTS ${qualified(d.schema, d.name)}`;
      // Its own maintenance_work_mem and workers, set around the CREATE INDEX only (src/plan/index-build.ts).
      const build = withBuildSettings(createSql(d, sqlCtx, { concurrently: true }), planIndexBuild(d, facts));
      const old = a ? (dropSql(a, { concurrently: true }) ?? []) : [];
      const sameName = a?.kind === 'index' && a.name === d.name;
      return { ...base, drop: [], sql: sameName ? [...old, ...build] : [leftover, ...build, ...old], transactional: false };
    }
  }
  switch (dec.action) {
    case 'create':
      return { ...base, drop: [], sql: createSql(d, sqlCtx), transactional: true };
    case 'adopt':
      // Mark what exists under its own name (a vecs-made index keeps its random suffix); its ACL made exact.
      return { ...base, drop: [], sql: adoptSql(a!, d), transactional: true };
    case 'alter':
      return { ...base, drop: [], sql: alterSql(a!, d, sqlCtx), transactional: true };
    case 'replace':
      return { ...base, drop: dropOld(), sql: createSql(d, sqlCtx), transactional: true };
  }
}

const phaseOf = (s: PlanStep): number => PHASES.indexOf(s.kind);

/** Whether `name`'s destructive steps may run. */
const allowed = (opts: PlanOptions, name: string): boolean =>
  opts.allowDestructive === 'all' || (opts.allowDestructive?.includes(name) ?? false);

/**
 * Destructive steps run only for collections the user names, never for protected ones. The topology's `protect`
 * decides for a collection it lists; the marker on the live table decides for one it no longer lists.
 */
function destructiveBlockers(topology: Topology, live: ReadonlyMap<string, LiveDatabase>, steps: readonly PlanStep[], opts: PlanOptions): Blocker[] {
  const out: Blocker[] = [];
  for (const s of steps.filter((x) => x.risk === 'destructive')) {
    const name = s.collection ?? '?';
    const spec = topology.collections.find((c) => c.name === name);
    const liveTable = live.get(s.database)?.state.objects.get(stepKey(s));
    const isProtected = spec ? spec.protect : liveTable?.kind === 'table' && liveTable.protected === true;
    const rows = s.rows === undefined ? 'its rows' : `its ${s.rows} row${s.rows === 1 ? '' : 's'}`;
    if (isProtected) {
      out.push({
        database: s.database,
        object: s.object,
        reason: `collection ${name} is protected (protect: true${spec ? '' : ', recorded on the table'}): ${s.action === 'drop' ? 'dropping it' : 'recreating it'} would lose ${rows}, and --allow-destructive does not override protection` +
          (spec ? '; set protect: false and apply first' : '; put it back in the topology with protect: false and apply first'),
      });
    } else if (!allowed(opts, name)) {
      out.push({
        database: s.database,
        object: s.object,
        reason: `destructive: ${s.action === 'drop' ? 'dropping it' : 'recreating it'} loses ${rows} (collection ${name}); run again with --allow-destructive ${name} to allow it`,
      });
    }
  }
  return out;
}

/** A drop vecscale would have to CASCADE: objects it does not manage depend on what it drops. */
function dependantBlockers(live: ReadonlyMap<string, LiveDatabase>, steps: readonly PlanStep[]): Blocker[] {
  const out: Blocker[] = [];
  for (const s of steps.filter((x) => x.action === 'drop' || x.action === 'replace')) {
    const deps = live.get(s.database)?.facts.dependants?.get(stepKey(s));
    if (!deps?.length) continue;
    out.push({
      database: s.database,
      object: s.object,
      reason: `${s.action === 'drop' ? 'dropping' : 'replacing'} it would need DROP … CASCADE: ${deps.join(', ')} depend${deps.length === 1 ? 's' : ''} on it, and vecscale does not cascade into what it does not manage — drop or change ${deps.length === 1 ? 'it' : 'them'} first`,
    });
  }
  return out;
}

/** In `destroy`: nothing managed stays on the primary; on secondaries, the objects of the collections allowed to go. */
function destroyDesired(topology: Topology, desired: readonly DatabaseState[], opts: PlanOptions): DatabaseState[] {
  return desired.map((state) => {
    const keep = [...state.objects.values()].filter((o) => {
      if (state.role === 'primary') return !o.managed;
      if (o.kind === 'role' || o.kind === 'grants' || o.kind === 'schema' || o.kind === 'extension') return true;
      const name = 'schema' in o && 'name' in o ? collectionOfTable(o.kind === 'index' ? o.table : o.name) : undefined;
      const c = topology.collections.find((x) => x.name === name);
      if (c && allowed(opts, c.name)) return false;
      // The upsert views' trigger function goes when no collection stays on this secondary.
      if (o.kind === 'function') return topology.collections.some((x) => secondariesOf(x).includes(state.database) && !allowed(opts, x.name));
      return true;
    });
    return { ...state, objects: new Map(keep.map((o) => [o.key, o])) };
  });
}

/** Plans every database of the topology against its live state. Same inputs, byte-identical plan. */
export function buildPlan(wanted: Topology, allLive: ReadonlyMap<string, LiveDatabase>, opts: PlanOptions = {}): Plan {
  // Collections that change placement with rows move (src/move/): the rest of the plan leaves them where they are.
  const internal = opts.movedTables !== undefined;
  const moves = opts.destroy ? undefined : decideMoves(wanted, allLive);
  const topology = moves && !internal ? moves.before : wanted;
  const live = moves ? withoutMoveObjects(allLive, moves.owned, internal) : allLive;
  const ctx = resolveContext(topology, live, opts);
  const full = buildDesired(topology, ctx);
  const desired = opts.destroy ? destroyDesired(topology, full, opts) : full;
  const blockers: Blocker[] = [...preconditionBlockers(topology, live), ...(moves && !internal ? replicationBlockers(replicationDemands(moves.moves, allLive)) : [])];
  const notes: Note[] = [...roleNotes(topology, live, ctx.vectorSchema), ...loginNotes(live)];
  if (!opts.destroy) {
    const standbys = replicaProblems(topology, live);
    blockers.push(...standbys.blockers);
    notes.push(...standbys.notes);
  }
  const urls = new Map([['primary', topology.primary.url], ...topology.secondaries.map((s) => [s.name, s.url] as const)]);
  const plans = desired.map((want): DatabasePlan => {
    const have = live.get(want.database);
    if (!have) throw new Error(`no live state for ${want.database}`);
    const decisions = decide(topology, have, want, blockers, notes, opts.movedTables ?? new Set());
    const steps = [...decisions]
      .filter(([, dec]) => !opts.destroy || dec.action === 'drop')
      .map(([key, dec]) => toStep(want.database, key, dec, decisions, ctx, have.facts))
      .map((step) => withRows(step, have))
      .sort((x, y) => phaseOf(x) - phaseOf(y) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    return { database: want.database, role: want.role, url: redactUrl(urls.get(want.database) ?? ''), steps };
  });
  // Apply order: secondaries first, so the primary's wrappers point at objects that exist.
  const databases = [...plans.filter((p) => p.role === 'secondary'), ...plans.filter((p) => p.role === 'primary')];
  const all = databases.flatMap((p) => p.steps);
  blockers.push(...destructiveBlockers(topology, live, all, opts), ...dependantBlockers(live, all));
  notes.push(...indexBuildNotes(desired, live, databases));
  // pgvector is the user's type, so it goes where the topology says; in public, Supabase's linter warns.
  const installsVector = databases.filter((d) => d.steps.some((st) => st.action === 'create' && st.object === 'extension vector'));
  if (ctx.vectorSchema === API_SCHEMA && installsVector.length > 0) {
    notes.push({
      database: installsVector.map((d) => d.database).join(', '),
      object: 'extension vector',
      message: `pgvector is installed into schema ${API_SCHEMA} (Supabase's Security Advisor warns: 0014 extension_in_public); set extension_schema (e.g. extensions) to put it elsewhere`,
    });
  }
  // Statements that carry a password run with statement logging off, where the role may turn it off.
  for (const db of databases) {
    const facts = live.get(db.database)?.facts;
    if (facts?.canQuietLog === false && db.steps.some((s) => s.sql.some(hasSecret))) {
      notes.push({
        database: db.database,
        object: 'statement logging',
        message:
          `warning: ${facts.currentUser} may not SET ${QUIET_SETTINGS.join('/')}: the wrapper password is never in a statement's text, ` +
          'but a server that logs statements with their parameters (log_statement = all, or duration logging) would write it to its log ' +
          '(GRANT SET ON PARAMETER … to it, or apply as a superuser)',
      });
    }
  }
  return {
    formatVersion: 1,
    databases,
    blockers,
    notes,
    ...(moves && !internal && moves.moves.length > 0 ? { moves: moves.moves } : {}),
    summary: {
      create: all.filter((s) => s.action === 'create').length,
      change: all.filter((s) => s.action === 'alter' || s.action === 'adopt').length,
      replace: all.filter((s) => s.action === 'replace').length,
      drop: all.filter((s) => s.action === 'drop').length,
    },
  };
}

/**
 * For each index the plan builds over rows already in its table (CONCURRENTLY, outside the transaction): what the
 * build will run with (src/plan/index-build.ts) — for HNSW against the graph's estimated size, with a warning when
 * even that will not hold it. An index over an empty or new table is built empty and grows with the inserts.
 */
function indexBuildNotes(desired: readonly DatabaseState[], live: ReadonlyMap<string, LiveDatabase>, databases: readonly DatabasePlan[]): Note[] {
  const notes: Note[] = [];
  for (const db of databases) {
    const want = desired.find((d) => d.database === db.database);
    const facts = live.get(db.database)?.facts;
    for (const step of db.steps) {
      if (step.kind !== 'index' || step.transactional || (step.action !== 'create' && step.action !== 'replace')) continue;
      const o = want?.objects.get(stepKey(step));
      if (o?.kind !== 'index' || facts === undefined) continue;
      const message = buildNote(o, planIndexBuild(o, facts), collectionOfTable(o.table));
      if (message !== undefined) notes.push({ database: db.database, object: `index ${o.schema}.${o.name}`, message });
    }
  }
  return notes;
}

/**
 * The live state without what moves own (their mirror functions, staging tables, copies not yet live, retired tables
 * still to drop after a catch-up): the ordinary plan neither changes nor drops those. A move's own plan keeps its
 * targets (it creates and then reads them) and leaves out only the move's machinery.
 */
function withoutMoveObjects(live: ReadonlyMap<string, LiveDatabase>, owned: ReadonlyMap<string, ReadonlySet<string>>, internal: boolean): Map<string, LiveDatabase> {
  return new Map(
    [...live].map(([db, l]) => {
      const marks = l.facts.moveMarks;
      const machinery = (key: string) => (marks?.get(key) ?? 'target') !== 'target';
      const drop = (key: string) => machinery(key) || ((internal ? key.startsWith('function:') : true) && (owned.get(db)?.has(key) ?? false));
      const objects = new Map([...l.state.objects].filter(([key]) => !drop(key)));
      return [db, { ...l, state: { ...l.state, objects } }];
    }),
  );
}

/** A destructive step says how many rows it loses, when they were counted (see `countRows` in the API). */
function withRows(step: PlanStep, live: LiveDatabase): PlanStep {
  if (step.risk !== 'destructive') return step;
  const rows = live.facts.rowCounts?.get(stepKey(step));
  return rows === undefined ? step : { ...step, rows, reason: `${step.reason} — ${rows} row${rows === 1 ? '' : 's'} lost` };
}
