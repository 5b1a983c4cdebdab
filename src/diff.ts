/**
 * diff(actual, desired): what differs, field by field. It only describes; whether a difference means ALTER,
 * replace, adopt or refusal — and the SQL — is the planner's decision.
 */
import { type DatabaseState, type DbObject, isVectorMethod, ownOptions } from './model/state.js';
import { byCodePoint } from './util/fingerprint.js';

export interface FieldChange {
  readonly from: unknown;
  readonly to: unknown;
}

export type Change =
  | { readonly op: 'create'; readonly key: string; readonly desired: DbObject }
  /** Managed by vecscale, present, and no longer in the topology. */
  | { readonly op: 'orphan'; readonly key: string; readonly actual: DbObject }
  | {
      readonly op: 'alter';
      readonly key: string;
      readonly actual: DbObject;
      readonly desired: DbObject;
      readonly fields: Readonly<Record<string, FieldChange>>;
    };

/** Canonical JSON: object keys sorted, so the same value built in another key order compares equal. */
/** `ix_vector_cosine_ops_hnsw_m16_efc64` of `ix_vector_cosine_ops_hnsw_m16_efc64_a1b2c3d`: what vecs reads. */
const indexNameStem = (name: string): string => name.replace(/_[^_]{7}$/, '');

const json = (v: unknown): string =>
  JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => byCodePoint(a, b)))
      : value,
  );

/**
 * `json(a) === json(b)` without building either string (the plan compares every field of thousands of objects):
 * objects as unordered keys, a key holding undefined as absent, as JSON has them.
 */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x ?? null, b[i] ?? null));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** The fields that define each kind, compared in this order. `managed` is compared for every kind but extensions. */
function comparable(o: DbObject): Record<string, unknown> {
  switch (o.kind) {
    case 'extension':
      // Where pgvector sits is a precondition check, not a change; who may use dblink's functions is compared.
      return { grants: o.grants };
    case 'settings':
      return { values: o.values };
    case 'schema':
      return { acl: o.acl, owner: o.owner };
    case 'table':
      return {
        kind: o.kind,
        columns: o.columns,
        primaryKey: o.primaryKey,
        ordinary: o.ordinary,
        partitionKey: o.partitionKey,
        partitions: o.partitions,
        protected: o.protected,
        owner: o.owner,
        acl: o.acl,
      };
    case 'index':
      // A metadata index's name hashes its definition (src/desired/collection.ts): name, method and validity say it all.
      if (!isVectorMethod(o.method)) return { name: o.name, method: o.method, valid: o.valid };
      return { name: indexNameStem(o.name), method: o.method, column: o.column, opclass: o.opclass, params: o.params, valid: o.valid };
    case 'function':
      return {
        kind: o.kind,
        definitionMd5: o.definitionMd5,
        bodyMd5: o.bodyMd5,
        securityDefiner: o.securityDefiner,
        config: o.config,
        owner: o.owner,
        acl: o.acl,
      };
    case 'view':
      return {
        acl: o.acl,
        owner: o.owner,
        writeTrigger: o.writeTrigger,
        kind: o.kind,
        columns: o.columns.map((c) => ({ name: c.name, type: c.type })),
        definitionIntact: o.definitionIntact,
        queryMd5: o.queryMd5 ?? null,
        materialized: o.materialized,
        options: o.options,
      };
    case 'server':
      return { wrapper: o.wrapper, options: ownOptions('server', o.options), owner: o.owner, acl: o.acl };
    case 'user_mapping':
      return { options: ownOptions('user_mapping', o.options) };
    case 'foreign_table':
      return {
        kind: o.kind,
        server: o.server,
        options: o.options,
        columns: o.columns.map((c) => ({ name: c.name, type: c.type })),
        columnOptions: o.columnOptions,
        partition: o.partition,
        owner: o.owner,
        acl: o.acl,
      };
    case 'role':
      return { kind: o.kind, attributes: o.attributes, memberOf: o.memberOf, members: o.members, settings: o.settings ?? [], owner: o.owner, password: o.setPassword ? 'set' : 'kept' };
    case 'grants':
      return { privileges: o.privileges };
  }
}

/**
 * A live object's state as a saved plan records it: the fields that define it, its marker, and (tables) whether it
 * holds rows. Stable across processes, so nothing derived from a password enters: a mapping's password counts as
 * set or not (a changed password still shows, as a different plan, when the saved plan is checked).
 */
export function stateOf(o: DbObject, facts: { readonly nonEmpty: ReadonlySet<string> }): string {
  const fields: Record<string, unknown> = { ...comparable(o), kind: o.kind, managed: o.managed };
  if (o.kind === 'user_mapping') fields.options = Object.fromEntries(Object.entries(o.options).map(([k, v]) => [k, k === 'user' ? v : 'set']));
  if (o.kind === 'table') fields.rows = facts.nonEmpty.has(o.key);
  return json(fields);
}

function fieldChanges(actual: DbObject, desired: DbObject): Record<string, FieldChange> {
  const a: Record<string, unknown> = { ...comparable(actual), kind: actual.kind };
  const d: Record<string, unknown> = { ...comparable(desired), kind: desired.kind };
  // ACLs and owners are compared where the desired state sets them (vecscale's own objects).
  if (d.acl === undefined) delete a.acl;
  if (d.grants === undefined) delete a.grants;
  if (d.owner === undefined) delete a.owner;
  if (d.writeTrigger === undefined) delete a.writeTrigger;
  if (d.protected === undefined) delete a.protected;
  // A mapping is ours when its server is, privileges when their role is: their `managed` is derived, never a change of its own.
  if (desired.kind !== 'extension' && desired.kind !== 'schema' && desired.kind !== 'user_mapping' && desired.kind !== 'grants') {
    a.managed = actual.managed;
    d.managed = desired.managed;
  } else if (desired.kind === 'schema' && desired.managed) {
    a.managed = actual.managed;
    d.managed = true;
  }
  const out: Record<string, FieldChange> = {};
  for (const field of new Set([...Object.keys(d), ...Object.keys(a)])) {
    if (!same(a[field], d[field])) out[field] = { from: a[field], to: d[field] };
  }
  return out;
}

/** Compares one database's live state with its desired state. Deterministic: changes come in key order. */
export function diff(actual: DatabaseState, desired: DatabaseState): Change[] {
  const out: Change[] = [];
  const allKeys = [...new Set([...desired.objects.keys(), ...actual.objects.keys()])].sort();
  for (const key of allKeys) {
    const d = desired.objects.get(key);
    const a = actual.objects.get(key);
    if (d && !a) out.push({ op: 'create', key, desired: d });
    else if (a && !d) {
      // Objects vecscale did not create are none of its business.
      if (a.managed) out.push({ op: 'orphan', key, actual: a });
    } else if (a && d) {
      const fields = fieldChanges(a, d);
      if (Object.keys(fields).length > 0) out.push({ op: 'alter', key, actual: a, desired: d, fields });
    }
  }
  return out;
}
