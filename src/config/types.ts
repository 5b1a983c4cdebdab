/**
 * The validated, normalised topology: what the rest of vecscale consumes. Produced only by `src/config`
 * (parse → normalise → rules); everything downstream may assume every rule below holds.
 */

export type Metric = 'cosine' | 'l2' | 'inner_product';

export type IndexSpec =
  | { readonly method: 'hnsw'; readonly m: number; readonly efConstruction: number; readonly build?: IndexBuild }
  | { readonly method: 'ivfflat'; readonly lists: number; readonly build?: IndexBuild }
  | { readonly method: 'none' };

/**
 * How an index is built over rows already in its table (`index.build`): session settings for the build's statement
 * only. Not part of the index's identity: a change never rebuilds it. Absent keys: vecscale decides
 * (src/plan/index-build.ts).
 */
export interface IndexBuild {
  /** maintenance_work_mem for the build, in kB. */
  readonly maintenanceWorkMemKb?: number;
  /** max_parallel_maintenance_workers for the build. */
  readonly parallelWorkers?: number;
}

/** PostgreSQL's own bounds: maintenance_work_mem 1MB to 2147483647 kB (MAX_KILOBYTES); workers 0 to 1024. */
export const INDEX_BUILD_BOUNDS = {
  maintenanceWorkMemKb: { min: 1024, max: 2_147_483_647 },
  parallelWorkers: { min: 0, max: 1024 },
} as const;

