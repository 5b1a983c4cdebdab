/**
 * The topology file, declared once. `parse.ts` walks YAML against this definition and `json-schema.ts` turns it
 * into the editor schema, so the two cannot drift: a key added here is accepted, checked and documented at once.
 */
import { COLUMN_TYPES, type ColumnType, DEFAULT_FDW_USER, DEFAULT_QUERY_SETTINGS, INDEX_BUILD_BOUNDS, ITERATIVE_SCAN_MODES, QUERY_SETTING_BOUNDS, TEXT_SEARCH_LANGUAGES } from './types.js';

/** Most hash partitions a sharded collection may have (names stay within 63 bytes: <collection>_p63of64). */
export const MAX_PARTITIONS = 64;

/** PostgreSQL folds unquoted names to lower case and truncates at 63 bytes; we refuse what would need quoting. */
export const IDENTIFIER_PATTERN = '^[a-z_][a-z0-9_]{0,62}$';
export const IDENTIFIER_RE = new RegExp(IDENTIFIER_PATTERN);
export const IDENTIFIER_HINT = 'a lowercase letter or underscore, then up to 62 lowercase letters, digits or underscores';

interface Common {
  readonly description: string;
  /** A required key must be written; other keys take their `default` or stay absent. */
  readonly required?: boolean;
}

/** A fixed value, e.g. the format version. */
export interface LiteralSchema extends Common { readonly kind: 'literal'; readonly value: number }
export interface IntegerSchema extends Common {
  readonly kind: 'integer';
  readonly min: number;
  readonly max: number;
  readonly default?: number;
}
export interface EnumSchema extends Common {
  readonly kind: 'enum';
  readonly values: readonly string[];
  readonly default?: string;
}
/**
 * A PostgreSQL memory size with its unit (`4GB`, `96MB`; kB, MB, GB, TB, case-sensitive as PostgreSQL reads them),
 * parsed to kB; `min`/`max` in kB. A bare number is refused: PostgreSQL would read it as kB, people as bytes or MB.
 */
export interface MemorySchema extends Common { readonly kind: 'memory'; readonly min: number; readonly max: number }
/** YAML `true` or `false` only: a quoted "yes" or a 1 is a type error, not a guess. */
export interface BooleanSchema extends Common { readonly kind: 'boolean'; readonly default?: boolean }
/**
 * Free text: the only kind `${NAME}` interpolation applies to (names and enums are never taken from the env).
 * `secret` values may also be `file:<path>`, are never echoed in messages, and warn when written literally.
 */
export interface StringSchema extends Common { readonly kind: 'string'; readonly format?: 'postgres-url' | 'secret' }
/** A PostgreSQL name we can use unquoted (see IDENTIFIER_PATTERN). */
export interface IdentifierSchema extends Common {
  readonly kind: 'identifier';
  readonly default?: string;
  /** Names it may not take, each with the reason the message gives; a key ending in `*` is a prefix (`pg_*`). */
  readonly reserved?: { readonly [nameOrPrefix: string]: string };
}
/** A column type: a COLUMN_TYPES name or an alias from COLUMN_TYPE_ALIASES, any case. */
export interface ColumnTypeSchema extends Common { readonly kind: 'column-type' }
export interface ObjectSchema extends Common { readonly kind: 'object'; readonly properties: Properties }
/** A mapping keyed by identifiers; written order is kept. Absent or empty means no entries. */
export interface MapSchema extends Common {
  readonly kind: 'map';
  /** What one key names, for messages ("secondary", "column"). */
  readonly entry: string;
  readonly values: Schema;
}
/** A YAML sequence (flow `[a, b]` or block) of distinct values, kept in written order. Absent or empty means none. */
export interface ListSchema extends Common {
  readonly kind: 'list';
  /** What one item is, for messages ("role"). */
  readonly entry: string;
  readonly items: Schema;
}
/** A mapping whose `tag` key selects which other keys are allowed (index: { method: hnsw, m: 16 }). */
export interface TaggedSchema extends Common {
  readonly kind: 'tagged';
  readonly tag: string;
  readonly tagDescription: string;
  /** Variant used when the tag, or the whole mapping, is not written. */
  readonly default: string;
  /** What the mapping is, for messages ("lists is not a key of an hnsw index"). */
  readonly noun: string;
  readonly variants: { readonly [variant: string]: Properties };
}
export type Schema =
  | LiteralSchema
  | IntegerSchema
  | MemorySchema
  | BooleanSchema
  | EnumSchema
  | StringSchema
  | IdentifierSchema
  | ColumnTypeSchema
  | ObjectSchema
  | MapSchema
  | ListSchema
  | TaggedSchema;
