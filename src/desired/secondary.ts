/**
 * A secondary's desired state: each collection exactly as the vecs client makes it (`vecs.<c>` and its index), the
 * wrapper views the primary reads in vecscale's private schema, a shard's upsert views, and the wrapper role with
 * its privileges. Only the wrapper role (and the owner) may read or write anything vecscale creates here.
 */
import type { CollectionSpec, QuerySettings, SecondarySpec, ShardedCollection, Topology } from '../config/types.js';
import { fdwPasswordRef, primaryIdentity, roleHome } from '../model/fdw-role.js';
import { type Part, partsOf } from '../model/placement.js';
import { API_SCHEMA, BATCHED, type DbObject, keys, type Privilege, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { UPSERT_ROW_FUNCTION, upsertRowFunction } from '../query/sharded.js';
import { qualified } from '../sql/quote.js';
import { byCodePoint } from '../util/fingerprint.js';
import { SecondaryAccess } from './access.js';
import { col, collectionView, extractExpression, tableObjects } from './collection.js';
import type { DesiredContext } from './index.js';

/** The columns of a collection's view on a secondary: the vecs columns and each extracted metadata key, typed. */
const viewSelect = (c: CollectionSpec, table: string, ctid = false): string =>
  `SELECT ${[...(ctid ? ['ctid'] : []), 'id', 'vec AS embedding', 'metadata', ...c.columns.map((x) => extractExpression(x.name, x.type))].join(', ')} FROM ${qualified(VECS_SCHEMA, table)}`;

/**
 * A shard's objects for a sharded collection: each partition it holds (a vecs collection named <c>_p<i>of<n>), a view
 * vecscale.<c> of the rows it holds (for whoever administers the shard), and per partition a view
 * vecscale.<partition> with the extracted columns, which the primary reads and into which its upserts insert.
 */
function shardObjects(c: ShardedCollection, parts: readonly Part[], access: SecondaryAccess): DbObject[] {
  const objects = parts.flatMap((p) => tableObjects(c, p.table, access.collectionTable()));
  const local = parts.map((p) => keys.relation(VECS_SCHEMA, p.table));
  objects.push(collectionView(SECONDARY_SCHEMA, c.name, c, parts.map((p) => viewSelect(c, p.table)).join(' UNION ALL '), [...local, keys.schema(SECONDARY_SCHEMA)], {}));
  for (const p of parts) {
    // The partition's ctid, first: an UPDATE or DELETE through public.<c> on the primary marks the rows it reads of
    // the partitioned vecscale_remote.<c>, and PostgreSQL then asks every partition for a ctid, which a view has
    // only as a column (postgres_fdw sends `SELECT ctid, …`). Appended columns go after the extracted ones.
    const view = collectionView(SECONDARY_SCHEMA, p.table, c, viewSelect(c, p.table, true), [keys.relation(VECS_SCHEMA, p.table), keys.schema(SECONDARY_SCHEMA)], access.upsertView());
    objects.push({
      ...view,
      columns: [col('ctid', 'tid'), ...(view.kind === 'view' ? view.columns : [])],
      writeTrigger: `${SECONDARY_SCHEMA}.${UPSERT_ROW_FUNCTION}${BATCHED}`,
    } as DbObject);
  }
  return objects;
}

/**
 * A collection on this one secondary: its table, index, and the wrapper view with the extracted columns, which the
 * primary reads, and into which its upserts insert (the view's INSTEAD OF trigger runs INSERT … ON CONFLICT).
 */
function placedObjects(c: CollectionSpec, access: SecondaryAccess): DbObject[] {
  return [
    ...tableObjects(c, c.name, access.collectionTable()),
    {
      ...collectionView(
        SECONDARY_SCHEMA,
        c.name,
        c,
        viewSelect(c, c.name),
        [keys.relation(VECS_SCHEMA, c.name), keys.schema(SECONDARY_SCHEMA)],
        access.upsertView(),
      ),
      writeTrigger: `${SECONDARY_SCHEMA}.${UPSERT_ROW_FUNCTION}${BATCHED}`,
    } as DbObject,
  ];
}

export function secondaryObjects(secondary: string, s: SecondarySpec, collections: readonly CollectionSpec[], ctx: DesiredContext): DbObject[] {
  const access = new SecondaryAccess(s.fdwUser);
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    { kind: 'schema', key: keys.schema(VECS_SCHEMA), managed: false, name: VECS_SCHEMA },
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  let any = false;
  for (const c of collections) {
    const parts = partsOf(c).filter((p) => p.secondary === secondary);
    if (parts.length === 0) continue;
    any = true;
    objects.push(...(c.shards !== undefined ? shardObjects(c, parts, access) : placedObjects(c, access)));
  }
  if (any) {
    // The trigger function of every upsert view here (a view is named after its table).
    objects.push({ kind: 'schema', key: keys.schema(SECONDARY_SCHEMA), managed: true, name: SECONDARY_SCHEMA, acl: access.schema() }, upsertRowFunction(ctx.vectorSchema));
  }
  const iterativeScan = podIterativeScan(collections.filter((c) => partsOf(c).some((p) => p.secondary === secondary)));
  if (iterativeScan !== 'off') {
    objects.push({ kind: 'settings', key: keys.databaseSettings(), managed: true, values: { 'hnsw.iterative_scan': iterativeScan } });
  }
  return objects;
}

/**
 * The secondary's default `hnsw.iterative_scan`, for clients that connect directly (vecs sets ef_search = 40 and no
 * iterative scan: a filtered query would return fewer than k rows). A database has one default for all its
 * collections: on when any collection here wants iterative scans, and strict_order when any wants it, since a
 * default imposed on every client must not hand results out of distance order to one that did not ask for that.
 */
export function podIterativeScan(collections: readonly CollectionSpec[]): QuerySettings['iterativeScan'] {
  const wanted = new Set(collections.map((c) => c.query.iterativeScan));
  return wanted.has('strict_order') ? 'strict_order' : wanted.has('relaxed_order') ? 'relaxed_order' : 'off';
}

/**
 * What the wrapper role may do here on objects vecscale does not own, and nothing more: USAGE on the vecs schema and
 * pgvector's. (Its privileges on vecscale's own objects are part of their ACLs.)
 */
function wrapperPrivileges(ctx: DesiredContext): Privilege[] {
  return [...new Set([VECS_SCHEMA, ctx.vectorSchema])]
    .sort(byCodePoint)
    .map((schema): Privilege => ({ on: 'schema', schema, privileges: ['USAGE'] }));
}

/** The role (on the first secondary of its cluster group) and its privileges here. */
export function wrapperRoleObjects(topology: Topology, s: SecondarySpec, ctx: DesiredContext): DbObject[] {
  const privileges = wrapperPrivileges(ctx);
  const grants: DbObject = {
    kind: 'grants',
    key: keys.grants(s.fdwUser),
    managed: true,
    role: s.fdwUser,
    privileges,
    dependsOn: privileges.map((p) => keys.schema(p.schema)),
  };
  if (roleHome(topology, s) !== s.name) return [grants];
  const password = ctx.fdwPasswords?.get(s.name);
  return [
    {
      kind: 'role',
      key: keys.role(s.fdwUser),
      managed: true,
      name: s.fdwUser,
      attributes: [],
      memberOf: [],
      members: [],
      settings: [],
      owner: primaryIdentity(topology),
      setPassword: password?.mode !== 'keep',
      passwordRef: fdwPasswordRef(s.name),
    },
    grants,
  ];
}