/** Canonical PostgreSQL type names, exactly as `format_type()` prints them. Aliases are mapped by the parser. */
export const COLUMN_TYPES = [
  'text',
  'integer',
  'bigint',
  'smallint',
  'numeric',
  'real',
  'double precision',
  'boolean',
  'date',
  'timestamp without time zone',
  'timestamp with time zone',
  'uuid',
  'jsonb',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface ColumnSpec {
  /** The metadata key, also the view column's name. */
  readonly name: string;
  readonly type: ColumnType;
}

export interface SecondarySpec {
  readonly name: string;
  /** Connection URL after interpolation (a `password:` key is merged into it). Holds a password: never print it, use redactUrl(). */
  readonly url: string;
  /**
   * Connection URLs of its physical standbys, in file order (after interpolation; they may hold passwords: redactUrl()).
   * Same database and sslmode as `url` (config rules). Empty: reads and writes both go to `url`, as before replicas.
   */
  readonly replicas: readonly string[];
  /** The login role the primary's user mapping uses on this secondary (default vecscale_fdw). */
  readonly fdwUser: string;
  /** Its password (resolved secret); absent: vecscale generates one when it has to set it. */
  readonly fdwPassword: string | undefined;
}

export const DEFAULT_FDW_USER = 'vecscale_fdw';

/** Session settings for similarity queries, sent to the secondary (they cannot be SET from the primary). */
export interface QuerySettings {
  /** hnsw.ef_search, 1–1000 (default 100). */
  readonly efSearch: number;
  /** hnsw.iterative_scan (pgvector ≥ 0.8; default relaxed_order, so filtered queries still return k rows). */
  readonly iterativeScan: 'relaxed_order' | 'strict_order' | 'off';
  /** ivfflat.probes, 1–32768 (default 10). */
  readonly probes: number;
}

/**
 * pgvector's own bounds of the query settings: the topology's (config/schema.ts) and match_<c>'s per-call ones
 * (src/query/fan-out.ts).
 */
export const QUERY_SETTING_BOUNDS = { efSearch: { min: 1, max: 1000 }, probes: { min: 1, max: 32_768 } } as const;
export const ITERATIVE_SCAN_MODES: ReadonlyArray<QuerySettings['iterativeScan']> = ['relaxed_order', 'strict_order', 'off'];

export const DEFAULT_QUERY_SETTINGS: QuerySettings = { efSearch: 100, iterativeScan: 'relaxed_order', probes: 10 };

/**
 * PostgreSQL 15's built-in text search configurations (`pg_catalog`): the languages `text.language` may name. The
 * configuration is part of the full-text index's expression, so it must exist on every secondary of the collection.
 */
export const TEXT_SEARCH_LANGUAGES = [
  'arabic', 'armenian', 'basque', 'catalan', 'danish', 'dutch', 'english', 'finnish', 'french', 'german', 'greek',
  'hindi', 'hungarian', 'indonesian', 'irish', 'italian', 'lithuanian', 'nepali', 'norwegian', 'portuguese',
  'romanian', 'russian', 'serbian', 'simple', 'spanish', 'swedish', 'tamil', 'turkish', 'yiddish',
] as const;
export type TextSearchLanguage = (typeof TEXT_SEARCH_LANGUAGES)[number];

/** Full-text search over one metadata key (`text:`): a GIN index on the secondary, and hybrid_<c> on the primary. */
export interface TextSearchSpec {
  /** The metadata key whose text is searched: `metadata->>'<source>'`. */
  readonly source: string;
  readonly language: TextSearchLanguage;
}

/**
 * Owned rows (`access:`): an API role's caller sees and writes only the rows whose `metadata->>'<ownerKey>'` equals
 * its JWT claim `<claim>` (`request.jwt.claims`, what PostgREST sets). src/query/access.ts.
 */
export interface AccessSpec {
  readonly ownerKey: string;
  readonly claim: string;
}

interface CollectionBase {
  readonly name: string;
  readonly dimension: number;
  readonly metric: Metric;
  readonly index: IndexSpec;
  readonly query: QuerySettings;
  /** In file order: the view's extracted columns come in this order. */
  readonly columns: readonly ColumnSpec[];
  /** Refuse every destructive step on it, even with --allow-destructive (recorded on its tables, so it outlives removal). */
  readonly protect: boolean;
  /** Full-text search (hybrid_<c>); absent: none. */
  readonly text?: TextSearchSpec;
  /** Owned rows; absent: every reader sees every row. */
  readonly access?: AccessSpec;
}

/** A collection on one secondary: `vecs.<name>` there. */
export interface PlacedCollection extends CollectionBase {
  readonly secondary: string;
  readonly shards?: undefined;
}

/**
 * A collection split over several secondaries: `partitions` hash partitions (by id, a power of two ≥ the number of
 * shards), partition i on `shards[i % shards.length]`. No extracted columns (see rules.ts).
 */
export interface ShardedCollection extends CollectionBase {
  readonly secondary?: undefined;
  /** Secondary names, in file order (the order assigns partitions). */
  readonly shards: readonly string[];
  readonly partitions: number;
}

export type CollectionSpec = PlacedCollection | ShardedCollection;

export interface Topology {
  readonly version: 1;
  /** Absolute path of the file it came from ('<string>' when parsed from text). */
  readonly file: string;
  readonly primary: { readonly url: string };
  /** In file order. */
  readonly secondaries: readonly SecondarySpec[];
  /** In file order. */
  readonly collections: readonly CollectionSpec[];
  /** Schema for the `vector` extension when vecscale has to create it (absent: wherever it already is, else `public`). */
  readonly extensionSchema: string | undefined;
  /** Roles that may read through the primary (SELECT on public.<c>, EXECUTE on match_<c>); e.g. anon, authenticated. */
  readonly apiRoles: readonly string[];
  /** Roles that may also write (INSERT/UPDATE/DELETE on public.<c>, EXECUTE on upsert_<c>); e.g. service_role. */
  readonly writeRoles: readonly string[];
  /** Every secret value the file resolved (URL passwords, fdw passwords, file: secrets): output is scrubbed of these. */
  readonly secrets: readonly string[];
}

export interface ConfigProblem {
  readonly severity: 'error' | 'warning';
  /** Dotted path of the offending key, e.g. `collections.docs.index.m` ('' for the whole document). */
  readonly path: string;
  readonly file: string;
  /** 1-based; absent only when the problem has no position (e.g. the file cannot be read). */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
  /** `literal_secret`: a password written in the file; an error under --strict. */
  readonly code?: 'literal_secret';
}

export type LoadResult =
  | { readonly ok: true; readonly topology: Topology; readonly warnings: readonly ConfigProblem[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };
