/**
 * The primary's desired state: the extensions and private schemas, a foreign server and user mapping per settings
 * profile of each secondary, and per collection the foreign tables (read and write), the API view public.<c> and the
 * functions of the query and write paths. Every object's ACL comes from ./access.ts.
 */
import type { CollectionSpec, QuerySettings, ShardedCollection, Topology } from '../config/types.js';
import { partsOf } from '../model/placement.js';
import { API_SCHEMA, BATCHED, type DbObject, HELPER_SCHEMA, keys, REMOTE_SCHEMA, SECONDARY_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { filterFunction } from '../query/filter-function.js';
import { type FanOutContext, matchSqlCall, searchFunction, withSlots } from '../query/fan-out.js';
import { matchFunction, matchSqlFunction } from '../query/match-function.js';
import { shardedMatchSqlFunction } from '../query/sharded.js';
import { accessFunctions, ownedRowsCondition } from '../query/access.js';
import { hybridFunction, hybridSearchFunction, type TextCollection, textSqlFunction } from '../query/hybrid.js';
import { upsertBatchFunction, upsertFunction, upsertTarget, writeTriggerFunction } from '../query/write-functions.js';
import { ident, qualified } from '../sql/quote.js';
import { byCodePoint, shortHash } from '../util/fingerprint.js';
import { PrimaryAccess } from './access.js';
import { col, collectionView, exposedColumns } from './collection.js';
import type { DesiredContext } from './index.js';
import { hasReplicas, queryProfiles, serverFor, serverObjects, writeServerFor, writeServerOf } from './servers.js';

/** A fingerprint of a foreign server's options (search_<c> names its dblink connections with it). */
type Fingerprints = (server: string) => string;

/**
 * The desired context, plus where a secondary's writes go (its write server when it has standbys) and, for a read
 * server of a secondary with standbys, the write server fresh reads use instead (search_<c>, `vecscale.read_from`).
 */
type PrimaryContext = DesiredContext & {
  readonly topology: Topology;
  readonly writeServer: (secondary: string, q: QuerySettings) => string;
  readonly freshTarget: (server: string) => { server: string; fingerprint: string } | undefined;
};

/** public.<c> over the foreign table (or partitioned table) that reads the collection, with its write trigger. */
function apiView(c: CollectionSpec, columns: readonly string[], access: PrimaryAccess, writeTrigger: string, topology: Topology): DbObject {
  // Owned rows: only the caller's, unless it is trusted with all (the condition is shipped to the secondary).
  const where = c.access === undefined ? '' : ` WHERE ${ownedRowsCondition(c.access, topology)}`;
  return {
    ...collectionView(API_SCHEMA, c.name, c, `SELECT ${columns.map(ident).join(', ')} FROM ${qualified(REMOTE_SCHEMA, c.name)}${where}`, [keys.relation(REMOTE_SCHEMA, c.name)], access.apiView()),
    writeTrigger: `${writeTrigger}${BATCHED}`,
  } as DbObject;
}

/** A collection on one secondary: read and write foreign tables, the API view, match_/search_/upsert_ functions. */
function placedObjects(c: CollectionSpec & { secondary: string }, access: PrimaryAccess, ctx: PrimaryContext, fingerprint: Fingerprints): DbObject[] {
  const server = serverFor(c.secondary, c.query);
  const writeServer = ctx.writeServer(c.secondary, c.query);
  const columns = exposedColumns(c);
  const write = writeTriggerFunction(c, ctx.vectorSchema);
  // With standbys, vecscale_remote.<c> reads from one: upsert_<c> inserts into the secondary's view through the
  // write server instead (vecscale.<c> here, a foreign table over vecscale.<c> there).
  const replicated = writeServer !== server;
  const upsertInto = replicated ? qualified(HELPER_SCHEMA, c.name) : upsertTarget(c);
  const upsertTable: DbObject[] = !replicated ? [] : [{
    kind: 'foreign_table',
    key: keys.relation(HELPER_SCHEMA, c.name),
    managed: true,
    schema: HELPER_SCHEMA,
    name: c.name,
    server: writeServer,
    options: { schema_name: SECONDARY_SCHEMA, table_name: c.name },
    columns,
    columnOptions: {},
    acl: access.upsertTable(),
    dependsOn: [keys.server(writeServer), keys.schema(HELPER_SCHEMA)],
  }];
  return [
    {
      kind: 'foreign_table',
      key: keys.relation(REMOTE_SCHEMA, c.name),
      managed: true,
      schema: REMOTE_SCHEMA,
      name: c.name,
      server,
      options: { schema_name: SECONDARY_SCHEMA, table_name: c.name },
      columns,
      columnOptions: {},
      // upsert_<c> inserts here (without standbys): the secondary's view upserts each row.
      acl: replicated ? access.readTable() : access.readUpsertTable(),
      dependsOn: [keys.server(server), keys.schema(REMOTE_SCHEMA)],
    },
    // Writes: a foreign table over vecs.<c> itself (the read shape has computed columns postgres_fdw cannot insert).
    {
      kind: 'foreign_table',
      key: keys.relation(WRITE_SCHEMA, c.name),
      managed: true,
      schema: WRITE_SCHEMA,
      name: c.name,
      server: writeServer,
      options: { schema_name: VECS_SCHEMA, table_name: c.name },
      columns: [
        col('id', 'character varying'),
        col('embedding', `vector(${c.dimension})`),
        // Remote defaults do not apply through postgres_fdw: the default has to be here.
        col('metadata', 'jsonb', false, "'{}'::jsonb"),
      ],
      columnOptions: { embedding: ['column_name=vec'] },
      acl: access.writeTable(),
      dependsOn: [keys.server(writeServer), keys.schema(WRITE_SCHEMA)],
    },
    ...upsertTable,
    write,
    upsertFunction(c, ctx.vectorSchema, access.writeFunction(), upsertInto),
    upsertBatchFunction(c, ctx.vectorSchema, access.writeFunction(), upsertInto),
    apiView(c, columns.map((x) => x.name), access, `${write.schema}.${write.name}`, ctx.topology),
    matchSqlFunction(c, ctx.vectorSchema),
    searchFunction(c, { ...ctx, targets: withSlots([{ server, fingerprint: fingerprint(server), secondary: c.secondary }]), statements: matchSqlCall(c) }, access.readFunction()),
    matchFunction(c, ctx.vectorSchema, access.readFunction()),
    ...hybridObjects(c, { ...ctx, targets: withSlots([{ server, fingerprint: fingerprint(server), secondary: c.secondary }]) }, access),
  ];
}

/**
 * A sharded collection (see src/query/sharded.ts): vecscale_remote.<c> hash-partitioned by id over foreign tables on
 * the shards' partition views (the extracted columns computed there; public.<c> reads it, upserts insert into it),
 * vecscale_write.<c> likewise over the partition tables themselves (public.<c>'s INSERT/UPDATE/DELETE), and the
 * query/write functions; search_<c> sends to every partition over dblink.
 */
function shardedObjects(c: ShardedCollection, access: PrimaryAccess, ctx: PrimaryContext, fingerprint: Fingerprints): DbObject[] {
  // The vecs columns, as vecs makes them (metadata's default applies to rows inserted through the parent); the
  // read side adds the extracted columns, as the partitions' views on the shards compute them.
  const writeColumns = [
    col('id', 'character varying', true),
    col('embedding', `vector(${c.dimension})`, true),
    col('metadata', 'jsonb', true, "'{}'::jsonb"),
  ];
  const readColumns = [...writeColumns, ...c.columns.map((x) => col(x.name, x.type))];
  const objects: DbObject[] = [];
  const parts = partsOf(c);
  const target = (server: string, secondary: string) => ({ server, fingerprint: fingerprint(server), secondary });
  for (const schema of [REMOTE_SCHEMA, WRITE_SCHEMA]) {
    const parent = keys.relation(schema, c.name);
    const reads = schema === REMOTE_SCHEMA;
    const columns = reads ? readColumns : writeColumns;
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
      acl: reads ? access.readUpsertTable() : access.writeTable(),
      dependsOn: [keys.schema(schema)],
    });
    for (const p of parts) {
      // A secondary with standbys: through its write server, both (public.<c>'s trigger writes to vecscale_write.<c>).
      const server = ctx.writeServer(p.secondary, c.query);
      objects.push({
        kind: 'foreign_table',
        key: keys.relation(schema, p.table),
        managed: true,
        schema,
        name: p.table,
        server,
        // Reads and upserts go to the partition's view (typed columns; INSTEAD OF … ON CONFLICT), plain writes to the table.
        options: reads ? { schema_name: SECONDARY_SCHEMA, table_name: p.table } : { schema_name: VECS_SCHEMA, table_name: p.table },
        columns: columns.map((x) => ({ ...x, notNull: false, default: null })),
        columnOptions: reads ? {} : { embedding: ['column_name=vec'] },
        partition: { parent: `${schema}.${c.name}`, modulus: p.modulus!, remainder: p.remainder! },
        // Through the parent, only the parent's privileges count; `vecscale check` reads the partitions by name.
        acl: reads ? access.readTable() : {},
        dependsOn: [keys.server(server), parent],
      });
    }
  }
  const write = writeTriggerFunction(c, ctx.vectorSchema);
  objects.push(
    write,
    upsertFunction(c, ctx.vectorSchema, access.writeFunction()),
    upsertBatchFunction(c, ctx.vectorSchema, access.writeFunction()),
    apiView(c, readColumns.map((x) => x.name), access, `${write.schema}.${write.name}`, ctx.topology),
    shardedMatchSqlFunction(c, ctx.vectorSchema),
    searchFunction(c, { ...ctx, targets: withSlots(parts.map((p) => target(serverFor(p.secondary, c.query), p.secondary))), statements: matchSqlCall(c) }, access.readFunction()),
    matchFunction(c, ctx.vectorSchema, access.readFunction()),
    ...hybridObjects(c, { ...ctx, targets: withSlots(parts.map((p) => target(serverFor(p.secondary, c.query), p.secondary))) }, access),
  );
  return objects;
}

/** A collection with text: hybrid_<c>, its private half (the same targets as search_<c>'s) and its statement builder. */
function hybridObjects(c: CollectionSpec, ctx: Omit<FanOutContext, 'statements'>, access: PrimaryAccess): DbObject[] {
  if (c.text === undefined) return [];
  const t = c as TextCollection;
  return [textSqlFunction(t, ctx.vectorSchema), hybridSearchFunction(t, ctx, access.readFunction()), hybridFunction(t, ctx.vectorSchema, access.readFunction())];
}

/** An extension in vecscale's schema is its owner's only; elsewhere its ACL is not vecscale's (see the blockers). */
const ownerOnly = (schema: string | undefined): { grants?: readonly string[] } => (schema === undefined || schema === HELPER_SCHEMA ? { grants: [] } : {});

export function primaryObjects(topology: Topology, ctx: DesiredContext): DbObject[] {
  const access = new PrimaryAccess(topology);
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    // vecscale's own extensions go to its private schema, never an API schema, and are their owner's only: search_<c>
    // keeps a dblink connection as the owner in the session, and any role that could call dblink() could use it.
    { kind: 'extension', key: keys.extension('postgres_fdw'), managed: false, name: 'postgres_fdw', schema: HELPER_SCHEMA, ...ownerOnly(ctx.fdwSchema) },
    { kind: 'extension', key: keys.extension('dblink'), managed: false, name: 'dblink', schema: ctx.dblinkSchema, ...ownerOnly(ctx.dblinkSchema) },
    { kind: 'schema', key: keys.schema(REMOTE_SCHEMA), managed: true, name: REMOTE_SCHEMA, acl: access.readSchema() },
    { kind: 'schema', key: keys.schema(HELPER_SCHEMA), managed: true, name: HELPER_SCHEMA, acl: access.readSchema() },
    { kind: 'schema', key: keys.schema(WRITE_SCHEMA), managed: true, name: WRITE_SCHEMA, acl: access.writeSchema() },
    // Only match_sql_<c> calls it, as search_<c>'s owner.
    filterFunction({}),
    // Owned rows: who the caller is, and its claim (src/query/access.ts).
    ...accessFunctions(topology, access.readFunction()),
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  const servers = new Map<string, DbObject[]>();
  for (const s of topology.secondaries) {
    for (const q of queryProfiles(topology, s.name)) servers.set(serverFor(s.name, q), serverObjects(s, q, ctx.fdwPasswords?.get(s.name)));
    if (!hasReplicas(s)) continue;
    for (const q of queryProfiles(topology, s.name)) servers.set(writeServerFor(s.name, q), serverObjects(s, q, ctx.fdwPasswords?.get(s.name), true));
  }
  objects.push(...[...servers.values()].flat());
  const fingerprint: Fingerprints = (name) => {
    const server = servers.get(name)?.find((o) => o.kind === 'server');
    return shortHash(JSON.stringify(server?.kind === 'server' ? server.options : {}));
  };
  const specs = new Map(topology.secondaries.map((s) => [s.name, s]));
  // Each read server of a secondary with standbys, and its write server.
  const freshServers = new Map(topology.secondaries.filter(hasReplicas).flatMap((s) =>
    queryProfiles(topology, s.name).map((q) => [serverFor(s.name, q), writeServerFor(s.name, q)] as const)));
  const pctx: PrimaryContext = {
    ...ctx,
    topology,
    writeServer: (secondary, q) => {
      const spec = specs.get(secondary);
      return spec === undefined ? serverFor(secondary, q) : writeServerOf(spec, q);
    },
    freshTarget: (server) => {
      const fresh = freshServers.get(server);
      return fresh === undefined ? undefined : { server: fresh, fingerprint: fingerprint(fresh) };
    },
  };
  for (const c of topology.collections) {
    objects.push(...(c.shards !== undefined ? shardedObjects(c, access, pctx, fingerprint) : placedObjects(c, access, pctx, fingerprint)));
  }
  return objects;
}
