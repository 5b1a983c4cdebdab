/**
 * Topology → desired state of every database. Pure: the only live inputs (where pgvector sits, which role the
 * primary connection is) arrive as a resolved context.
 */
import { randomBytes } from 'node:crypto';
import {
  type CollectionSpec,
  type ColumnType,
  DEFAULT_QUERY_SETTINGS,
  type IndexSpec,
  type Metric,
  type QuerySettings,
  type SecondarySpec,
  type ShardedCollection,
  type Topology,
} from './config/types.js';
import { filterFunction, matchFunction, matchSqlFunction } from './query/match-function.js';
import { shardedMatchFunction, shardedMatchSqlFunction, shardedUpsertFunction, UPSERT_ROW_FUNCTION, upsertRowFunction } from './query/sharded.js';
import { upsertBatchFunction, upsertFunction, writeTriggerFunction } from './query/write-functions.js';
import { type Part, partsOf, secondariesOf } from './model/placement.js';
import { ident, literal, qualified } from './sql/quote.js';
import {
  API_SCHEMA,
  type Column,
  type DatabaseState,
  type DbObject,
  keys,
  type Privilege,
  HELPER_SCHEMA,
  REMOTE_SCHEMA,
  VECS_SCHEMA,
  WRITE_SCHEMA,
} from './model/state.js';
import { fdwPasswordRef, fdwSecrets, primaryIdentity, roleHome } from './model/fdw-role.js';
import { byCodePoint, shortHash } from './util/fingerprint.js';
import { parsePgUrl } from './util/url.js';

export interface DesiredContext {
  /** Schema holding (or to hold) pgvector on every database. */
  readonly vectorSchema: string;
  /** Schema of dblink on the primary (match_* runs its query on the secondary through it). */
  readonly dblinkSchema: string;
  /** The role the primary connection runs as: the user mapping is for it. */
  readonly primaryRole: string;
  /**
   * Per secondary, the wrapper password its user mappings should hold: `keep` the fingerprint they have (a
   * generated password that still works), or `set` a new one (fingerprint of fdw_password, or a fresh generated one).
   * Absent: set.
   */
  readonly fdwPasswords?: ReadonlyMap<string, FdwPassword>;
}

export type FdwPassword = { readonly mode: 'keep'; readonly fingerprint: string } | { readonly mode: 'set'; readonly fingerprint: string };

/** Stands for a password generated at apply time: never equal to a live fingerprint, so the mappings get it. */
export const GENERATED_FINGERPRINT = 'hmac:generated';

export const OPCLASS: Readonly<Record<Metric, string>> = {
  cosine: 'vector_cosine_ops',
  l2: 'vector_l2_ops',
  inner_product: 'vector_ip_ops',
};

const col = (name: string, type: string, notNull = false, def: string | null = null): Column => ({
  name,
  type,
  notNull,
  default: def,
});

/** The vecs contract: `vecs.<name> (id varchar, vec vector(n), metadata jsonb default '{}')`. */
function collectionColumns(c: CollectionSpec): Column[] {
  return [
    col('id', 'character varying', true),
    col('vec', `vector(${c.dimension})`, true),
    col('metadata', 'jsonb', true, "'{}'::jsonb"),
  ];
}

/** The view's columns, shared by the secondary's view and the primary's foreign table and view. */
export function exposedColumns(c: CollectionSpec): Column[] {
  return [
    col('id', 'character varying'),
    col('embedding', `vector(${c.dimension})`),
    col('metadata', 'jsonb'),
    ...c.columns.map((x) => col(x.name, x.type)),
  ];
}

/** Index name in vecs' pattern; the 7-character suffix is a hash of what defines the index, so plans are stable. */
export function indexName(c: CollectionSpec, index: Exclude<IndexSpec, { method: 'none' }>, table = c.name): string {
  const ops = OPCLASS[c.metric];
  const params = index.method === 'hnsw' ? `hnsw_m${index.m}_efc${index.efConstruction}` : `ivfflat_nl${index.lists}`;
  return `ix_${ops}_${params}_${shortHash(`${table}/${ops}/${params}`)}`;
}

function extractExpression(name: string, type: ColumnType): string {
  // ->> yields text, cast to the declared type (a type from the closed COLUMN_TYPES list); jsonb keeps the value.
  return type === 'jsonb'
    ? `(metadata -> ${literal(name)}) AS ${ident(name)}`
    : `((metadata ->> ${literal(name)})::${type}) AS ${ident(name)}`;
}

