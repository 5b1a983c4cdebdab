/**
 * One model for desired and introspected state. `buildDesired` (pure) and `introspect` (catalog reads) both return
 * `DatabaseState`, keyed by stable object keys, so `diff` compares like with like.
 */
import type { IndexBuild } from '../config/types.js';

export const MANAGED_COMMENT = 'managed by vecscale';
/** Marker suffix of a collection table with `protect: true`: recorded in the database, so it outlives the topology entry. */
export const PROTECTED_MARK = '; protected';
/**
 * Marker suffix of a table a move made (src/move/): `target` (a copy being filled: not live until the primary points
 * at it), `staging` (a partitioned table on a target that routes replicated rows into targets named otherwise) or
 * `beacon` (a one-row table in vecscale's schema on both ends of a replication flow: its change marks "caught up")
 * or `log` (the ids a move inside one database still has to bring over).
 */
export const MOVE_MARK = '; move ';
export type MoveMark = 'target' | 'staging' | 'beacon' | 'log';
/** Marker suffix of the wrapper role: which primary it serves (roles are cluster-wide; another primary's is not ours). */
export const ROLE_OWNER_MARK = '; wrapper role of ';


/** Schemas vecscale uses: the vecs client's, the views' and the primary's private foreign-table schema. */
export const VECS_SCHEMA = 'vecs';
export const API_SCHEMA = 'public';
export const REMOTE_SCHEMA = 'vecscale_remote';
/** vecscale's own helper functions on the primary (the filter compiler). */
export const HELPER_SCHEMA = 'vecscale';
/** Foreign tables over vecs.<c> itself, for writes through the primary. */
export const WRITE_SCHEMA = 'vecscale_write';
/**
 * On a secondary, the wrapper views the primary reads (`vecscale.<c>`) and a shard's upsert views: a private schema,
 * outside every API schema, so nothing of vecscale's shows in a pod's own API (see README, "What vecscale creates").
 */
export const SECONDARY_SCHEMA = HELPER_SCHEMA;
/**
 * Marker suffix of objects whose definition vecscale fingerprints: views record md5(pg_get_viewdef()) taken when
 * vecscale created them, functions the md5 of their CREATE statement. A hand edit shows.
 */
export const DEFINITION_MARK = '; definition md5 ';
/**
 * After a view's DEFINITION_MARK digest: the md5 of the SELECT vecscale created it from, so a view whose desired
 * SELECT changed (a new vecscale, e.g. the NULL-safe column casts) is redefined although its columns are the same.
 */
export const QUERY_MARK = '; query md5 ';
/** The INSTEAD OF trigger that sends writes on an API view to the collection's table on its secondary. */
export const WRITE_TRIGGER = 'vecscale_write';
/** The statement triggers of an API view whose INSERTs are batched (src/query/write-functions.ts). */
export const WRITE_BATCH_TRIGGERS = { begin: 'vecscale_write_begin', flush: 'vecscale_write_flush' } as const;
/** A view object's writeTrigger suffix when its INSERTs are batched (its WRITE_BATCH_TRIGGERS run the function too). */
export const BATCHED = '+batched';

export interface Column {
  readonly name: string;
  /** As `format_type()` prints it, with a schema prefix on `vector` stripped (see the introspector). */
  readonly type: string;
  readonly notNull: boolean;
  /** As `pg_get_expr()` prints it; null when there is none. */
  readonly default: string | null;
}

/**
 * An object's privileges, owner excluded: grantee (`public` for PUBLIC) → privileges, sorted. A privilege is `SELECT`,
 * `SELECT*` when held WITH GRANT OPTION, or `UPDATE(col)` for a column's own privilege. vecscale owns the whole ACL
 * of what it creates or adopts: whatever is not here is revoked.
 */
export type Acl = Readonly<Record<string, readonly string[]>>;

/**
 * The owning role of an object whose owner vecscale keeps (functions, views, foreign tables, tables other than the
 * vecs client's, its schemas, servers): an owner holds every privilege, and a server's sees its mappings' passwords.
 * Desired: the role vecscale applies as; compared where the desired state sets it.
 */
