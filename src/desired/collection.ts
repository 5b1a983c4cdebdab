/** The objects of one collection's table and views, as both sides describe them: columns, index, view shapes. */
import type { CollectionSpec, ColumnType, IndexSpec, Metric } from '../config/types.js';
import { type Acl, type Column, type DbObject, keys, VECS_SCHEMA } from '../model/state.js';
import { metadataValue } from '../sql/metadata-cast.js';
import { ident } from '../sql/quote.js';
import { md5, shortHash } from '../util/fingerprint.js';

export const OPCLASS: Readonly<Record<Metric, string>> = {
  cosine: 'vector_cosine_ops',
  l2: 'vector_l2_ops',
  inner_product: 'vector_ip_ops',
};

/** Every view vecscale creates runs with its caller's privileges, never its owner's. */
export const VIEW_OPTIONS: readonly string[] = ['security_invoker=true'];

export const col = (name: string, type: string, notNull = false, def: string | null = null): Column => ({
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
/** An index's storage parameters as PostgreSQL holds them (reloptions), keys sorted: what an index object compares. */
export const indexParams = (index: Exclude<IndexSpec, { method: 'none' }>): Record<string, string> =>
  index.method === 'hnsw' ? { ef_construction: String(index.efConstruction), m: String(index.m) } : { lists: String(index.lists) };

export function indexName(c: CollectionSpec, index: Exclude<IndexSpec, { method: 'none' }>, table = c.name): string {
  const ops = OPCLASS[c.metric];
  const params = index.method === 'hnsw' ? `hnsw_m${index.m}_efc${index.efConstruction}` : `ivfflat_nl${index.lists}`;
  return `ix_${ops}_${params}_${shortHash(`${table}/${ops}/${params}`)}`;
}

/** A metadata key as a typed view column, NULL where the value does not fit the type (src/sql/metadata-cast.ts). */
export const extractExpression = (name: string, type: ColumnType): string => `${metadataValue(name, type)} AS ${ident(name)}`;

/** A collection table in `vecs` and its vector index: a collection, or one partition of one. */
export function tableObjects(c: CollectionSpec, table: string, acl: Acl): DbObject[] {
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
      acl,
    },
  ];
  if (c.index.method !== 'none') {
    const params = indexParams(c.index);
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
      build: { dimension: c.dimension, settings: c.index.build ?? {} },
      dependsOn: [keys.relation(VECS_SCHEMA, table)],
    });
  }
  return objects;
}

/** A view of a collection's columns (`security_invoker`), over `dependsOn`. */
export const collectionView = (schema: string, name: string, c: CollectionSpec, query: string, dependsOn: string[], acl: Acl): DbObject => ({
  kind: 'view',
  key: keys.relation(schema, name),
  managed: true,
  schema,
  name,
  columns: exposedColumns(c),
  query,
  queryMd5: md5(query),
  definitionIntact: true,
  materialized: false,
  options: VIEW_OPTIONS,
  acl,
  dependsOn,
});