/** `public.<collection>`: on a secondary over the vecs table, on the primary over the foreign table. */
const apiView = (c: CollectionSpec, query: string, source: string): DbObject => plainView(API_SCHEMA, c.name, c, query, [source]);

/** A collection table in `vecs` and its vector index: a collection, or one partition of one. */
function tableObjects(c: CollectionSpec, table: string): DbObject[] {
  const objects: DbObject[] = [
    {
      kind: 'table',
      key: keys.relation(VECS_SCHEMA, table),
      managed: true,
      schema: VECS_SCHEMA,
      name: table,
      columns: collectionColumns(c),
      primaryKey: ['id'],
      ordinary: true,
      protected: c.protect,
    },
  ];
  if (c.index.method !== 'none') {
    const params: Record<string, string> =
      c.index.method === 'hnsw'
        ? { ef_construction: String(c.index.efConstruction), m: String(c.index.m) }
        : { lists: String(c.index.lists) };
    objects.push({
      kind: 'index',
      key: keys.index(VECS_SCHEMA, table),
      managed: true,
      schema: VECS_SCHEMA,
      table,
      name: indexName(c, c.index, table),
      method: c.index.method,
      column: 'vec',
      opclass: OPCLASS[c.metric],
      params,
      valid: true,
      dependsOn: [keys.relation(VECS_SCHEMA, table)],
    });
  }
  return objects;
}

const plainView = (schema: string, name: string, c: CollectionSpec, query: string, dependsOn: string[]): DbObject => ({
  kind: 'view',
  key: keys.relation(schema, name),
  managed: true,
  schema,
  name,
  columns: exposedColumns(c),
  query,
  definitionIntact: true,
  materialized: false,
  options: [],
  dependsOn,
});

const partSelect = (p: Part): string => `SELECT id, vec AS embedding, metadata FROM ${qualified(VECS_SCHEMA, p.table)}`;

/**
 * A shard's objects for a sharded collection: each partition it holds (a vecs collection named <c>_p<i>of<n>),
 * public.<c> over the rows it holds, and per partition an upsert view vecscale.<partition> for the primary's upserts.
 */
function shardObjects(c: ShardedCollection, parts: readonly Part[]): DbObject[] {
  const objects = parts.flatMap((p) => tableObjects(c, p.table));
  const local = parts.map((p) => keys.relation(VECS_SCHEMA, p.table));
  objects.push(plainView(API_SCHEMA, c.name, c, parts.map(partSelect).join(' UNION ALL '), local));
  for (const p of parts) {
    objects.push({
      ...plainView(HELPER_SCHEMA, p.table, c, partSelect(p), [keys.relation(VECS_SCHEMA, p.table), keys.schema(HELPER_SCHEMA)]),
      writeTrigger: `${HELPER_SCHEMA}.${UPSERT_ROW_FUNCTION}`,
    } as DbObject);
  }
  return objects;
}

const ALL_DML = ['DELETE', 'INSERT', 'SELECT', 'UPDATE'];

/**
 * What the wrapper role may do on one secondary, and nothing more: USAGE on the schemas it reads through; per
 * collection on one secondary, SELECT on its view (reads) and DML on its table (writes, upserts); per partition on a
 * shard, DML on the partition table (reads and writes go there) and SELECT/INSERT on its upsert view.
 */
function wrapperPrivileges(secondary: string, collections: readonly CollectionSpec[], ctx: DesiredContext): Privilege[] {
  const schemas = new Set([API_SCHEMA, VECS_SCHEMA, ctx.vectorSchema]);
  const out: Privilege[] = [];
  for (const c of collections) {
    for (const p of partsOf(c).filter((x) => x.secondary === secondary)) {
      out.push({ on: 'table', schema: VECS_SCHEMA, name: p.table, privileges: ALL_DML });
      if (c.shards === undefined) {
        out.push({ on: 'table', schema: API_SCHEMA, name: c.name, privileges: ['SELECT'] });
      } else {
        schemas.add(HELPER_SCHEMA);
        out.push({ on: 'table', schema: HELPER_SCHEMA, name: p.table, privileges: ['INSERT', 'SELECT'] });
      }
    }
  }
  out.push(...[...schemas].map((schema): Privilege => ({ on: 'schema', schema, privileges: ['USAGE'] })));
  const order = (p: Privilege) => `${p.on}:${p.schema}.${p.name ?? ''}`;
  return out.sort((a, b) => byCodePoint(order(a), order(b)));
}

/** The role (on the first secondary of its cluster group) and its privileges here. */
function wrapperRoleObjects(topology: Topology, s: SecondarySpec, ctx: DesiredContext): DbObject[] {
  const privileges = wrapperPrivileges(s.name, topology.collections, ctx);
  const onThisDatabase = privileges.flatMap((p) => (p.on === 'table' ? [keys.relation(p.schema, p.name ?? '')] : [keys.schema(p.schema)]));
  const grants: DbObject = { kind: 'grants', key: keys.grants(s.fdwUser), managed: true, role: s.fdwUser, privileges, dependsOn: onThisDatabase };
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
      owner: primaryIdentity(topology),
      setPassword: password?.mode !== 'keep',
      passwordRef: fdwPasswordRef(s.name),
    },
    grants,
  ];
}

function secondaryObjects(secondary: string, collections: readonly CollectionSpec[], ctx: DesiredContext): DbObject[] {
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    { kind: 'schema', key: keys.schema(VECS_SCHEMA), managed: false, name: VECS_SCHEMA },
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  let shards = false;
  for (const c of collections) {
    const parts = partsOf(c).filter((p) => p.secondary === secondary);
    if (parts.length === 0) continue;
    if (c.shards !== undefined) {
      shards = true;
      objects.push(...shardObjects(c, parts));
      continue;
    }
    objects.push(...tableObjects(c, c.name));
    const select = [
      'id',
      'vec AS embedding',
      'metadata',
      ...c.columns.map((x) => extractExpression(x.name, x.type)),
    ];
    objects.push(apiView(c, `SELECT ${select.join(', ')} FROM ${qualified(VECS_SCHEMA, c.name)}`, keys.relation(VECS_SCHEMA, c.name)));
  }
  if (shards) {
    objects.push({ kind: 'schema', key: keys.schema(HELPER_SCHEMA), managed: true, name: HELPER_SCHEMA }, upsertRowFunction());
  }
  return objects;
}

/**
 * The session settings a secondary's queries need, as a server's `options` (libpq's `-c`): primary-side SETs never
 * reach the secondary. cursor_tuple_fraction=1 makes the remote planner plan the cursor postgres_fdw opens like the
 * query itself.
 */
export function sessionSettings(q: QuerySettings): Array<readonly [string, string]> {
  return [
    ['cursor_tuple_fraction', '1'],
    ['hnsw.ef_search', String(q.efSearch)],
    ['hnsw.iterative_scan', q.iterativeScan],
    ['ivfflat.probes', String(q.probes)],
  ];
}

/** The same settings as a server's libpq `options`. */
export const sessionOptions = (q: QuerySettings): string => sessionSettings(q).map(([k, v]) => `-c ${k}=${v}`).join(' ');

const sameSettings = (a: QuerySettings, b: QuerySettings): boolean => sessionOptions(a) === sessionOptions(b);

/**
 * The server a collection is reached through: the secondary's own name for the default settings, and one server per
 * other settings profile (settings travel per connection, and postgres_fdw keeps one connection per server).
 */
export function serverFor(secondary: string, q: QuerySettings): string {
  return sameSettings(q, DEFAULT_QUERY_SETTINGS) ? secondary : `${secondary.slice(0, 53)}_q${shortHash(sessionOptions(q))}`;
}

/** The settings profiles a secondary is reached with: the default, and each of its collections' own. */
const queryProfiles = (topology: Topology, secondary: string): QuerySettings[] => [
  DEFAULT_QUERY_SETTINGS,
  ...topology.collections.filter((c) => secondariesOf(c).includes(secondary)).map((c) => c.query),
];

/** The foreign servers (one per settings profile) through which the primary reaches a secondary. */
export const serversOf = (topology: Topology, secondary: string): string[] =>
  [...new Set(queryProfiles(topology, secondary).map((q) => serverFor(secondary, q)))];

function serverObjects(s: SecondarySpec, q: QuerySettings, ctx: DesiredContext): DbObject[] {
  const url = parsePgUrl(s.url);
  const password = ctx.fdwPasswords?.get(s.name) ?? { mode: 'set', fingerprint: GENERATED_FINGERPRINT };
  const name = serverFor(s.name, q);
  const options: Record<string, string> = {
    async_capable: 'true',
    batch_size: '1000',
    // An unreachable secondary fails a call in 10 s instead of hanging the primary's backend.
    connect_timeout: '10',
    dbname: url.database,
    // Without it postgres_fdw ships no pgvector operator, so every kNN query pulls the whole collection.
    extensions: 'vector',
    host: url.host,
    options: sessionOptions(q),
    port: String(url.port),
  };
  if (url.sslmode) options.sslmode = url.sslmode;
  // The wrapper role, never the secondary's admin: the URL's credentials are vecscale's own.
  const mapping: Record<string, string> = { user: s.fdwUser, password: password.fingerprint };
  return [
    { kind: 'server', key: keys.server(name), managed: true, name, wrapper: 'postgres_fdw', options },
    {
      kind: 'user_mapping',
      key: keys.userMapping(name, ctx.primaryRole),
      managed: true,
      server: name,
      role: ctx.primaryRole,
      options: mapping,
      passwordRef: fdwPasswordRef(s.name),
      dependsOn: [keys.server(name)],
    },
  ];
}

function primaryObjects(topology: Topology, ctx: DesiredContext): DbObject[] {
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    { kind: 'extension', key: keys.extension('postgres_fdw'), managed: false, name: 'postgres_fdw', schema: ctx.vectorSchema },
    // In vecscale's private schema, executable by nobody but its owner: match_* keeps a dblink connection as the
    // owner in the session, and any role that could call dblink() could use it.
    { kind: 'extension', key: keys.extension('dblink'), managed: false, name: 'dblink', schema: ctx.dblinkSchema, revokePublic: ctx.dblinkSchema === HELPER_SCHEMA },
    { kind: 'schema', key: keys.schema(REMOTE_SCHEMA), managed: true, name: REMOTE_SCHEMA },
    { kind: 'schema', key: keys.schema(HELPER_SCHEMA), managed: true, name: HELPER_SCHEMA },
    { kind: 'schema', key: keys.schema(WRITE_SCHEMA), managed: true, name: WRITE_SCHEMA },
    filterFunction(),
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  const servers = new Map<string, DbObject[]>();
  for (const s of topology.secondaries) {
    for (const q of queryProfiles(topology, s.name)) servers.set(serverFor(s.name, q), serverObjects(s, q, ctx));
  }
  objects.push(...[...servers.values()].flat());
  for (const c of topology.collections) {
    if (c.shards !== undefined) {
      objects.push(...shardedPrimaryObjects(c, topology.apiRoles, ctx));
      continue;
    }
    const columns = exposedColumns(c);
    const server = serverFor(c.secondary, c.query);
    const foreignTable = (schema: string, extra: Record<string, string>): DbObject => ({
      kind: 'foreign_table',
      key: keys.relation(schema, c.name),
      managed: true,
      schema,
      name: c.name,
      server,
      options: { schema_name: API_SCHEMA, table_name: c.name, ...extra },
      columns,
      columnOptions: {},
      dependsOn: [keys.server(server), keys.schema(schema)],
    });
    objects.push(foreignTable(REMOTE_SCHEMA, {}));
    // Writes: a foreign table over vecs.<c> itself (the read shape has computed columns postgres_fdw cannot insert).
    objects.push({
      kind: 'foreign_table',
      key: keys.relation(WRITE_SCHEMA, c.name),
      managed: true,
      schema: WRITE_SCHEMA,
      name: c.name,
      server,
      options: { schema_name: VECS_SCHEMA, table_name: c.name },
      columns: [
        { name: 'id', type: 'character varying', notNull: false, default: null },
        { name: 'embedding', type: `vector(${c.dimension})`, notNull: false, default: null },
        // Remote defaults do not apply through postgres_fdw: the default has to be here.
        { name: 'metadata', type: 'jsonb', notNull: false, default: "'{}'::jsonb" },
      ],
      columnOptions: { embedding: ['column_name=vec'] },
      dependsOn: [keys.server(server), keys.schema(WRITE_SCHEMA)],
    });
    const write = writeTriggerFunction(c);
    objects.push(write, upsertFunction(c, ctx.vectorSchema), upsertBatchFunction(c, ctx.vectorSchema));
    objects.push({
      ...apiView(c, `SELECT ${columns.map((x) => ident(x.name)).join(', ')} FROM ${qualified(REMOTE_SCHEMA, c.name)}`, keys.relation(REMOTE_SCHEMA, c.name)),
      grantees: [...topology.apiRoles].sort(),
      privileges: 'SELECT',
      writeTrigger: `${write.schema}.${write.name}`,
    } as DbObject);
    objects.push(matchSqlFunction(c, ctx.vectorSchema));
    const serverOptions = servers.get(server)?.find((o) => o.kind === 'server');
    const serverFingerprint = shortHash(JSON.stringify(serverOptions?.kind === 'server' ? serverOptions.options : {}));
    objects.push(matchFunction(c, { vectorSchema: ctx.vectorSchema, dblinkSchema: ctx.dblinkSchema, server, serverFingerprint }, topology.apiRoles));
  }
  return objects;
}

