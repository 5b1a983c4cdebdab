/**
 * `vecscale types`: TypeScript types for the primary's API, from the topology alone (no connection). Pure and
 * deterministic: the same topology gives the same bytes, so the file can be committed and checked in CI.
 *
 * Two flavours, one file:
 * - Kysely: `VecscaleDB`, one table per `public.<c>` view, for `new Kysely<VecscaleDB>(…)`. Extracted columns are
 *   computed from metadata on the secondary: selectable (and nullable), never insertable or updatable.
 * - supabase-js: `Database`, the shape `supabase gen types typescript` writes (`public.Views.<c>`,
 *   `public.Functions.match_<c>` / `upsert_<c>`), for `createClient<Database>()`; mergeable with a project's own.
 *
 * What travels how, as `pg` and supabase-js return it: a vector is text (`'[1,2,3]'`), `bigint` and `numeric` are
 * strings, `date` and the timestamps are `Date` through `pg` and strings through PostgREST (JSON), `jsonb` is parsed.
 */
import type { CollectionSpec, ColumnType, Topology } from '../config/types.js';
import { ITERATIVE_SCAN_MODES, QUERY_SETTING_BOUNDS } from '../config/types.js';
import { byCodePoint } from '../util/fingerprint.js';

export type Flavor = 'kysely' | 'supabase' | 'both';
export const FLAVORS: readonly Flavor[] = ['kysely', 'supabase', 'both'];

/** A column's TypeScript type as read through `pg` (Kysely) and through PostgREST's JSON (supabase-js). */
const COLUMN_TS: Readonly<Record<ColumnType, { pg: string; json: string }>> = {
  text: { pg: 'string', json: 'string' },
  integer: { pg: 'number', json: 'number' },
  smallint: { pg: 'number', json: 'number' },
  bigint: { pg: 'string', json: 'number' },
  numeric: { pg: 'string', json: 'number' },
  real: { pg: 'number', json: 'number' },
  'double precision': { pg: 'number', json: 'number' },
  boolean: { pg: 'boolean', json: 'boolean' },
  date: { pg: 'Date', json: 'string' },
  'timestamp without time zone': { pg: 'Date', json: 'string' },
  'timestamp with time zone': { pg: 'Date', json: 'string' },
  uuid: { pg: 'string', json: 'string' },
  jsonb: { pg: 'Json', json: 'Json' },
};

/** A property name as TypeScript needs it written (collection and column names are lowercase identifiers). */
const prop = (name: string): string => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name));

const sorted = (t: Topology): CollectionSpec[] => [...t.collections].sort((a, b) => byCodePoint(a.name, b.name));

const COMMON = `/** JSON as PostgreSQL's jsonb holds it. */
export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

/**
 * A vector as it travels: pgvector's text form, \`'[1,2,3]'\`. \`pg\` and supabase-js both read a vector column as this
 * string, and take one (or, for supabase-js \`rpc()\` arguments, the number array) as input: see parseVector and
 * formatVector below.
 */
export type VectorText = string;

/** A value vecs' filter operators compare with. */
export type FilterValue = string | number | boolean;

/** vecs' comparison operators. */
export type FilterOperator = '$eq' | '$ne' | '$lt' | '$lte' | '$gt' | '$gte' | '$in' | '$contains';
/** Exactly one operator: \`K\`, with \`V\`. */
type OneOperator<K extends FilterOperator, V> = { [P in K]: V } & { [P in Exclude<FilterOperator, K>]?: never };
/** One metadata key's condition in vecs' filter language (\`{ "year": { "$gt": 2010 } }\`): one operator. */
export type FieldFilter =
  | OneOperator<'$eq', FilterValue | null | Json[] | { [key: string]: Json | undefined }>
  | OneOperator<'$ne', FilterValue | null | Json[] | { [key: string]: Json | undefined }>
  | OneOperator<'$lt', FilterValue>
  | OneOperator<'$lte', FilterValue>
  | OneOperator<'$gt', FilterValue>
  | OneOperator<'$gte', FilterValue>
  | OneOperator<'$in', FilterValue[]>
  | OneOperator<'$contains', FilterValue>;

/**
 * A filter in vecs' language, as match_<c> takes it: a metadata key and its condition, or \`$and\` / \`$or\` of
 * filters. An unknown operator does not type-check (the database refuses it too). vecs wants one key per level: write
 * several with \`$and\`.
 */
export type Filter = { $and: Filter[] } | { $or: Filter[] } | { [key: string]: FieldFilter };

/** Per-call search settings of match_<c> (NULL or absent: the collection's own from the topology). */
export interface SearchSettings {
  /** hnsw.ef_search, ${QUERY_SETTING_BOUNDS.efSearch.min}–${QUERY_SETTING_BOUNDS.efSearch.max}. */
  ef_search?: number | null;
  /** ivfflat.probes, ${QUERY_SETTING_BOUNDS.probes.min}–${QUERY_SETTING_BOUNDS.probes.max}. */
  probes?: number | null;
  /** hnsw.iterative_scan. */
  iterative_scan?: ${[...ITERATIVE_SCAN_MODES].sort(byCodePoint).map((m) => `'${m}'`).join(' | ')} | null;
}

/** A vector's text form (\`'[1,2,3]'\`, as \`pg\` and supabase-js return it) as numbers. */
export function parseVector(text: VectorText): number[] {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) throw new TypeError(\`not a vector: \${JSON.stringify(text.slice(0, 40))}\`);
  const inner = t.slice(1, -1).trim();
  if (inner === '') return [];
  return inner.split(',').map((x) => {
    const n = Number(x);
    if (x.trim() === '' || !Number.isFinite(n)) throw new TypeError(\`not a vector: \${JSON.stringify(text.slice(0, 40))}\`);
    return n;
  });
}

/** Numbers as a vector's text form, for a parameter (\`'[1,2,3]'\`); every number must be finite. */
export function formatVector(values: readonly number[]): VectorText {
  for (const [i, v] of values.entries()) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(\`vector[\${i}] is not a finite number\`);
  }
  return \`[\${values.join(',')}]\`;
}
`;