interface Owned {
  readonly owner?: string;
}

interface Base {
  readonly key: string;
  /** Carries vecscale's marker comment. Desired objects of commentable kinds are always managed. */
  readonly managed: boolean;
  /** Keys of objects in the same database this one is built on (desired only): replacing those replaces this. */
  readonly dependsOn?: readonly string[];
}

export interface ExtensionObject extends Base {
  readonly kind: 'extension';
  readonly name: string;
  readonly schema: string;
  /**
   * What roles other than its owner may do with the extension's functions and foreign-data wrappers
   * (`anon EXECUTE vecscale.dblink(text,text)`), sorted. Desired `[]` for the extensions vecscale keeps in its own
   * schema (dblink, postgres_fdw): their owner's only, so it is revoked as they are created, and again on drift.
   */
  readonly grants?: readonly string[];
}

export interface SchemaObject extends Base, Owned {
  readonly kind: 'schema';
  readonly name: string;
  /** Compared where the desired state sets it (vecscale's own schemas). */
  readonly acl?: Acl;
}

export interface TableObject extends Base, Owned {
  readonly kind: 'table';
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly Column[];
  readonly primaryKey: readonly string[];
  /** false for a partitioned table ('p'): vecs cannot use it as a collection. */
  readonly ordinary: boolean;
  /** A partitioned table's key as pg_get_partkeydef prints it (`HASH (id)`). */
  readonly partitionKey?: string;
  /** A partitioned table's partitions, `schema.name`, in code-point order. */
  readonly partitions?: readonly string[];
  /** A collection table whose marker says `protect: true` (compared only where the desired state sets it). */
  readonly protected?: boolean;
  readonly acl?: Acl;
}

/** A hash partition's place: `FOR VALUES WITH (MODULUS modulus, REMAINDER remainder)` of `parent` (schema.name). */
export interface PartitionBound {
  readonly parent: string;
  readonly modulus: number;
  readonly remainder: number;
}

export type IndexMethod = 'hnsw' | 'ivfflat' | 'gin' | 'btree';

/**
 * What an index of a vecs table besides its vector index is for: `text` (GIN over the document of `text:`) or
 * `owner` (btree over the owner key of `access:`). Part of its key (`keys.index`).
 */
export type IndexPurpose = 'text' | 'owner';

/**
 * The name prefix of each metadata index. Never `ix_vector…`: the vecs client takes an index named like its own
 * vector index pattern for one.
 */
export const INDEX_PREFIX: Readonly<Record<IndexPurpose, string>> = { text: 'ix_text_', owner: 'ix_owner_' };

/** The access method of each metadata index. */
export const PURPOSE_METHOD: Readonly<Record<IndexPurpose, IndexMethod>> = { text: 'gin', owner: 'btree' };

/** The vector index methods (pgvector's): the ones vecs reads, and the ones a build's memory is planned for. */
export const isVectorMethod = (method: IndexMethod): method is 'hnsw' | 'ivfflat' => method === 'hnsw' || method === 'ivfflat';

export interface IndexObject extends Base {
  readonly kind: 'index';
  readonly schema: string;
  readonly table: string;
  /**
   * A vector index: the name vecs finds it by, ix_<opclass>_hnsw_m<m>_efc<ef>_<7 hex> or
   * ix_<opclass>_ivfflat_nl<lists>_<7 hex>. A metadata index: INDEX_PREFIX[purpose] and a hash of its definition.
   */
  readonly name: string;
  /** hnsw, ivfflat: the vector index; gin: full text (`text:`), btree: a row's owner (`access:`). */
  readonly method: IndexMethod;
  /** The indexed column (`vec`); '' for an expression index. */
  readonly column: string;
  /** The vector operator class; '' for a metadata index (its expression's default). */
  readonly opclass: string;
  /** Storage parameters, as strings, keys sorted. */
  readonly params: Readonly<Record<string, string>>;
  readonly valid: boolean;
  /**
   * Desired only, metadata indexes: the indexed expression as CREATE INDEX takes it (src/model/text-search.ts). Never
   * compared: the name hashes what defines it.
   */
  readonly expression?: string;
  /**
   * Desired only, and never compared (not what the index is): what its build over rows already there needs — the
   * topology's `index.build` and the vectors' dimension, for the HNSW memory estimate (src/plan/index-build.ts).
   */
  readonly build?: { readonly dimension: number; readonly settings: IndexBuild };
}