export type Properties = { readonly [key: string]: Schema };

/** Aliases people write for the canonical `format_type()` names (matched after lower-casing). */
export const COLUMN_TYPE_ALIASES: Readonly<Record<string, ColumnType>> = {
  int: 'integer',
  int4: 'integer',
  int8: 'bigint',
  int2: 'smallint',
  float4: 'real',
  float8: 'double precision',
  double: 'double precision',
  bool: 'boolean',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
};

/** The canonical type for a written column type, or undefined when it is neither a name nor an alias. */
export function resolveColumnType(written: string): ColumnType | undefined {
  const key = written.trim().toLowerCase().replace(/\s+/g, ' ');
  return (COLUMN_TYPES as readonly string[]).includes(key) ? (key as ColumnType) : COLUMN_TYPE_ALIASES[key];
}

/** The reason an identifier schema refuses `name`, or undefined when the name is free. */
export function reservedReason(schema: IdentifierSchema, name: string): string | undefined {
  for (const [key, why] of Object.entries(schema.reserved ?? {})) {
    if (key.endsWith('*') ? name.startsWith(key.slice(0, -1)) : name === key) return why;
  }
  return undefined;
}

const url = {
  kind: 'string',
  format: 'postgres-url',
  required: true,
  description:
    'postgres:// or postgresql:// connection URL with a user; port defaults to 5432, database to postgres. ' +
    'Write passwords as ${ENV_VAR} (${VAR:-default} also works; $${ is a literal ${), or leave them out and use password:. ' +
    'The one query parameter is sslmode (disable, allow, prefer, require, verify-ca, verify-full), carried to vecscale\'s ' +
    'connection and the wrappers alike; any other (port=, options=, password=, …) is an error.',
} as const satisfies StringSchema;

/** The database password, for URLs that carry none (so it need not be percent-encoded by hand). */
const password = {
  kind: 'string',
  format: 'secret',
  description:
    'Password of the URL\'s user, when the URL has none (not both): ${ENV_VAR}, or file:<path> to read it from a file ' +
    '(relative to this file\'s directory; one trailing newline is dropped). vecscale puts it in the URL\'s userinfo, percent-encoded.',
} as const satisfies StringSchema;

/** A role the topology grants to: the same naming rule as every other name, and none of the roles that need no grant. */
const roleItem = {
  kind: 'identifier',
  description: 'A role name; not postgres, public or pg_*.',
  reserved: {
    postgres: 'the administrator role needs no grants',
    public: 'granting to PUBLIC is granting to every role',
    'pg_*': "pg_* roles are PostgreSQL's predefined roles",
  },
} as const satisfies IdentifierSchema;

/**
 * Settings for building the index over rows already there, not part of what the index is: changing them never
 * rebuilds an index (src/plan/index-build.ts decides what a build runs with).
 */