/**
 * A sharded collection on the primary (see src/query/sharded.ts): vecscale_remote.<c> hash-partitioned by id over
 * foreign tables on the shards' partition tables, vecscale_write.<c> likewise over their upsert views, public.<c>
 * over the first, and the query/write functions.
 */
function shardedPrimaryObjects(c: ShardedCollection, apiRoles: readonly string[], ctx: DesiredContext): DbObject[] {
  const columns = [
    col('id', 'character varying', true),
    col('embedding', `vector(${c.dimension})`, true),
    col('metadata', 'jsonb', true, "'{}'::jsonb"),
  ];
  const objects: DbObject[] = [];
  const parts = partsOf(c);
  for (const schema of [REMOTE_SCHEMA, WRITE_SCHEMA]) {
    const parent = keys.relation(schema, c.name);
    objects.push({
      kind: 'table',
      key: parent,
      managed: true,
      schema,
      name: c.name,
      columns,
      primaryKey: [],
      ordinary: false,
      partitionKey: 'HASH (id)',
      partitions: parts.map((p) => `${schema}.${p.table}`).sort(byCodePoint),
      dependsOn: [keys.schema(schema)],
    });
    for (const p of parts) {
      const server = serverFor(p.secondary, c.query);
      objects.push({
        kind: 'foreign_table',
        key: keys.relation(schema, p.table),
        managed: true,
        schema,
        name: p.table,
        server,
        // Reads and plain writes go to the partition table; upserts to its upsert view (INSTEAD OF … ON CONFLICT).
        options: schema === REMOTE_SCHEMA ? { schema_name: VECS_SCHEMA, table_name: p.table } : { schema_name: HELPER_SCHEMA, table_name: p.table },
        columns: columns.map((x) => ({ ...x, notNull: false, default: null })),
        columnOptions: schema === REMOTE_SCHEMA ? { embedding: ['column_name=vec'] } : {},
        partition: { parent: `${schema}.${c.name}`, modulus: p.modulus!, remainder: p.remainder! },
        dependsOn: [keys.server(server), parent],
      });
    }
  }
  const write = writeTriggerFunction(c);
  objects.push(write, shardedUpsertFunction(c, ctx.vectorSchema), upsertBatchFunction(c, ctx.vectorSchema));
  objects.push({
    ...apiView(c, `SELECT id, embedding, metadata FROM ${qualified(REMOTE_SCHEMA, c.name)}`, keys.relation(REMOTE_SCHEMA, c.name)),
    grantees: [...apiRoles].sort(),
    privileges: 'SELECT',
    writeTrigger: `${write.schema}.${write.name}`,
  } as DbObject);
  objects.push(shardedMatchSqlFunction(c, ctx.vectorSchema), shardedMatchFunction(c, ctx.vectorSchema, apiRoles));
  return objects;
}

const toState = (database: string, role: DatabaseState['role'], objects: DbObject[]): DatabaseState => ({
  database,
  role,
  objects: new Map(objects.map((o) => [o.key, o])),
});

/** Desired state of the primary and of every secondary, in topology order (primary first). */
export function buildDesired(topology: Topology, ctx: DesiredContext): DatabaseState[] {
  return [
    toState('primary', 'primary', primaryObjects(topology, ctx)),
    ...topology.secondaries.map((s) =>
      toState(s.name, 'secondary', [...secondaryObjects(s.name, topology.collections, ctx), ...wrapperRoleObjects(topology, s, ctx)]),
    ),
  ];
}

/** Secrets the executor needs, by placeholder reference: the wrapper passwords (configured, or generated now). */
export function desiredSecrets(topology: Topology): Map<string, string> {
  return fdwSecrets(topology, () => randomBytes(32).toString('base64url'));
}