export interface ViewObject extends Base, Owned {
  readonly kind: 'view';
  readonly schema: string;
  readonly name: string;
  /** Columns decide the definition in vecscale's views (each column maps to one expression). */
  readonly columns: readonly Column[];
  /** The SELECT for CREATE VIEW; only desired views carry it. */
  readonly query?: string;
  /** false when the definition no longer matches the one recorded at creation (edited by hand). */
  readonly definitionIntact: boolean;
  /** md5 of `query`; live: the one recorded at creation (QUERY_MARK), null for a view an older vecscale made. */
  readonly queryMd5?: string | null;
  /** true for a materialized view. */
  readonly materialized: boolean;
  /** reloptions (security_invoker, check_option, …), sorted `k=v`. */
  readonly options: readonly string[];
  readonly acl?: Acl;
  /**
   * `schema.name` of the function its INSTEAD OF write trigger runs, `+batched` when its two statement triggers
   * (WRITE_BATCH_TRIGGERS) run it too; compared where the desired state has one.
   */
  readonly writeTrigger?: string;
}

export interface ServerObject extends Base, Owned {
  readonly kind: 'server';
  readonly name: string;
  readonly wrapper: string;
  readonly options: Readonly<Record<string, string>>;
  /** USAGE on a wrapper server lets a role build foreign tables over the secondary: nobody but its owner has it. */
  readonly acl?: Acl;
}

export interface UserMappingObject extends Base {
  readonly kind: 'user_mapping';
  readonly server: string;
  /** A role name, or 'public'. */
  readonly role: string;
  /**
   * Options with the password replaced by a keyed fingerprint (`secretFingerprint`): the model, the diff and the
   * plan never hold a password. The SQL builder writes a secret placeholder instead.
   */
  readonly options: Readonly<Record<string, string>>;
  /** Placeholder reference the executor resolves for the password option (desired only). */
  readonly passwordRef?: string;
}

export interface ForeignTableObject extends Base, Owned {
  readonly kind: 'foreign_table';
  readonly schema: string;
  readonly name: string;
  readonly server: string;
  readonly options: Readonly<Record<string, string>>;
  readonly columns: readonly Column[];
  /** Per-column options (`column_name=vec`, …) by column name. */
  readonly columnOptions: Readonly<Record<string, readonly string[]>>;
  /** Set when it is a partition of a (hash-partitioned) table. */
  readonly partition?: PartitionBound;
  readonly acl?: Acl;
}

/**
 * A function vecscale owns (match_*, the filter compiler). Its marker records an md5 of the CREATE statement, and
 * md5(prosrc) shows a body edited by hand. One function per name: vecscale never overloads.
 */
export interface FunctionObject extends Base, Owned {
  readonly kind: 'function';
  readonly schema: string;
  readonly name: string;
  /** md5 of the full CREATE statement vecscale ran (from the marker), or of the one it would run (desired). */
  readonly definitionMd5: string | null;
  readonly bodyMd5: string;
  /** Who may EXECUTE it; PUBLIC's default EXECUTE is revoked. */
  readonly acl: Acl;
  /** prosecdef. */
  readonly securityDefiner: boolean;
  /** pg_proc.proconfig as stored (`search_path=pg_catalog, pg_temp`, …), in order. */
  readonly config: readonly string[];
  /** `schema.name(argtypes)` as regprocedure prints it (introspected), for DROP and COMMENT. */
  readonly signature?: string;
  /** Desired only: the CREATE FUNCTION statement and the argument types for GRANT/COMMENT. */
  readonly create?: string;
  readonly argTypes?: string;
  /** Desired only: a new definition may use CREATE OR REPLACE (same signature and result), keeping what depends on it. */
  readonly replaceable?: boolean;
}

