/**
 * The one pure mapping from raw catalog rows (src/introspect/catalog.ts) into the shared model. Tested on fixture
 * rows: every catalog quirk it absorbs carries a NOTE.
 */
import {
  type Acl,
  type AclObjectType,
  type Column,
  type DefaultAcl,
  type DatabaseRole,
  type DatabaseState,
  DEFINITION_MARK,
  QUERY_MARK,
  type DbObject,
  INDEX_PREFIX,
  type IndexPurpose,
  keys,
  type LiveFacts,
  type WrapperLogin,
  type PartitionBound,
  MANAGED_COMMENT,
  MOVE_MARK,
  type MoveMark,
  PROTECTED_MARK,
  ROLE_OWNER_MARK,
  VECS_SCHEMA,
} from '../model/state.js';
import { byCodePoint, secretFingerprint } from '../util/fingerprint.js';
import { type AclRow, type BuildFactsRow, COUNT_UNANALYZED_BYTES, type RawCatalog } from './catalog.js';
import type { RawProbe } from './probe.js';
import { toReplicationFacts } from './replication.js';

/**
 * aclexplode() rows as the model's ACL: `SELECT`, `SELECT*` (WITH GRANT OPTION); a column's own privileges (from
 * pg_attribute.attacl) as `UPDATE(col)`.
 */
export function toAcl(rows: readonly AclRow[], columns: ReadonlyArray<{ column: string; rows: readonly AclRow[] }> = []): Acl {
  const out: Record<string, string[]> = {};
  const add = (grantee: string, privilege: string) => (out[grantee] ??= []).push(privilege);
  for (const [grantee, privilege, grantable] of rows) add(grantee, `${privilege}${grantable ? '*' : ''}`);
  for (const c of columns) for (const [grantee, privilege, grantable] of c.rows) add(grantee, `${privilege}(${c.column})${grantable ? '*' : ''}`);
  return Object.fromEntries(Object.entries(out).map(([g, ps]) => [g, [...new Set(ps)].sort(byCodePoint)]));
}

const ACL_TYPES: readonly string[] = ['r', 'f', 'n'];

function defaultAclOf(rows: RawCatalog['defaultAcls']): DefaultAcl {
  const global: Partial<Record<AclObjectType, Acl>> = {};
  const inSchema: Record<string, Partial<Record<AclObjectType, Acl>>> = {};
  for (const r of rows) {
    if (!ACL_TYPES.includes(r.objtype)) continue;
    const type = r.objtype as AclObjectType;
    if (r.schema === null) global[type] = toAcl(r.acl);
    else (inSchema[r.schema] ??= {})[type] = toAcl(r.acl);
  }
  return { global, inSchema };
}

/** BUILD_FACTS' columns as LiveFacts has them (each absent when the row lacks it: fixture rows of older tests). */
export const buildFactsOf = (r: Partial<BuildFactsRow>): Pick<LiveFacts, 'maintenanceWorkMem' | 'buildLimits'> => ({
  ...(r.maintenance_work_mem === undefined ? {} : { maintenanceWorkMem: Number(r.maintenance_work_mem) }),
  ...(r.shared_buffers === undefined ? {} : {
    buildLimits: {
      maxParallelMaintenanceWorkers: Number(r.max_parallel_maintenance_workers),
      maxParallelWorkers: Number(r.max_parallel_workers),
      maxWorkerProcesses: Number(r.max_worker_processes),
      sharedBuffers: Number(r.shared_buffers),
    },
  }),
});

/** `k=v` strings (reloptions, setconfig, FDW options) as a record; the last of a key wins, as in PostgreSQL. */
export const parseOptions = (opts: readonly string[] | null): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const o of opts ?? []) {
    const i = o.indexOf('=');
    out[o.slice(0, i)] = o.slice(i + 1);
  }
  return out;
};

// NOTE: format_type() schema-qualifies types not visible on search_path (we run with pg_catalog only), so pgvector's
// type reads `public.vector(384)` or `extensions.vector(384)`; where pgvector lives is checked on its own.
const normaliseType = (type: string): string => type.replace(/^[a-z_][a-z0-9_$]*\.(?=vector\b)/, '').replace(/^"[^"]+"\.(?=vector\b)/, '');