function kysely(t: Topology, typeName: (collection: string) => string): string {
  const tables = sorted(t).map((c) => {
    const cols = c.columns.map((x) => `  /** metadata->'${x.name}' as ${x.type}, NULL when absent or not of that type; read-only (write metadata). */\n  ${prop(x.name)}: ColumnType<${COLUMN_TS[x.type].pg} | null, never, never>;`);
    return `/** public.${c.name}: collection ${c.name} (${c.shards === undefined ? `on ${c.secondary}` : `sharded over ${c.shards.join(', ')}`}, vector(${c.dimension}), ${c.metric}). */
export interface ${typeName(c.name)}Table {
  id: string;
  embedding: VectorText;
  /** Defaults to {} on insert. */
  metadata: ColumnType<Json, Json | undefined, Json>;
${cols.join('\n')}${cols.length ? '\n' : ''}}`;
  });
  const db = sorted(t).map((c) => `  ${prop(c.name)}: ${typeName(c.name)}Table;`);
  const rows = sorted(t).map((c) => `/** A row of match_${c.name}(…), as \`pg\` returns it: nearest first. */
export interface ${typeName(c.name)}Match {
  id: string;
  metadata: Json;
  distance: number;
${c.columns.map((x) => `  ${prop(x.name)}: ${COLUMN_TS[x.type].pg} | null;\n`).join('')}}`);
  return `// ---- Kysely ----------------------------------------------------------------------------------------------------

/** Kysely's column type: what a select returns, an insert takes, an update takes (\`never\`: not writable). */
export type ColumnType<S, I = S, U = S> = { readonly __select__: S; readonly __insert__: I; readonly __update__: U };

${tables.join('\n\n')}

/** The primary's API for \`new Kysely<VecscaleDB>(…)\`: one table per collection view. */
export interface VecscaleDB {
${db.join('\n')}
}

${rows.join('\n\n')}

/** The collections and what match_<c> returns for each. */
export interface VecscaleMatches {
${sorted(t).map((c) => `  ${prop(c.name)}: ${typeName(c.name)}Match;`).join('\n')}
}
`;
}