/**
 * The login role the primary's user mappings use on a secondary (cluster-wide). Created NOSUPERUSER, NOCREATEDB,
 * NOCREATEROLE, NOREPLICATION, NOBYPASSRLS, member of nothing; its privileges are a `grants` object per database.
 */
export interface RoleObject extends Base {
  readonly kind: 'role';
  readonly name: string;
  /**
   * Attributes that differ from a plain login role (`SUPERUSER`, `CREATEDB`, `NOLOGIN`, `CONNECTION LIMIT 0`,
   * `VALID UNTIL …`); [] when plain.
   */
  readonly attributes: readonly string[];
  /** Roles it is a member of (sorted). */
  readonly memberOf: readonly string[];
  /** Roles that are members of it (sorted): each would hold the wrapper's privileges. Desired: none. */
  readonly members?: readonly string[];
  /** The primary it serves, from its marker (`host:port/db`); null when unmarked. */
  readonly owner: string | null;
  /**
   * Settings made with ALTER ROLE … SET, as `<database or *>: name=value` sorted (`*`: every database). Each applies
   * to every session the wrappers open (default_transaction_read_only=on fails every write). Desired: none.
   */
  readonly settings?: readonly string[];
  /** Desired only: the password is (re)set by this plan; its value is the executor's placeholder `passwordRef`. */
  readonly setPassword?: boolean;
  readonly passwordRef?: string;
}

/**
 * The database defaults vecscale sets on a secondary (ALTER DATABASE … SET), for clients that connect to it directly
 * such as the vecs client: only the names in DATABASE_SETTINGS are read or changed, every other default is the
 * database owner's.
 */
export interface SettingsObject extends Base {
  readonly kind: 'settings';
  /** name → value, names from DATABASE_SETTINGS only. */
  readonly values: Readonly<Record<string, string>>;
}

/** The database defaults vecscale manages on a secondary. */
export const DATABASE_SETTINGS: readonly string[] = ['hnsw.iterative_scan'];

/** One object a role holds privileges on, in one database. */
export interface Privilege {
  readonly on: 'schema' | 'table';
  readonly schema: string;
  /** The relation, for `table` (views and tables alike). */
  readonly name?: string;
  /** Sorted: `DELETE`, `INSERT`, `SELECT`, `UPDATE`, `USAGE`. */
  readonly privileges: readonly string[];
}

/** Everything a role may do in one database, as vecscale grants it: extra privileges are revoked. */
export interface GrantsObject extends Base {
  readonly kind: 'grants';
  readonly role: string;
  /** Sorted by on, schema, name. */
  readonly privileges: readonly Privilege[];
}

export type DbObject =
  | ExtensionObject
  | SettingsObject
  | SchemaObject
  | TableObject
  | IndexObject
  | ViewObject
  | ServerObject
  | UserMappingObject
  | ForeignTableObject
  | FunctionObject
  | RoleObject
  | GrantsObject;

export type ObjectKind = DbObject['kind'];

/** Relations share one key space, whatever their kind: a table and a view named alike collide in PostgreSQL too. */
export const keys = {
  extension: (name: string) => `extension:${name}`,
  schema: (name: string) => `schema:${name}`,
  relation: (schema: string, name: string) => `relation:${schema}.${name}`,
  /** A vecs table's vector index, or with `purpose` one of its metadata indexes (`index:vecs.docs#text`). */
  index: (schema: string, table: string, purpose?: IndexPurpose) => `index:${schema}.${table}${purpose ? `#${purpose}` : ''}`,
  server: (name: string) => `server:${name}`,
  userMapping: (server: string, role: string) => `user_mapping:${server}:${role}`,
  /** `rows`: upsert_<c>'s batch form, upsert_<c>(rows jsonb) — the one overload vecscale makes (by arity: never ambiguous). */
  function: (schema: string, name: string, overload?: 'rows') => `function:${schema}.${name}${overload === 'rows' ? '(rows)' : ''}`,
  role: (name: string) => `role:${name}`,
  grants: (role: string) => `grants:${role}`,
  databaseSettings: () => 'settings:database',
} as const;