/** Tables a move made and has not finished with (src/move/): their marker says which kind. */
function moveMarksOf(relations: RawCatalog['relations']): Map<string, MoveMark> {
  const out = new Map<string, MoveMark>();
  for (const r of relations) {
    const mark = r.comment?.startsWith(MANAGED_COMMENT + MOVE_MARK) ? r.comment.slice((MANAGED_COMMENT + MOVE_MARK).length) : undefined;
    if (mark === 'target' || mark === 'staging' || mark === 'beacon' || mark === 'log') out.set(keys.relation(r.nspname, r.relname), mark);
  }
  return out;
}

/** Which metadata index a name is (src/desired/collection.ts), by its prefix. */
const metadataPurpose = (name: string): IndexPurpose | undefined =>
  (Object.keys(INDEX_PREFIX) as IndexPurpose[]).find((p) => name.startsWith(INDEX_PREFIX[p]));

/** A comment vecscale put on an object it made (with or without a mark after it). */
export const isManaged = (comment: string | null): boolean =>
  comment === MANAGED_COMMENT ||
  comment === MANAGED_COMMENT + PROTECTED_MARK ||
  (comment?.startsWith(MANAGED_COMMENT + DEFINITION_MARK) ?? false) ||
  (comment?.startsWith(MANAGED_COMMENT + ROLE_OWNER_MARK) ?? false) ||
  (comment?.startsWith(MANAGED_COMMENT + MOVE_MARK) ?? false);

/** Attributes of a role that a plain NOINHERIT login role does not have. */
function roleAttributes(r: RawCatalog['roles'][number]): string[] {
  const flags: Array<[boolean, string]> = [
    [r.rolsuper, 'SUPERUSER'],
    [r.rolcreatedb, 'CREATEDB'],
    [r.rolcreaterole, 'CREATEROLE'],
    [r.rolreplication, 'REPLICATION'],
    [r.rolbypassrls, 'BYPASSRLS'],
    [r.rolinherit, 'INHERIT'],
    [!r.rolcanlogin, 'NOLOGIN'],
    // NOTE: rolconnlimit -1 and rolvaliduntil NULL/'infinity' mean no limit; anything else stops the wrapper's logins.
    [r.rolconnlimit !== -1, `CONNECTION LIMIT ${r.rolconnlimit}`],
    [r.rolvaliduntil !== null && r.rolvaliduntil !== 'infinity', `VALID UNTIL ${r.rolvaliduntil}`],
  ];
  return flags.filter(([on]) => on).map(([, name]) => name);
}

// NOTE: a view depending on a relation is recorded as its rewrite rule: pg_describe_object says `rule _RETURN on view x`.
const dependantName = (d: string): string => d.replace(/^rule _RETURN on ((?:materialized )?view) /, '$1 ');

// NOTE: a view's marker records md5(pg_get_viewdef) from its creation; a different digest now means a hand edit.
// An unmarked view (not ours) has no record and counts as intact: it is judged by its columns alone. The marker is
// `<MANAGED_COMMENT><DEFINITION_MARK><viewdef md5>[<QUERY_MARK><query md5>]`; an older vecscale's lacks the query.
function viewMarker(comment: string | null, md5: string | null): { definitionIntact: boolean; queryMd5: string | null } {
  if (!comment?.startsWith(MANAGED_COMMENT + DEFINITION_MARK)) return { definitionIntact: true, queryMd5: null };
  const [digest, query] = comment.slice((MANAGED_COMMENT + DEFINITION_MARK).length).split(QUERY_MARK);
  return { definitionIntact: digest === md5, queryMd5: query || null };
}

const loginOf = (p: RawProbe): WrapperLogin =>
  p.error === null ? { ok: true } : { ok: false, password: p.error.passwordRefused, message: p.error.message };

// NOTE: pg_get_expr prints a hash partition's bound as `FOR VALUES WITH (modulus 4, remainder 1)`; regclass prints the
// parent schema-qualified (introspection runs with search_path = pg_catalog). Other bounds are not vecscale's.
function partitionOf(r: RawCatalog['relations'][number]): { partition?: PartitionBound } {
  const m = /^FOR VALUES WITH \(modulus (\d+), remainder (\d+)\)$/.exec(r.partition_bound ?? '');
  if (!m || !r.partition_parent) return {};
  return { partition: { parent: r.partition_parent, modulus: Number(m[1]), remainder: Number(m[2]) } };
}

