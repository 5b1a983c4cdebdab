/**
 * Schema-qualified type names for the SQL vecscale writes into function bodies and the statements they build: a
 * name resolved through a search path could be someone's domain (see src/query/function-object.ts).
 */
import type { ColumnType } from '../config/types.js';
import { ident } from './quote.js';

export const T = {
  text: 'pg_catalog.text',
  textArray: 'pg_catalog.text[]',
  jsonb: 'pg_catalog.jsonb',
  jsonpath: 'pg_catalog.jsonpath',
  int4: 'pg_catalog.int4',
  int8: 'pg_catalog.int8',
  float8: 'pg_catalog.float8',
  varchar: 'pg_catalog.varchar',
  bool: 'pg_catalog.bool',
  record: 'pg_catalog.record',
  interval: 'pg_catalog.interval',
  void: 'pg_catalog.void',
  trigger: 'pg_catalog.trigger',
} as const;

/** pgvector's type in the schema it lives in, with a dimension when given. */
export const vectorType = (schema: string, dimension?: number): string =>
  `${ident(schema)}.vector${dimension === undefined ? '' : `(${dimension})`}`;

/** A column type of the topology, by its pg_catalog name. */
export const COLUMN_TYPE_SQL: Readonly<Record<ColumnType, string>> = {
  text: 'pg_catalog.text',
  integer: 'pg_catalog.int4',
  bigint: 'pg_catalog.int8',
  smallint: 'pg_catalog.int2',
  numeric: 'pg_catalog.numeric',
  real: 'pg_catalog.float4',
  'double precision': 'pg_catalog.float8',
  boolean: 'pg_catalog.bool',
  date: 'pg_catalog.date',
  'timestamp without time zone': 'pg_catalog."timestamp"',
  'timestamp with time zone': 'pg_catalog.timestamptz',
  uuid: 'pg_catalog.uuid',
  jsonb: 'pg_catalog.jsonb',
};