export type DatabaseRole = 'primary' | 'secondary';

export interface DatabaseState {
  /** 'primary' or the secondary's name. */
  readonly database: string;
  readonly role: DatabaseRole;
  readonly objects: ReadonlyMap<string, DbObject>;
}

/** What one standby of a secondary is (src/introspect/replicas.ts). */
export interface ReplicaFact {
  /** Its index in secondaries.<s>.replicas. */
  readonly index: number;
  /** Redacted. */
  readonly url: string;
  /** standby: in recovery, of this secondary's cluster; other_system: a standby of another cluster. */
  readonly status: 'standby' | 'not_standby' | 'other_system' | 'unreachable';
  /** Its system identifier (pg_control_system()), and the secondary's when they differ. */
  readonly system?: string;
  readonly secondarySystem?: string;
  /** Why it could not be reached. */
  readonly message?: string;
}

/** Session and server settings that bound an index build on one database. */
export interface BuildLimits {
  /** The session's max_parallel_maintenance_workers: what a build gets unless the plan sets it. */
  readonly maxParallelMaintenanceWorkers: number;
  /** The server's max_parallel_workers and max_worker_processes: no build gets more workers than these. */
  readonly maxParallelWorkers: number;
  readonly maxWorkerProcesses: number;
  /** shared_buffers, in bytes: the ceiling of a maintenance_work_mem vecscale raises by itself. */
  readonly sharedBuffers: number;
}

/** What introspection learns beyond objects: the inputs of desired-state decisions and of plan checks. */
export interface LiveFacts {
  readonly database: string;
  /** A secondary's standbys (secondaries.<s>.replicas), as plan found them; absent: it names none. */
  readonly replicas?: readonly ReplicaFact[];
  readonly currentUser: string;
  readonly serverVersion: number;
  /** Schema of the installed pgvector, if installed. */
  readonly vectorSchema: string | undefined;
  /** Schema of the installed dblink, if installed. */
  readonly dblinkSchema?: string | undefined;
  /** The connecting role is a superuser. */
  readonly superuser?: boolean;
  /** The connecting role has the database owner's privileges (ALTER DATABASE … SET). */
  readonly ownsDatabase?: boolean;
  /** The role may SET log_statement & co. around statements that carry a password. */
  readonly canQuietLog?: boolean;
  /** The vecs tables (by relation key) that hold at least one row, or may: those in `unprobed` have pages, not yet asked. */
  readonly nonEmpty: ReadonlySet<string>;
  /**
   * Tables in `nonEmpty` not yet asked whether they hold a row (src/introspect/rows.ts asks those a plan's decision
   * depends on). Absent: every entry of `nonEmpty` is known.
   */
  readonly unprobed?: ReadonlySet<string>;
  /** Tables whose `rowEstimates` entry is bytes and which may be counted when their rows decide something. */
  readonly uncounted?: ReadonlySet<string>;
  /**
   * What is known of each vecs table's size (by relation key): the planner's row estimate (reltuples), or for a table
   * never analyzed, its bytes on disk.
   */
  readonly rowEstimates?: ReadonlyMap<string, { readonly rows: number } | { readonly bytes: number }>;
  /** The session's maintenance_work_mem, in bytes: what an index build here gets unless the plan sets it. */
  readonly maintenanceWorkMem?: number;
  /** The other settings that bound an index build here (src/plan/index-build.ts). */
  readonly buildLimits?: BuildLimits;
  /** Tables (by key) whose marker says a move made them and is not finished with them. */
  readonly moveMarks?: ReadonlyMap<string, MoveMark>;
  /** Relations (by key) that objects outside vecscale's model depend on (a user's view over ours): `DROP … RESTRICT` would fail. */
  readonly dependants?: ReadonlyMap<string, readonly string[]>;
  /** Relations (by key) and the views in scope that read them (by key): rebuilt when what they read is dropped. */
  readonly readBy?: ReadonlyMap<string, readonly string[]>;
  /** Exact row counts of the tables a destructive step would drop (counted after a first plan found them). */
  readonly rowCounts?: ReadonlyMap<string, number>;
  /**
   * The connecting role's default privileges (ALTER DEFAULT PRIVILEGES): what an object it creates is granted at
   * once, so the plan revokes exactly that in the same transaction (see `initialAcl`).
   */
  readonly defaultAcl?: DefaultAcl;
  /** The roles the topology grants to (api_roles, write_roles) that exist here, and whether each may use pgvector's schema. */
  readonly roles?: ReadonlyMap<string, { readonly usesVectorSchema: boolean }>;
  /**
   * Primary: per foreign server with a managed foreign table, how a login through it went (a one-row read through
   * one of its foreign tables, read-only): what the wrappers meet, whatever the catalogs say.
   */
  readonly wrapperLogins?: ReadonlyMap<string, WrapperLogin>;
  /** What logical replication needs here, and vecscale's own replication objects found (see src/move/). */
  readonly replication?: ReplicationFacts;
}