const indexBuild = {
  kind: 'object',
  description:
    'Session settings for building this index over rows already in its table (CREATE INDEX CONCURRENTLY): set for that ' +
    'statement only, reset after it. Changing them does not rebuild an existing index.',
  properties: {
    maintenance_work_mem: {
      kind: 'memory',
      ...INDEX_BUILD_BOUNDS.maintenanceWorkMemKb,
      description:
        'maintenance_work_mem for the build, with a unit (e.g. 4GB, 512MB; 1MB to 2147483647kB). Absent: the session\'s, ' +
        'raised for an HNSW build to the graph\'s estimated size, at most to the server\'s shared_buffers (and 16GB).',
    },
    parallel_workers: {
      kind: 'integer',
      ...INDEX_BUILD_BOUNDS.parallelWorkers,
      description:
        'max_parallel_maintenance_workers for the build (0: none); capped by the server\'s max_parallel_workers and ' +
        'max_worker_processes. Absent: the session\'s.',
    },
  },
} as const satisfies ObjectSchema;

/** The topology file, version 1. */
export const topologySchema = {
  kind: 'object',
  description: 'vecscale topology: pgvector collections on secondaries, postgres_fdw wrappers on the primary.',
  properties: {
    version: { kind: 'literal', value: 1, required: true, description: 'Format version of this file; must be 1.' },
    extension_schema: {
      kind: 'identifier',
      description: 'Schema for CREATE EXTENSION vector when vecscale creates it (absent: where it already is, else public).',
    },
    api_roles: {
      kind: 'list',
      entry: 'role',
      description:
        'Roles that may read through the primary: SELECT on public.<collection> and EXECUTE on match_<collection>, e.g. ' +
        '[anon, authenticated]. vecscale owns the whole ACL of what it creates: no other role gets anything (PUBLIC included).',
      items: roleItem,
    },
    write_roles: {
      kind: 'list',
      entry: 'role',
      description:
        'Roles that may also write through the primary: INSERT, UPDATE, DELETE on public.<collection> and EXECUTE on ' +
        'upsert_<collection>, e.g. [service_role]. They read too; list a role in one of the two lists.',
      items: roleItem,
    },
    primary: {
      kind: 'object',
      required: true,
      description: 'The database that gets the postgres_fdw servers, foreign tables and views.',
      properties: { url, password },
    },
    secondaries: {
      kind: 'map',
      entry: 'secondary',
      description: 'Databases that hold the collections, by name.',
      values: {
        kind: 'object',
        description: 'One secondary database.',
        properties: {
          url,
          password,
          replicas: {
            kind: 'list',
            entry: 'replica',
            description:
              'Physical (streaming) standbys of this secondary, as connection URLs like url\'s (same database, same sslmode; ' +
              'passwords as ${ENV_VAR}). Reads through the primary (match_<collection>, SELECT on public.<collection>) go to ' +
              'a standby that is up and fall back to the secondary itself; writes always go to the secondary. The URL\'s ' +
              'credentials are for vecscale\'s own checks (plan verifies each is a standby of this secondary); it never writes to one.',
            items: { ...url, required: false, description: 'Connection URL of one standby of this secondary.' },
          },
          fdw_user: {
            kind: 'identifier',
            default: DEFAULT_FDW_USER,
            description:
              `The login role the primary's user mapping uses on this secondary (default ${DEFAULT_FDW_USER}). vecscale creates it ` +
              'with only the privileges the wrapper needs; it must not be the user of url.',
            reserved: {
              postgres: 'the administrator cannot be the wrapper role: vecscale sets its password and limits its privileges',
              public: 'PUBLIC is every role, not a role one can log in as',
              'pg_*': "pg_* roles are PostgreSQL's predefined roles",
            },
          },
          fdw_password: {
            kind: 'string',
            format: 'secret',
            description:
              'Password of fdw_user: ${ENV_VAR} or file:<path>. Without it vecscale generates a strong random password and sets it ' +
              'on both ends (the role here, the user mapping on the primary), never storing or printing it.',
          },
        },
      },
    },
    collections: {
      kind: 'map',
      entry: 'collection',
      description: 'Vector collections, by name.',
      values: {
        kind: 'object',
        description: 'One collection: a table on its secondary and a view of it on the primary.',
        properties: {
          secondary: { kind: 'identifier', description: 'Name of the secondary (a key of secondaries) that holds it. Write this or shards.' },
          shards: {
            kind: 'list',
            entry: 'shard',
            description:
              'Instead of secondary: the secondaries the collection is split across (hash partitions by id, assigned round-robin in this order).',
            items: { kind: 'identifier', description: 'Name of a secondary (a key of secondaries).' },
          },
          partitions: {
            kind: 'integer',
            min: 1,
            max: MAX_PARTITIONS,
            description: 'With shards: number of hash partitions, a power of two ≥ the number of shards (default: the next power of two ≥ shards).',
          },
          dimension: { kind: 'integer', min: 1, max: 16000, required: true, description: 'Number of dimensions of the embedding.' },
          metric: {
            kind: 'enum',
            values: ['cosine', 'l2', 'inner_product'],
            default: 'cosine',
            description: 'Distance the index is built for.',
          },
          index: {
            kind: 'tagged',
            tag: 'method',
            tagDescription: 'hnsw (default), ivfflat, or none for exact scans only.',
            default: 'hnsw',
            noun: 'index',
            description: 'The vector index. pgvector indexes at most 2000 dimensions.',
            variants: {
              hnsw: {
                m: { kind: 'integer', min: 2, max: 100, default: 16, description: 'HNSW: connections per layer.' },
                ef_construction: {
                  kind: 'integer',
                  min: 4,
                  max: 1000,
                  default: 64,
                  description: 'HNSW: candidate list size while building; at least 2 × m.',
                },
                build: indexBuild,
              },
              ivfflat: {
                lists: { kind: 'integer', min: 1, max: 32768, default: 100, description: 'IVFFlat: number of inverted lists.' },
                build: indexBuild,
              },
              none: {},
            },
          },
          query: {
            kind: 'object',
            description: 'Session settings for similarity queries on the secondary (they cannot be SET through the primary).',
            properties: {
              ef_search: {
                kind: 'integer',
                ...QUERY_SETTING_BOUNDS.efSearch,
                default: DEFAULT_QUERY_SETTINGS.efSearch,
                description: 'hnsw.ef_search: candidate list size while searching an HNSW index.',
              },
              iterative_scan: {
                kind: 'enum',
                values: ITERATIVE_SCAN_MODES,
                default: DEFAULT_QUERY_SETTINGS.iterativeScan,
                description: 'hnsw.iterative_scan (pgvector 0.8+): keep scanning until a filtered query has its k rows.',
              },
              probes: {
                kind: 'integer',
                ...QUERY_SETTING_BOUNDS.probes,
                default: DEFAULT_QUERY_SETTINGS.probes,
                description: 'ivfflat.probes: lists searched in an IVFFlat index.',
              },
            },
          },
          columns: {
            kind: 'map',
            entry: 'column',
            description: 'Metadata keys extracted as view columns, with their SQL types, in this order.',
            values: {
              kind: 'column-type',
              description: `One of ${COLUMN_TYPES.join(', ')}, or an alias: ${Object.keys(COLUMN_TYPE_ALIASES).join(', ')}.`,
            },
          },
          protect: {
            kind: 'boolean',
            default: false,
            description: 'Refuse every destructive step on this collection, even with --allow-destructive.',
          },
          text: {
            kind: 'object',
            description:
              'Full-text search over one metadata key: a GIN index over to_tsvector(language, metadata->>source) on the ' +
              'secondary (no column is added: vecs is unaffected) and public.hybrid_<c>(…) on the primary, Supabase\'s ' +
              'hybrid search (full text and vectors merged by Reciprocal Rank Fusion).',
            properties: {
              source: { kind: 'string', required: true, description: "The metadata key holding the text, e.g. content for metadata->>'content'." },
              language: {
                kind: 'enum',
                values: TEXT_SEARCH_LANGUAGES,
                default: 'english',
                description: 'The text search configuration (PostgreSQL\'s built-in ones): stemming and stop words.',
              },
            },
          },
          access: {
            kind: 'object',
            description:
              'Owned rows: for callers in api_roles, match_<c>, hybrid_<c> and reads of public.<c> return only rows whose ' +
              "metadata->>owner_key equals the caller's JWT claim (request.jwt.claims, as PostgREST sets it), and their writes " +
              'may only write such rows. Applied on the secondary, inside the query. Other readers (write_roles that are not ' +
              'api roles) see every row.',
            properties: {
              owner_key: { kind: 'string', required: true, description: "The metadata key naming a row's owner, e.g. owner_id." },
              claim: { kind: 'string', required: true, description: 'The JWT claim the owner key must equal, e.g. sub (the user id).' },
            },
          },
        },
      },
    },
  },
} as const satisfies ObjectSchema;

