/**
 * Topology → desired state of every database. Pure: the only live inputs (where pgvector sits, which role the
 * primary connection is) arrive as a resolved context.
 */
import type { CollectionSpec, ColumnType, IndexSpec, Metric, Topology } from './config/types.js';
import { ident, literal, qualified } from './sql/quote.js';
import {
  API_SCHEMA,
  type Column,
  type DatabaseState,
  type DbObject,
  keys,
  REMOTE_SCHEMA,
  VECS_SCHEMA,
} from './model/state.js';
import { secretFingerprint, shortHash } from './util/fingerprint.js';
import { parsePgUrl } from './util/url.js';

export interface DesiredContext {
  /** Schema holding (or to hold) pgvector on every database. */
  readonly vectorSchema: string;
  /** The role the primary connection runs as: the user mapping is for it. */
  readonly primaryRole: string;
}

export const OPCLASS: Readonly<Record<Metric, string>> = {
  cosine: 'vector_cosine_ops',
  l2: 'vector_l2_ops',
  inner_product: 'vector_ip_ops',
};

/** Placeholder reference for a secondary's password in the user mapping (resolved only by the executor). */
export const mappingPasswordRef = (secondary: string): string => `${secondary}.password`;

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
export function indexName(c: CollectionSpec, index: Exclude<IndexSpec, { method: 'none' }>): string {
  const ops = OPCLASS[c.metric];
  const params = index.method === 'hnsw' ? `hnsw_m${index.m}_efc${index.efConstruction}` : `ivfflat_nl${index.lists}`;
  return `ix_${ops}_${params}_${shortHash(`${c.name}/${ops}/${params}`)}`;
}

function extractExpression(name: string, type: ColumnType): string {
  // ->> yields text, cast to the declared type (a type from the closed COLUMN_TYPES list); jsonb keeps the value.
  return type === 'jsonb'
    ? `(metadata -> ${literal(name)}) AS ${ident(name)}`
    : `((metadata ->> ${literal(name)})::${type}) AS ${ident(name)}`;
}

/** `public.<collection>`: on a secondary over the vecs table, on the primary over the foreign table. */
const apiView = (c: CollectionSpec, query: string, source: string): DbObject => ({
  kind: 'view',
  key: keys.relation(API_SCHEMA, c.name),
  managed: true,
  schema: API_SCHEMA,
  name: c.name,
  columns: exposedColumns(c),
  query,
  definitionIntact: true,
  materialized: false,
  options: [],
  dependsOn: [source],
});

function secondaryObjects(collections: readonly CollectionSpec[], ctx: DesiredContext): DbObject[] {
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    { kind: 'schema', key: keys.schema(VECS_SCHEMA), managed: false, name: VECS_SCHEMA },
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  for (const c of collections) {
    objects.push({
      kind: 'table',
      key: keys.relation(VECS_SCHEMA, c.name),
      managed: true,
      schema: VECS_SCHEMA,
      name: c.name,
      columns: collectionColumns(c),
      primaryKey: ['id'],
      ordinary: true,
    });
    if (c.index.method !== 'none') {
      const params: Record<string, string> =
        c.index.method === 'hnsw'
          ? { ef_construction: String(c.index.efConstruction), m: String(c.index.m) }
          : { lists: String(c.index.lists) };
      objects.push({
        kind: 'index',
        key: keys.index(VECS_SCHEMA, c.name),
        managed: true,
        schema: VECS_SCHEMA,
        table: c.name,
        name: indexName(c, c.index),
        method: c.index.method,
        column: 'vec',
        opclass: OPCLASS[c.metric],
        params,
        valid: true,
        dependsOn: [keys.relation(VECS_SCHEMA, c.name)],
      });
    }
    const select = [
      'id',
      'vec AS embedding',
      'metadata',
      ...c.columns.map((x) => extractExpression(x.name, x.type)),
    ];
    objects.push(apiView(c, `SELECT ${select.join(', ')} FROM ${qualified(VECS_SCHEMA, c.name)}`, keys.relation(VECS_SCHEMA, c.name)));
  }
  return objects;
}

function primaryObjects(topology: Topology, ctx: DesiredContext): DbObject[] {
  const objects: DbObject[] = [
    { kind: 'extension', key: keys.extension('vector'), managed: false, name: 'vector', schema: ctx.vectorSchema },
    { kind: 'extension', key: keys.extension('postgres_fdw'), managed: false, name: 'postgres_fdw', schema: ctx.vectorSchema },
    { kind: 'schema', key: keys.schema(REMOTE_SCHEMA), managed: true, name: REMOTE_SCHEMA },
  ];
  if (ctx.vectorSchema !== API_SCHEMA) {
    objects.push({ kind: 'schema', key: keys.schema(ctx.vectorSchema), managed: false, name: ctx.vectorSchema });
  }
  for (const s of topology.secondaries) {
    const url = parsePgUrl(s.url);
    const options: Record<string, string> = {
      dbname: url.database,
      // Without it postgres_fdw ships no pgvector operator, so every kNN query pulls the whole collection.
      extensions: 'vector',
      host: url.host,
      port: String(url.port),
    };
    if (url.sslmode) options.sslmode = url.sslmode;
    objects.push({ kind: 'server', key: keys.server(s.name), managed: true, name: s.name, wrapper: 'postgres_fdw', options });
    const mapping: Record<string, string> = { user: url.user };
    if (url.password !== undefined) mapping.password = secretFingerprint(url.password);
    objects.push({
      kind: 'user_mapping',
      key: keys.userMapping(s.name, ctx.primaryRole),
      managed: true,
      server: s.name,
      role: ctx.primaryRole,
      options: mapping,
      ...(url.password !== undefined ? { passwordRef: mappingPasswordRef(s.name) } : {}),
      dependsOn: [keys.server(s.name)],
    });
  }
  for (const c of topology.collections) {
    const columns = exposedColumns(c);
    objects.push({
      kind: 'foreign_table',
      key: keys.relation(REMOTE_SCHEMA, c.name),
      managed: true,
      schema: REMOTE_SCHEMA,
      name: c.name,
      server: c.secondary,
      options: { schema_name: API_SCHEMA, table_name: c.name },
      columns,
      columnOptions: {},
      dependsOn: [keys.server(c.secondary), keys.schema(REMOTE_SCHEMA)],
    });
    objects.push(
      apiView(c, `SELECT ${columns.map((x) => ident(x.name)).join(', ')} FROM ${qualified(REMOTE_SCHEMA, c.name)}`, keys.relation(REMOTE_SCHEMA, c.name)),
    );
  }
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
      toState(s.name, 'secondary', secondaryObjects(topology.collections.filter((c) => c.secondary === s.name), ctx)),
    ),
  ];
}

/** Secrets the executor needs, by placeholder reference. */
export function desiredSecrets(topology: Topology): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of topology.secondaries) {
    const pw = parsePgUrl(s.url).password;
    if (pw !== undefined) out.set(mappingPasswordRef(s.name), pw);
  }
  return out;
}