/**
 * Logical replication on one database: the settings and headroom a move needs (on a source: wal_level, slots, WAL
 * senders; on a target: apply workers), the connecting role's rights, and every replication object named with
 * vecscale's prefix (`vecscale_mv_`), so a leftover is reported and removed.
 */
export interface ReplicationFacts {
  readonly walLevel: string;
  /** rolsuper of the connecting role (CREATE SUBSCRIPTION needs it in PG15). */
  readonly superuser: boolean;
  /** rolreplication (or superuser): may create a replication slot and serve a subscription's connection. */
  readonly replication: boolean;
  readonly maxReplicationSlots: number;
  /** Slots of any kind in the cluster, vecscale's included. */
  readonly usedReplicationSlots: number;
  readonly maxWalSenders: number;
  /** WAL senders running now (pg_stat_replication, the cluster's). */
  readonly usedWalSenders: number;
  readonly maxLogicalReplicationWorkers: number;
  /** Enabled subscriptions in the cluster (each holds an apply worker). */
  readonly enabledSubscriptions: number;
  /** Table-sync workers a subscription may run at once: 0 means its initial copy never starts. */
  readonly maxSyncWorkersPerSubscription?: number;
  /**
   * Which cluster this database is in: databases of one cluster share its slots, senders and workers. The system
   * identifier alone is shared by clones of one base backup; with the postmaster's start time it is one running server.
   */
  readonly cluster?: { readonly systemIdentifier: string; readonly startedAt: string };
  /** Oids of every subscription in the cluster, whatever its name (a table-sync slot names its subscription by oid). */
  readonly subscriptionOids?: readonly number[];
  /**
   * In this cluster, slots named like a subscription's table-sync slot (`pg_<suboid>_sync_<relid>_<sysid>`, sysid the
   * subscriber's): one whose subscription is gone (dropped while the source was unreachable) is never dropped by
   * PostgreSQL and holds WAL forever.
   */
  readonly syncSlots?: readonly ReplicationSlotFact[];
  /** In this cluster, slots named vecscale_mv_…, with the database they decode. */
  readonly slots: readonly ReplicationSlotFact[];
  /** In this database, publications named vecscale_mv_…, with their tables (`schema.name`, sorted). */
  readonly publications: readonly { readonly name: string; readonly tables: readonly string[] }[];
  /** In this database, subscriptions named vecscale_mv_…. */
  readonly subscriptions: readonly SubscriptionFact[];
}

export interface ReplicationSlotFact {
  readonly name: string;
  readonly database: string | null;
  readonly active: boolean;
  /** Bytes of WAL the slot holds back (pg_current_wal_lsn() - restart_lsn); null when unknown. */
  readonly retainedBytes: number | null;
}

export interface SubscriptionFact {
  readonly name: string;
  readonly enabled: boolean;
  readonly slotName: string | null;
  readonly publications: readonly string[];
  /** Per subscribed table (`schema.name`), its pg_subscription_rel state: i, d, f, s or r. */
  readonly tables: Readonly<Record<string, string>>;
}