/** Whether a key always has a value after parsing (written, defaulted, an empty map or list, an object of defaults). */
type Present<S> = S extends { readonly required: true }
  ? true
  : S extends { readonly default: unknown }
    ? true
    : S extends { readonly kind: 'map' | 'list' }
      ? true
      : S extends { readonly kind: 'object'; readonly properties: infer P }
        ? Defaultable<P>
        : false;

/** An object none of whose keys is required: when it is not written, its keys' defaults stand in. */
type Defaultable<P> = true extends { [K in keyof P]: P[K] extends { readonly required: true } ? true : false }[keyof P] ? false : true;

type Flatten<T> = { readonly [K in keyof T]: T[K] };

type InferProperties<P> = Flatten<
  { readonly [K in keyof P as Present<P[K]> extends true ? K : never]: Infer<P[K]> } & {
    readonly [K in keyof P as Present<P[K]> extends true ? never : K]?: Infer<P[K]>;
  }
>;

/** The value the shape check produces for a schema (snake_case keys as written, maps in file order). */
export type Infer<S> = S extends { readonly kind: 'literal'; readonly value: infer V }
  ? V
  : S extends { readonly kind: 'integer' | 'memory' }
    ? number
    : S extends { readonly kind: 'boolean' }
      ? boolean
      : S extends { readonly kind: 'enum'; readonly values: readonly (infer V)[] }
        ? V
        : S extends { readonly kind: 'string' | 'identifier' }
          ? string
          : S extends { readonly kind: 'column-type' }
            ? ColumnType
            : S extends { readonly kind: 'map'; readonly values: infer V }
              ? ReadonlyMap<string, Infer<V>>
              : S extends { readonly kind: 'list'; readonly items: infer I }
                ? readonly Infer<I>[]
                : S extends { readonly kind: 'tagged'; readonly tag: infer T extends string; readonly variants: infer Vs }
                  ? { [K in keyof Vs & string]: Flatten<{ readonly [Tag in T]: K } & InferProperties<Vs[K]>> }[keyof Vs & string]
                  : S extends { readonly kind: 'object'; readonly properties: infer P }
                    ? InferProperties<P>
                    : never;

/** The topology file as written, once its shape is known to be right. */
export type TopologyDocument = Infer<typeof topologySchema>;
/** What the shape check returns: every written value that is valid, so a key may be missing anywhere. */
export type Loose<T> = T extends ReadonlyMap<infer K, infer V>
  ? ReadonlyMap<K, Loose<V>>
  : T extends readonly (infer E)[]
    ? readonly Loose<E>[]
    : T extends object
      ? { readonly [P in keyof T]?: Loose<T[P]> }
      : T;
export type IndexDocument = Infer<typeof topologySchema.properties.collections.values.properties.index>;
export type QueryDocument = Infer<typeof topologySchema.properties.collections.values.properties.query>;
export type TextDocument = Infer<typeof topologySchema.properties.collections.values.properties.text>;
export type AccessDocument = Infer<typeof topologySchema.properties.collections.values.properties.access>;