function supabase(t: Topology): string {
  const views = sorted(t).map((c) => {
    const row = [
      'id: string | null',
      'embedding: string | null',
      'metadata: Json | null',
      ...c.columns.map((x) => `${prop(x.name)}: ${COLUMN_TS[x.type].json} | null`),
    ];
    const insert = ['id?: string | null', 'embedding?: string | null', 'metadata?: Json | null'];
    return `      ${prop(c.name)}: {
        Row: {
${row.map((r) => `          ${r}`).join('\n')}
        }
        Insert: {
${insert.map((r) => `          ${r}`).join('\n')}
        }
        Update: {
${insert.map((r) => `          ${r}`).join('\n')}
        }
        Relationships: []
      }`;
  });
  // The per-call search settings both match_<c> and hybrid_<c> take.
  const SETTINGS_ARGS = `          ef_search?: number | null
          probes?: number | null
          iterative_scan?: ${[...ITERATIVE_SCAN_MODES].sort(byCodePoint).map((m) => `'${m}'`).join(' | ')} | null`;
  const functions = sorted(t).flatMap((c) => [
    `      ${prop(`match_${c.name}`)}: {
        Args: {
          query_embedding: string | number[]
          match_count?: number
          filter?: Filter
${SETTINGS_ARGS}
        }
        Returns: {
          id: string
          metadata: Json
          distance: number
${c.columns.map((x) => `          ${prop(x.name)}: ${COLUMN_TS[x.type].json} | null\n`).join('')}        }[]
      }`,
    ...(c.text === undefined
      ? []
      : [
          `      ${prop(`hybrid_${c.name}`)}: {
        Args: {
          query_text: string
          query_embedding: string | number[]
          match_count?: number
          filter?: Filter
          full_text_weight?: number
          semantic_weight?: number
          rrf_k?: number
${SETTINGS_ARGS}
        }
        Returns: {
          id: string
          metadata: Json
${c.columns.map((x) => `          ${prop(x.name)}: ${COLUMN_TS[x.type].json} | null
`).join('')}          score: number
          full_text_rank: number | null
          semantic_rank: number | null
        }[]
      }`,
        ]),
    `      ${prop(`upsert_${c.name}`)}: {
        Args:
          | { id: string; embedding: string | number[]; metadata?: Json }
          | { rows: { id: string; embedding: string | number[]; metadata?: Json }[] }
        Returns: undefined
      }`,
  ]);
  return `// ---- supabase-js ------------------------------------------------------------------------------------------------

/** The primary's API in the shape \`supabase gen types typescript\` writes, for \`createClient<Database>()\`. */
export type Database = {
  public: {
    Tables: { [_ in never]: never }
    Views: {
${views.join('\n')}
    }
    Functions: {
${functions.join('\n')}
    }
    Enums: { [_ in never]: never }
    CompositeTypes: { [_ in never]: never }
  }
}

/**
 * A project's own generated \`Database\` (\`supabase gen types typescript\`) with vecscale's views and functions in its
 * public schema: \`createClient<WithVecscale<ProjectDatabase>>()\`. vecscale's definitions replace the project's of
 * the same name (its generator sees match_<c>'s vector argument as a string only, and the views' columns untyped).
 */
export type WithVecscale<D extends { public: { Views: object; Functions: object } }> = Omit<D, 'public'> & {
  public: Omit<D['public'], 'Views' | 'Functions'> & {
    Views: Omit<D['public']['Views'], keyof Database['public']['Views']> & Database['public']['Views']
    Functions: Omit<D['public']['Functions'], keyof Database['public']['Functions']> & Database['public']['Functions']
  }
}
`;
}

/** `docs` → `Docs`, `my_docs` → `MyDocs`; a name that would collide with another's (`a__b`, `a_b`) keeps its own spelling. */
function typeNames(t: Topology): Map<string, string> {
  const pascal = (n: string) => n.split('_').filter(Boolean).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
  const count = new Map<string, number>();
  for (const c of t.collections) count.set(pascal(c.name), (count.get(pascal(c.name)) ?? 0) + 1);
  return new Map(t.collections.map((c) => [c.name, pascal(c.name) !== '' && count.get(pascal(c.name)) === 1 ? pascal(c.name) : `Collection_${c.name}`]));
}


/** The generated file: the common types, then the flavours asked for. */
export function generateTypes(t: Topology, flavor: Flavor): string {
  const names = typeNames(t);
  const typeName = (collection: string): string => names.get(collection)!;
  const parts = [
    `// Generated by \`vecscale types\` from the topology (${t.collections.length} collection${t.collections.length === 1 ? '' : 's'}). Do not edit: run it again.\n/* eslint-disable */\n`,
    COMMON,
    ...(flavor !== 'supabase' ? [kysely(t, typeName)] : []),
    ...(flavor !== 'kysely' ? [supabase(t)] : []),
  ];
  return parts.join('\n');
}