/** A login through a foreign server: fine, refused for its password, or failed otherwise (message first line). */
export type WrapperLogin = { readonly ok: true } | { readonly ok: false; readonly password: boolean; readonly message: string };

/** Object types of ALTER DEFAULT PRIVILEGES that vecscale creates: relations, functions, schemas. */
export type AclObjectType = 'r' | 'f' | 'n';

/** Default privileges, per object type: the global entry (no schema) and the per-schema ones. */
export interface DefaultAcl {
  readonly global: Readonly<Partial<Record<AclObjectType, Acl>>>;
  readonly inSchema: Readonly<Record<string, Readonly<Partial<Record<AclObjectType, Acl>>>>>;
}

/** PostgreSQL's built-in initial ACL, owner excluded: functions are executable by PUBLIC. */
const BUILT_IN_ACL: Readonly<Record<AclObjectType, Acl>> = { r: {}, f: { public: ['EXECUTE'] }, n: {} };

/** The union of two ACLs, privileges sorted. */
export function mergeAcl(a: Acl, b: Acl): Acl {
  const out: Record<string, string[]> = {};
  for (const acl of [a, b]) for (const [g, ps] of Object.entries(acl)) out[g] = [...new Set([...(out[g] ?? []), ...ps])].sort();
  return out;
}

/**
 * The ACL an object gets the moment the connecting role creates it, as PostgreSQL computes it
 * (get_user_default_acl): the global default entry, or the built-in default where there is none, merged with the
 * schema's entry.
 */
export function initialAcl(defaults: DefaultAcl | undefined, type: AclObjectType, schema: string | undefined): Acl {
  const base = defaults?.global[type] ?? BUILT_IN_ACL[type];
  const inSchema = schema === undefined ? undefined : defaults?.inSchema[schema]?.[type];
  return inSchema ? mergeAcl(base, inSchema) : base;
}

/**
 * The options vecscale sets. Others a user sets by hand (fetch_size, sslcert for certificate auth, …) are theirs:
 * never compared, never removed.
 */
export const OWN_OPTIONS: Readonly<Record<'server' | 'user_mapping', readonly string[]>> = {
  server: [
    'async_capable', 'batch_size', 'connect_timeout', 'dbname', 'extensions', 'host',
    'keepalives', 'keepalives_count', 'keepalives_idle', 'keepalives_interval',
    'options', 'port', 'sslmode', 'target_session_attrs', 'tcp_user_timeout',
  ],
  user_mapping: ['password', 'user'],
};

/** The part of an object's options that vecscale owns. */
export function ownOptions(kind: 'server' | 'user_mapping', options: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(options).filter(([k]) => OWN_OPTIONS[kind].includes(k)));
}

/** One database as introspection found it. */
export interface LiveDatabase {
  readonly state: DatabaseState;
  readonly facts: LiveFacts;
}

/** Human name of an object, as plans print it. */
export function describeObject(o: DbObject): string {
  switch (o.kind) {
    case 'extension':
      return `extension ${o.name}`;
    case 'settings':
      return 'database defaults';
    case 'schema':
      return `schema ${o.name}`;
    case 'table':
      return `table ${o.schema}.${o.name}`;
    case 'index':
      return `index ${o.schema}.${o.name} on ${o.table}`;
    case 'view':
      return `view ${o.schema}.${o.name}`;
    case 'server':
      return `server ${o.name}`;
    case 'user_mapping':
      return `user mapping for ${o.role} on server ${o.server}`;
    case 'foreign_table':
      return `foreign table ${o.schema}.${o.name}`;
    case 'function':
      // upsert_<c>'s batch overload is told apart from the row form by its argument.
      return `function ${o.schema}.${o.name}${o.key.endsWith('(rows)') ? '(rows jsonb)' : ''}`;
    case 'role':
      return `role ${o.name}`;
    case 'grants':
      return `privileges of ${o.role}`;
  }
}
