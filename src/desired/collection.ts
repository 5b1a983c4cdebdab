/** The objects of one collection's table and views, as both sides describe them: columns, index, view shapes. */
import type { AccessSpec, CollectionSpec, ColumnType, IndexSpec, Metric, TextSearchSpec } from '../config/types.js';
import { type Acl, type Column, type DbObject, INDEX_PREFIX, type IndexObject, type IndexPurpose, keys, PURPOSE_METHOD, VECS_SCHEMA } from '../model/state.js';
import { documentExpression, ownerExpression } from '../model/text-search.js';
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

/** An index's storage parameters as PostgreSQL holds them (reloptions), keys sorted: what an index object compares. */
export const indexParams = (index: Exclude<IndexSpec, { method: 'none' }>): Record<string, string> =>
  index.method === 'hnsw' ? { ef_construction: String(index.efConstruction), m: String(index.m) } : { lists: String(index.lists) };

/** Index name in vecs' pattern; the 7-character suffix is a hash of what defines the index, so plans are stable. */
export function indexName(c: CollectionSpec, index: Exclude<IndexSpec, { method: 'none' }>, table = c.name): string {
  const ops = OPCLASS[c.metric];
  const params = index.method === 'hnsw' ? `hnsw_m${index.m}_efc${index.efConstruction}` : `ivfflat_nl${index.lists}`;
  return `ix_${ops}_${params}_${shortHash(`${table}/${ops}/${params}`)}`;
}

/**
 * The name of `table`'s full-text index: `ix_text_<language>_<7 hex>`, the hash over the table, the language and the
 * source key, so a new language or source is a new index (and names are unique in vecs). Never `ix_vector…` (vecs
 * would take it for its vector index); at most 8 + 10 + 1 + 7 bytes, the longest language being 10.
 */
export const textIndexName = (table: string, text: TextSearchSpec): string =>
  `${INDEX_PREFIX.text}${text.language}_${shortHash(`${table}/${text.language}/${text.source}`)}`;

/** The name of `table`'s owner index: `ix_owner_<7 hex>`, the hash over the table and the owner key. */
export const ownerIndexName = (table: string, access: AccessSpec): string => `${INDEX_PREFIX.owner}${shortHash(`${table}/${access.ownerKey}`)}`;

/** A metadata index of a vecs table: an expression index, built like the vector index (CONCURRENTLY on a live table). */
function metadataIndex(table: string, purpose: IndexPurpose, name: string, expression: string): IndexObject {
  return {
    kind: 'index',
    key: keys.index(VECS_SCHEMA, table, purpose),
    managed: true,
    schema: VECS_SCHEMA,
    table,
    name,
    method: PURPOSE_METHOD[purpose],
    column: '',
    opclass: '',
    params: {},
    valid: true,
    expression,
    dependsOn: [keys.relation(VECS_SCHEMA, table)],
  };
}

/** A metadata key as a typed view column, NULL where the value does not fit the type (src/sql/metadata-cast.ts). */
export const extractExpression = (name: string, type: ColumnType): string => `${metadataValue(name, type)} AS ${ident(name)}`;

/**
 * A collection table in `vecs` and its indexes (vector; full text with `text:`; owner with `access:`): a collection,
 * or one partition of one. The metadata indexes add nothing to the table: vecs sees the same three columns.
 */
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
  // NOTE: the expressions are the query path's own (src/model/text-search.ts): PostgreSQL uses an expression index
  // only for the identical expression.
  if (c.text) objects.push(metadataIndex(table, 'text', textIndexName(table, c.text), documentExpression(c.text)));
  if (c.access) objects.push(metadataIndex(table, 'owner', ownerIndexName(table, c.access), ownerExpression(c.access)));
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