const isBatchUpsert = (f: RawCatalog['functions'][number]): boolean => f.proname.startsWith('upsert_') && f.signature.endsWith('(jsonb)');

/** Pure mapping of raw catalog rows into the shared model. */
export function toState(
  database: string,
  role: DatabaseRole,
  raw: RawCatalog,
  scope: { readonly roleHome?: boolean } = {},
): { state: DatabaseState; facts: LiveFacts } {
  const objects: DbObject[] = [];
  for (const e of raw.extensions) {
    objects.push({ kind: 'extension', key: keys.extension(e.extname), managed: false, name: e.extname, schema: e.nspname, grants: e.grants });
  }
  for (const s of raw.schemas) {
    objects.push({ kind: 'schema', key: keys.schema(s.nspname), managed: isManaged(s.comment), name: s.nspname, owner: s.owner, acl: toAcl(s.acl) });
  }
  // Each relation's columns, in catalog order, grouped once (linear in the columns, whatever the relations).
  const columnsByRel = new Map<number, RawCatalog['columns'][number][]>();
  for (const c of raw.columns) {
    const list = columnsByRel.get(c.attrelid);
    if (list) list.push(c);
    else columnsByRel.set(c.attrelid, [c]);
  }
  const rawColumns = (oid: number) => columnsByRel.get(oid) ?? [];
  const foreignTables = new Map(raw.foreignTables.map((f) => [f.ftrelid, f]));
  const primaryKeys = new Map(raw.primaryKeys.map((p) => [p.conrelid, p]));
  const relationAcl = (r: RawCatalog['relations'][number]): Acl =>
    toAcl(r.acl, rawColumns(r.oid).filter((c) => c.acl.length > 0).map((c) => ({ column: c.attname, rows: c.acl })));
  const columnsOf = (oid: number): Column[] =>
    rawColumns(oid).map((c) => ({ name: c.attname, type: normaliseType(c.type), notNull: c.attnotnull, default: c.default }));
  const relName = new Map(raw.relations.map((r) => [r.oid, r]));
  for (const r of raw.relations) {
    const base = { key: keys.relation(r.nspname, r.relname), managed: isManaged(r.comment), schema: r.nspname, name: r.relname, owner: r.owner };
    if (r.relkind === 'v' || r.relkind === 'm') {
      objects.push({
        ...base,
        kind: 'view',
        columns: columnsOf(r.oid).map((c) => ({ ...c, notNull: false, default: null })),
        ...viewMarker(r.comment, r.viewdef_md5),
        materialized: r.relkind === 'm',
        options: [...(r.reloptions ?? [])].sort(byCodePoint),
        acl: relationAcl(r),
        ...(r.write_trigger ? { writeTrigger: r.write_trigger } : {}),
      });
    } else if (r.relkind === 'f') {
      const ft = foreignTables.get(r.oid);
      objects.push({
        ...base,
        kind: 'foreign_table',
        server: ft?.srvname ?? '',
        options: parseOptions(ft?.ftoptions ?? null),
        columns: columnsOf(r.oid).map((c) => ({ ...c, notNull: false, default: null })),
        ...partitionOf(r),
        acl: relationAcl(r),
        columnOptions: Object.fromEntries(
          rawColumns(r.oid).filter((c) => c.attfdwoptions?.length).map((c) => [c.attname, [...c.attfdwoptions!].sort(byCodePoint)]),
        ),
      });
    } else {
      // NOTE: a partitioned table ('p') maps to a table too; its columns will not match a collection's.
      objects.push({
        ...base,
        kind: 'table',
        columns: columnsOf(r.oid),
        primaryKey: primaryKeys.get(r.oid)?.columns ?? [],
        ordinary: r.relkind === 'r',
        ...(r.partition_key ? { partitionKey: r.partition_key, partitions: [...(r.partitions ?? [])].sort(byCodePoint) } : {}),
        protected: r.comment === MANAGED_COMMENT + PROTECTED_MARK,
        acl: relationAcl(r),
      });
    }
  }
  // One vector index per collection table: ours (marker) if present, else the first in name order.
  const seenTables = new Set<number>();
  const sorted = raw.indexes.filter((i) => i.amname === 'hnsw' || i.amname === 'ivfflat').sort((a, b) => Number(isManaged(b.comment)) - Number(isManaged(a.comment)) || byCodePoint(a.relname, b.relname));
  for (const i of sorted) {
    const table = relName.get(i.indrelid);
    if (!table || table.nspname !== VECS_SCHEMA || seenTables.has(i.indrelid)) continue;
    seenTables.add(i.indrelid);
    const params = parseOptions(i.reloptions);
    objects.push({
      kind: 'index',
      key: keys.index(table.nspname, table.relname),
      managed: isManaged(i.comment),
      schema: table.nspname,
      table: table.relname,
      name: i.relname,
      method: i.amname === 'ivfflat' ? 'ivfflat' : 'hnsw',
      column: i.column ?? '',
      opclass: i.opcname,
      params: Object.fromEntries(Object.entries(params).sort(([a], [b]) => byCodePoint(a, b))),
      valid: i.indisvalid,
    });
  }
  // The metadata indexes (full text, owner): only vecscale's, by marker and name prefix; one per purpose and table,
  // the first in name order (a user's gin or btree index stays out of the model).
  const seenPurposes = new Set<string>();
  for (const i of [...raw.indexes].sort((a, b) => byCodePoint(a.relname, b.relname))) {
    const table = relName.get(i.indrelid);
    const purpose = metadataPurpose(i.relname);
    if (!table || table.nspname !== VECS_SCHEMA || purpose === undefined || !isManaged(i.comment)) continue;
    if (i.amname !== 'gin' && i.amname !== 'btree') continue;
    const key = keys.index(table.nspname, table.relname, purpose);
    if (seenPurposes.has(key)) continue;
    seenPurposes.add(key);
    objects.push({
      kind: 'index',
      key,
      managed: true,
      schema: table.nspname,
      table: table.relname,
      name: i.relname,
      method: i.amname,
      column: '',
      opclass: '',
      params: {},
      valid: i.indisvalid,
    });
  }
  for (const f of raw.functions) {
    const marker = MANAGED_COMMENT + DEFINITION_MARK;
    objects.push({
      kind: 'function',
      // NOTE: upsert_<c>(rows jsonb) is upsert_<c>'s batch overload; regprocedure prints it `public.upsert_<c>(jsonb)`.
      key: keys.function(f.nspname, f.proname, isBatchUpsert(f) ? 'rows' : undefined),
      managed: isManaged(f.comment),
      schema: f.nspname,
      name: f.proname,
      definitionMd5: f.comment?.startsWith(marker) ? f.comment.slice(marker.length) : null,
      bodyMd5: f.body_md5,
      acl: toAcl(f.acl),
      securityDefiner: f.prosecdef,
      config: f.proconfig,
      owner: f.owner,
      signature: f.signature,
    });
  }
  for (const s of raw.servers) {
    objects.push({
      kind: 'server',
      key: keys.server(s.srvname),
      managed: isManaged(s.comment),
      name: s.srvname,
      wrapper: s.fdwname,
      options: parseOptions(s.srvoptions),
      owner: s.owner,
      acl: toAcl(s.acl),
    });
  }
  const serverManaged = new Map(raw.servers.map((s) => [s.srvname, isManaged(s.comment)]));
  for (const m of raw.userMappings) {
    // Every option but the user name may be a secret (password, sslpassword, …): only fingerprints leave here.
    const options = Object.fromEntries(
      Object.entries(parseOptions(m.umoptions)).map(([k, v]) => [k, k === 'user' ? v : secretFingerprint(v)]),
    );
    objects.push({
      kind: 'user_mapping',
      key: keys.userMapping(m.srvname, m.usename),
      // NOTE: user mappings take no comment; they are ours when their server is.
      managed: serverManaged.get(m.srvname) ?? false,
      server: m.srvname,
      role: m.usename,
      options,
    });
  }
  for (const r of raw.roles) {
    const ownerAt = r.comment?.startsWith(MANAGED_COMMENT + ROLE_OWNER_MARK) ? (MANAGED_COMMENT + ROLE_OWNER_MARK).length : -1;
    const managed = isManaged(r.comment);
    if (scope.roleHome) {
      objects.push({
        kind: 'role',
        key: keys.role(r.rolname),
        managed,
        name: r.rolname,
        attributes: roleAttributes(r),
        memberOf: r.member_of,
        members: r.members,
        settings: [...r.settings].sort(byCodePoint),
        owner: ownerAt < 0 ? null : r.comment!.slice(ownerAt),
      });
    }
    objects.push({
      kind: 'grants',
      key: keys.grants(r.rolname),
      // NOTE: privileges take no comment; they are ours when the role is.
      managed,
      role: r.rolname,
      privileges: raw.privileges.map((p) => ({ on: p.on, schema: p.schema, ...(p.name === null ? {} : { name: p.name }), privileges: p.privileges })),
    });
  }
  if (raw.databaseSettings.length > 0) {
    const values = Object.fromEntries(raw.databaseSettings.map((r) => [r.setting.slice(0, r.setting.indexOf('=')), r.setting.slice(r.setting.indexOf('=') + 1)]));
    // NOTE: defaults take no comment; the names vecscale manages are its own.
    objects.push({ kind: 'settings', key: keys.databaseSettings(), managed: true, values });
  }
  const dependants = new Map<string, string[]>();
  const readBy = new Map<string, string[]>();
  for (const d of raw.dependants) {
    const key = keys.relation(d.nspname, d.relname);
    if (d.in_scope_schema !== null && d.in_scope_name !== null) {
      readBy.set(key, [...(readBy.get(key) ?? []), keys.relation(d.in_scope_schema, d.in_scope_name)]);
    } else {
      dependants.set(key, [...(dependants.get(key) ?? []), dependantName(d.dependant)]);
    }
  }
  const vector = raw.extensions.find((e) => e.extname === 'vector');
  // NOTE: whether a table with pages holds a row is asked only when it decides something (src/introspect/rows.ts): one
  // without pages holds none. A table never analyzed has no row estimate; up to COUNT_UNANALYZED_BYTES it may be
  // counted when an index build's memory note needs its rows.
  const vecsTables = raw.relations.filter((r) => r.nspname === VECS_SCHEMA && r.relkind === 'r');
  const withPages = vecsTables.filter((r) => (r.main_bytes ?? 0) > 0).map((r) => keys.relation(VECS_SCHEMA, r.relname));
  return {
    state: { database, role, objects: new Map(objects.map((o) => [o.key, o])) },
    facts: {
      database,
      currentUser: raw.facts.current_user,
      serverVersion: Number(raw.facts.server_version_num),
      vectorSchema: vector?.nspname,
      dblinkSchema: raw.extensions.find((e) => e.extname === 'dblink')?.nspname,
      superuser: raw.facts.superuser,
      canQuietLog: raw.facts.can_quiet_log,
      ownsDatabase: raw.facts.owns_database || raw.facts.superuser,
      nonEmpty: new Set(withPages),
      unprobed: new Set(withPages),
      ...buildFactsOf(raw.facts),
      rowEstimates: new Map(vecsTables.filter((r) => r.reltuples >= 0 || r.relation_bytes > 0)
        .map((r) => [keys.relation(VECS_SCHEMA, r.relname), r.reltuples >= 0 ? { rows: r.reltuples } : { bytes: r.relation_bytes }])),
      uncounted: new Set(vecsTables.filter((r) => r.reltuples < 0 && r.relation_bytes > 0 && r.relation_bytes <= COUNT_UNANALYZED_BYTES)
        .map((r) => keys.relation(VECS_SCHEMA, r.relname))),
      moveMarks: moveMarksOf(raw.relations),
      dependants,
      readBy,
      ...(role === 'primary' ? { wrapperLogins: new Map(raw.probes.map((p) => [p.srvname, loginOf(p)])) } : {}),
      defaultAcl: defaultAclOf(raw.defaultAcls),
      roles: new Map(raw.grantees.map((g) => [g.rolname, { usesVectorSchema: g.uses_vector_schema }])),
      ...(raw.replication ? { replication: toReplicationFacts(raw.replication) } : {}),
    },
  };
}
