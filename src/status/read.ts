/**
 * `vecscale status`, the reading half: what each database says about itself, in a fixed number of statements per
 * database whatever the number of collections, every database at once. Read-only sessions; nothing is created,
 * not even a temporary object. The raw rows stay in this file's types; ./report.ts judges them.
 *
 * A database that cannot be reached, or stops answering, is a result (`error`), not a failure: status reports the
 * others and names it. The wrapper round trips (one per foreign server, each on a connection of its own, so one that
 * hangs costs only its own answer) run last, on the primary, and only through servers whose secondary answered.
 *
 * Status never waits behind another session's lock for long (lock_timeout 1 s): sizes and counts, which lock each
 * table, are read in a statement of their own, skipping tables someone holds exclusively; when it fails anyway, the
 * rest of the reading stands and the sizes are unknown.
 */
import type { Topology } from '../config/types.js';
import { close, connect, type Db, describeTarget, silentOr, type Target, usable } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { partsOf } from '../model/placement.js';
import { API_SCHEMA, DEFINITION_MARK, HELPER_SCHEMA, MANAGED_COMMENT, PROTECTED_MARK, ROLE_OWNER_MARK, REMOTE_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { hybridFunctionName } from '../query/hybrid.js';
import { matchFunctionName } from '../query/match-function.js';
import { ident, literal, qualified } from '../sql/quote.js';
import { parsePgUrl } from '../util/url.js';
import { COMMENT_JOIN, CURRENT_ROWS } from '../introspect/catalog.js';
import { isManaged, parseOptions } from '../introspect/map.js';

export interface StatusReadOptions {
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
  /**
   * Count every table's rows exactly (default: tables whose heap is at most EXACT_COUNT_BYTES, and never-analyzed ones
   * up to NEVER_ANALYZED_COUNT_BYTES: they have no estimate at all).
   */
  readonly exact?: boolean;
}

/** Tables up to this heap size are counted exactly (a sequential scan of 64 MB takes tens of milliseconds). */
export const EXACT_COUNT_BYTES = 64 * 1024 * 1024;
/** A never-analyzed table (just loaded, autovacuum not yet round) has no estimate: counted up to this heap size. */
export const NEVER_ANALYZED_COUNT_BYTES = 1024 * 1024 * 1024;

export interface RawIndex {
  readonly name: string;
  readonly method: string;
  readonly opclass: string;
  readonly options: Record<string, string>;
  readonly valid: boolean;
  readonly bytes: number | null;
}

export interface RawTable {
  readonly table: string;
  /** pg_class.reltuples: -1 when never vacuumed or analyzed. */
  readonly reltuples: number;
  /** Heap (main fork) bytes; null when sizes could not be read (see RawSecondary.sizesError). */
  readonly heapBytes: number | null;
  /** Heap and TOAST: pg_table_size. */
  readonly tableBytes: number | null;
  readonly lastAnalyze: string | null;
  readonly indexes: readonly RawIndex[];
  /** Its other indexes, name → indisvalid: the full-text and owner indexes vecscale makes are among them. */
  readonly otherIndexes: Readonly<Record<string, boolean>>;
  /** Exact count(*), when it was taken. */
  readonly count?: number;
}

export interface RawSlot {
  readonly name: string;
  readonly type: 'logical' | 'physical';
  readonly active: boolean;
  /** WAL the slot keeps from being removed, in bytes (null: none reserved). */
  readonly retainedBytes: number | null;
}

export interface RawReplica {
  readonly name: string;
  readonly address: string | null;
  readonly state: string;
  /** pg_stat_replication.replay_lag in seconds (null: idle, nothing to replay). */
  readonly replayLagSeconds: number | null;
  readonly replayLagBytes: number | null;
}

export interface RawSecondary {
  readonly version: string;
  readonly pgvector: string | null;
  readonly walLevel: string;
  /** `ALTER DATABASE … SET` of hnsw.* and ivfflat.* settings: what a session gets unless it sets its own. */
  readonly databaseSettings: Record<string, string>;
  /** The same, set for the wrapper role in this database or everywhere (`ALTER ROLE … [IN DATABASE …] SET`). */
  readonly wrapperRoleSettings: Record<string, string>;
  /** Every setting of the wrapper role here (this database or everywhere): vecscale wants none (apply resets them). */
  readonly wrapperRoleOwn: Record<string, string>;
  /** Database defaults among HAZARDS (session_replication_role, default_transaction_read_only), as set. */
  readonly databaseHazards: Record<string, string>;
  readonly slots: readonly RawSlot[];
  readonly replicas: readonly RawReplica[];
  readonly tables: readonly RawTable[];
  /** Every relation in vecs and vecscale, `schema.name` → its column names: what the primary's foreign tables read. */
  readonly relations: Readonly<Record<string, readonly string[]>>;
  /** Why sizes and counts are unknown (a table locked by another session past lock_timeout), if they are. */
  readonly sizesError?: string;
  /** Walsenders whose state this role may not see (pg_stat_replication shows them without pg_read_all_stats). */
  readonly hiddenReplicas: number;
  /** vecs tables marked as vecscale's that the topology does not place on this secondary. */
  readonly orphans: readonly RawOrphan[];
}

export interface RawOrphan {
  readonly table: string;
  /** Its rows as for a collection's table (a count where cheap, else the planner's estimate); null: unknown. */
  readonly rows: number | null;
  readonly rowsExact: boolean;
  /** Marked `protect: true` when it was last applied. */
  readonly protected: boolean;
}

export interface RawForeignTable {
  readonly schema: string;
  readonly name: string;
  readonly server: string;
  /** The remote relation it reads (schema_name, table_name options). */
  readonly remote: string;
  /** The remote columns it reads (column_name options, else its own names). */
  readonly remoteColumns: readonly string[];
  /** Marked as vecscale's: plan drops it when the topology no longer implies it. */
  readonly managed: boolean;
  /** The secondary its server points at (by host, port and database), when it is one of the topology's. */
  readonly secondary?: string;
  /** null: a login through its server worked (the same for every table of the server). */
  readonly error: string | null;
}

export interface RawPrimary {
  readonly version: string;
  /** Server name → its `options` option (libpq `-c k=v …`), parsed. */
  readonly serverSettings: Record<string, Record<string, string>>;
  readonly foreignTables: readonly RawForeignTable[];
  /** Server name → session_replication_role in the wrappers' session through it (read where dblink is there). */
  readonly replicationRoles: Readonly<Record<string, string>>;
  /** `public.<c>` views and `public.match_<c>` (and `hybrid_<c>`) functions present, by name. */
  readonly apiObjects: readonly string[];
}

export type Reading<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export interface RawStatus {
  readonly primary: Reading<RawPrimary>;
  readonly secondaries: ReadonlyMap<string, Reading<RawSecondary>>;
}

const QUERY_SETTING = `(s.setting LIKE 'hnsw.%' OR s.setting LIKE 'ivfflat.%')`;
/** Database defaults that break the wrappers' sessions on a secondary (./report.ts says how). */
const HAZARDS = ['session_replication_role', 'default_transaction_read_only'] as const;
const HAZARD_SETTING = `pg_catalog.split_part(s.setting, '=', 1) IN (${HAZARDS.map((h) => `'${h}'`).join(', ')})`;
/** A search setting (hnsw.*, ivfflat.*): what QUERY_SETTING selects. */
export const isQuerySetting = (k: string): boolean => k.startsWith('hnsw.') || k.startsWith('ivfflat.');

// One statement: the facts of a secondary, its slots and standbys, and its collection tables with their vector indexes.
// NOTE: pg_current_wal_lsn() fails on a standby; a secondary is a primary server (its standbys are read-only copies).
const SECONDARY_SQL = `
SELECT pg_catalog.current_setting('server_version') AS version,
       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'vector') AS pgvector,
       pg_catalog.current_setting('wal_level') AS wal_level,
       (SELECT COALESCE(pg_catalog.json_agg(s.setting), '[]') FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) s(setting)
         WHERE d.setrole = 0 AND d.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
           AND (${QUERY_SETTING} OR ${HAZARD_SETTING})) AS database_settings,
       (SELECT COALESCE(pg_catalog.json_agg(s.setting ORDER BY d.setdatabase), '[]') FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) s(setting)
         WHERE d.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)
           AND d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))) AS role_settings,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'name', r.slot_name, 'type', r.slot_type, 'active', r.active,
                 'retained', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.restart_lsn)::pg_catalog.float8)
               ORDER BY r.slot_name), '[]')
          FROM pg_catalog.pg_replication_slots r
         WHERE r.database = pg_catalog.current_database() OR (r.slot_type = 'physical' AND NOT r.active)) AS slots,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'name', a.application_name, 'address', pg_catalog.host(a.client_addr), 'state', a.state,
                 'lag_seconds', pg_catalog.date_part('epoch', a.replay_lag),
                 'lag_bytes', pg_catalog.pg_wal_lsn_diff(a.sent_lsn, a.replay_lsn)::pg_catalog.float8)
               ORDER BY a.application_name, a.pid), '[]')
          FROM pg_catalog.pg_stat_replication a
         -- A standby, not a move's subscription (a logical slot's walsender) or a WAL archiver.
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_replication_slots r WHERE r.active_pid = a.pid AND r.slot_type = 'logical')
           AND a.application_name NOT IN ('pg_receivewal', 'pg_basebackup')) AS replicas,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'table', c.relname, 'oid', c.oid, 'reltuples', c.reltuples,
                 'analyzed', GREATEST(st.last_analyze, st.last_autoanalyze),
                 'locked', EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock'),
                 'indexes', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                                 'name', ic.relname, 'method', am.amname, 'opclass', opc.opcname,
                                 'options', COALESCE(ic.reloptions, '{}'), 'valid', i.indisvalid) ORDER BY ic.relname), '[]')
                               FROM pg_catalog.pg_index i
                               JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                               JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                               JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0]
                              WHERE i.indrelid = c.oid AND am.amname IN ('hnsw', 'ivfflat')),
                 -- The other indexes by name (vecscale's full-text and owner indexes among them), and their validity.
                 'others', (SELECT COALESCE(pg_catalog.json_object_agg(ic.relname, i.indisvalid), '{}')
                              FROM pg_catalog.pg_index i
                              JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                              JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                             WHERE i.indrelid = c.oid AND am.amname NOT IN ('hnsw', 'ivfflat')))
               ORDER BY c.relname), '[]')
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_catalog.pg_stat_all_tables st ON st.relid = c.oid
         WHERE n.nspname = 'vecs' AND c.relkind = 'r' AND c.relname = ANY ($1::pg_catalog.name[])) AS tables,
       (SELECT COALESCE(pg_catalog.json_object_agg(n.nspname || '.' || c.relname,
                 ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)), '{}')
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('vecs', 'vecscale') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) AS relations,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication a WHERE a.state IS NULL)::int AS hidden_replicas,
       -- vecs tables vecscale made (its marker, not a move's) that the topology does not place here: plan drops them.
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'table', c.relname, 'oid', c.oid, 'reltuples', c.reltuples,
                 'locked', EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock'),
                 'protected', d.description = ${literal(MANAGED_COMMENT + PROTECTED_MARK)}) ORDER BY c.relname), '[]')
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          ${COMMENT_JOIN('c.oid', 'pg_class')}
         WHERE n.nspname = 'vecs' AND c.relkind = 'r' AND NOT (c.relname = ANY ($1::pg_catalog.name[]))
           AND (d.description IN (${literal(MANAGED_COMMENT)}, ${literal(MANAGED_COMMENT + PROTECTED_MARK)})
                -- Every other marker plan takes as vecscale's (src/introspect/map.ts isManaged), but a move's.
                OR pg_catalog.starts_with(d.description, ${literal(MANAGED_COMMENT + DEFINITION_MARK)})
                OR pg_catalog.starts_with(d.description, ${literal(MANAGED_COMMENT + ROLE_OWNER_MARK)}))) AS orphans`;

/**
 * Sizes, the row estimate as the planner makes it now (CURRENT_ROWS, as plan's), and counts where cheap (or `exact`),
 * of the given tables (oids), in one statement. Each count is a scalar subquery under a CASE: PostgreSQL runs such a
 * subquery only when the CASE reaches it.
 */
const sizesSql = (tables: ReadonlyArray<{ oid: number; table: string; reltuples: number }>, exact: boolean): string =>
  tables
    .map(
      (t) => `SELECT ${literal(t.table)} AS t, ${CURRENT_ROWS}::pg_catalog.float8 AS rows,
       pg_catalog.pg_relation_size(c.oid) AS heap, pg_catalog.pg_table_size(c.oid) AS size,
       (SELECT COALESCE(pg_catalog.json_object_agg(ic.relname, pg_catalog.pg_relation_size(ic.oid)), '{}') FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid) AS indexes,
       CASE WHEN ${exact ? 'true' : `pg_catalog.pg_relation_size(c.oid) <= ${t.reltuples < 0 ? NEVER_ANALYZED_COUNT_BYTES : EXACT_COUNT_BYTES}`}
            THEN (SELECT pg_catalog.count(*) FROM ${qualified('vecs', t.table)}) END AS n
  FROM pg_catalog.pg_class c WHERE c.oid = ${t.oid}`,
    )
    .join('\nUNION ALL\n');

interface SecondaryRow {
  version: string;
  pgvector: string | null;
  wal_level: string;
  database_settings: string[];
  role_settings: string[];
  slots: Array<{ name: string; type: 'logical' | 'physical'; active: boolean; retained: number | null }>;
  replicas: Array<{ name: string; address: string | null; state: string; lag_seconds: number | null; lag_bytes: number | null }>;
  tables: Array<{ table: string; oid: number; reltuples: number; analyzed: string | null; locked: boolean; indexes: Array<Omit<RawIndex, 'options' | 'bytes'> & { options: string[] }>; others: Record<string, boolean> }>;
  relations: Record<string, string[]>;
  hidden_replicas: number;
  orphans: Array<{ table: string; oid: number; reltuples: number; locked: boolean; protected: boolean }>;
}

const pick = (o: Record<string, string>, keep: (k: string) => boolean): Record<string, string> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => keep(k)));

/** libpq `options` as vecscale writes them (`-c k=v -c k=v`) → settings. */
export const libpqSettings = (options: string | undefined): Record<string, string> =>
  parseOptions([...(options ?? '').matchAll(/(?:^|\s)-c\s*(\S+)/g)].map((m) => m[1]!));

async function readSecondary(db: Db, tables: readonly string[], fdwUser: string, exact: boolean): Promise<RawSecondary> {
  const row = (await db.query<SecondaryRow>(SECONDARY_SQL, [tables, fdwUser])).rows[0]!;
  // A table another session holds exclusively (a move's cutover, a load) would make its size wait: left unknown.
  const sized = [...row.tables, ...row.orphans].filter((t) => !t.locked);
  const sizes = new Map<string, { rows: number; heap: number; size: number; indexes: Record<string, number>; n: string | null }>();
  let sizesError: string | undefined;
  if (sized.length > 0) {
    try {
      const r = await db.query<{ t: string; rows: number; heap: string; size: string; indexes: Record<string, number>; n: string | null }>(sizesSql(sized, exact));
      for (const x of r.rows) sizes.set(x.t, { rows: Number(x.rows), heap: Number(x.heap), size: Number(x.size), indexes: x.indexes, n: x.n });
    } catch (err) {
      if (!usable(db)) throw err;
      sizesError = String((err as Error).message ?? err).split('\n')[0];
    }
  }
  const locked = [...row.tables, ...row.orphans].filter((t) => t.locked);
  const database = parseOptions(row.database_settings);
  const role = parseOptions(row.role_settings);
  if (locked.length > 0) sizesError ??= `locked by another session: ${locked.map((t) => `vecs.${t.table}`).join(', ')}`;
  return {
    version: row.version,
    pgvector: row.pgvector,
    walLevel: row.wal_level,
    databaseSettings: pick(database, isQuerySetting),
    databaseHazards: pick(database, (k) => !isQuerySetting(k)),
    wrapperRoleSettings: pick(role, isQuerySetting),
    wrapperRoleOwn: role,
    slots: row.slots.map((s) => ({ name: s.name, type: s.type, active: s.active, retainedBytes: s.retained })),
    replicas: row.replicas.map((r) => ({ name: r.name, address: r.address, state: r.state, replayLagSeconds: r.lag_seconds, replayLagBytes: r.lag_bytes })),
    tables: row.tables.map((t) => {
      const z = sizes.get(t.table);
      return {
        table: t.table,
        // Sizes unknown (locked): the catalog's, unscaled.
        reltuples: z === undefined ? t.reltuples : Math.round(z.rows),
        heapBytes: z?.heap ?? null,
        tableBytes: z?.size ?? null,
        lastAnalyze: t.analyzed,
        indexes: t.indexes.map((i) => ({ ...i, options: parseOptions(i.options), bytes: z?.indexes[i.name] ?? null })),
        otherIndexes: t.others,
        ...(z?.n != null ? { count: Number(z.n) } : {}),
      };
    }),
    relations: row.relations,
    ...(sizesError === undefined ? {} : { sizesError }),
    hiddenReplicas: row.hidden_replicas,
    orphans: row.orphans.map((o) => {
      const z = sizes.get(o.table);
      const rows = z?.n != null ? Number(z.n) : z !== undefined ? Math.round(z.rows) : o.reltuples < 0 ? null : Math.round(o.reltuples);
      return { table: o.table, rows, rowsExact: z?.n != null, protected: o.protected };
    }),
  };
}

const PRIMARY_SQL = `
SELECT pg_catalog.current_setting('server_version') AS version,
       (SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink') AS dblink_schema,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object('name', s.srvname, 'options', COALESCE(s.srvoptions, '{}')) ORDER BY s.srvname), '[]')
          FROM pg_catalog.pg_foreign_server s
          JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'postgres_fdw') AS servers,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'schema', n.nspname, 'name', c.relname, 'server', s.srvname, 'options', COALESCE(ft.ftoptions, '{}'), 'comment', d.description,
                 'columns', ARRAY(SELECT COALESCE((SELECT pg_catalog.substr(o, 13) FROM pg_catalog.unnest(a.attfdwoptions) o WHERE o LIKE 'column\\_name=%'), a.attname::text)
                                    FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum))
               ORDER BY n.nspname, c.relname), '[]')
          FROM pg_catalog.pg_foreign_table ft
          JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
          ${COMMENT_JOIN('c.oid', 'pg_class')}
         WHERE n.nspname IN (${literal(REMOTE_SCHEMA)}, ${literal(WRITE_SCHEMA)}, ${literal(HELPER_SCHEMA)})) AS foreign_tables,
       ARRAY(SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = ${literal(API_SCHEMA)} AND c.relkind = 'v' AND c.relname = ANY ($1::pg_catalog.name[])
             UNION ALL
             SELECT p.proname::text || '()' FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = ${literal(API_SCHEMA)} AND p.proname = ANY ($2::pg_catalog.name[])) AS api`;

interface PrimaryRow {
  version: string;
  dblink_schema: string | null;
  servers: Array<{ name: string; options: string[] }>;
  foreign_tables: Array<{ schema: string; name: string; server: string; options: string[]; comment: string | null; columns: string[] }>;
  api: string[];
}

/** At most this many probe connections to the primary at once. */
const PROBE_CONNECTIONS = 8;

/** What a login through one server is tried with: dblink (vecscale's match path) or a read of one of its foreign tables. */
export interface Probe {
  readonly server: string;
  readonly dblinkSchema: string | null;
  readonly table: { readonly schema: string; readonly name: string };
}

/**
 * A login through each server, as the wrappers make it, each on a connection of its own to the primary, at most
 * PROBE_CONNECTIONS at once: a server whose secondary the primary cannot reach hangs only its own probe
 * (postgres_fdw's and dblink's connect cannot be interrupted on PG15), and is named. With dblink (what match_<c>
 * uses), `SELECT 1` through the server's user mapping: it touches no relation, so another session's lock on the
 * secondary cannot hold it up. Without dblink, one row of one of its foreign tables. null: the login worked.
 */
export interface ProbeAnswer {
  /** null: the login worked. */
  readonly error: string | null;
  /** session_replication_role in the wrappers' session on the secondary, as it came (dblink probes only). */
  readonly replicationRole?: string;
}

async function probeServers(target: Target, opts: StatusReadOptions, probes: readonly Probe[]): Promise<Map<string, ProbeAnswer>> {
  const out = new Map<string, ProbeAnswer>();
  const queue = [...probes];
  const worker = async () => {
    for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
      // With dblink, the session's session_replication_role too, wherever it was set (postgresql.conf, ALTER
      // SYSTEM, the database, the role): at replica the secondary's upsert triggers do not fire.
      const sql = p.dblinkSchema !== null
        ? `SELECT t.x FROM ${ident(p.dblinkSchema)}.dblink(${literal(p.server)}, 'SELECT pg_catalog.current_setting(''session_replication_role'')') AS t(x pg_catalog.text)`
        : `SELECT NULL::pg_catalog.text AS x FROM ONLY ${qualified(p.table.schema, p.table.name)} t LIMIT 1`;
      const r = await reading(target, opts, (db) => db.query<{ x: string | null }>(sql), `logging in through server ${p.server}`);
      const role = r.ok ? r.value.rows[0]?.x : undefined;
      out.set(p.server, r.ok ? { error: null, ...(typeof role === 'string' ? { replicationRole: role } : {}) } : { error: r.error });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONNECTIONS, probes.length) }, worker));
  return out;
}

async function readPrimary(db: Db, topology: Topology, secondaryOf: (serverOptions: Record<string, string>) => string | undefined, answered: ReadonlySet<string>, probe: (probes: readonly Probe[]) => Promise<Map<string, ProbeAnswer>>): Promise<RawPrimary> {
  const names = topology.collections.map((c) => c.name);
  const functions = [...names.map(matchFunctionName), ...topology.collections.filter((c) => c.text !== undefined).map((c) => hybridFunctionName(c.name))];
  const row = (await db.query<PrimaryRow>(PRIMARY_SQL, [names, functions])).rows[0]!;
  const servers = new Map(row.servers.map((s) => [s.name, parseOptions(s.options)]));
  const ours = row.foreign_tables.filter((t) => servers.has(t.server));
  const podOf = (server: string) => secondaryOf(servers.get(server) ?? {});
  // One read per server, through its first foreign table: it logs in through the server's user mapping as every
  // query does (a refused password, a secondary the primary cannot reach). Whether each table's remote relation and
  // columns exist is read from the secondary's own catalog (./report.ts): a read per table costs a round trip each.
  // Every server with a foreign table is tried, unless its secondary did not answer status itself (a login
  // through a silent secondary would only wait for the statement timeout).
  const probes = new Map<string, Probe>();
  for (const t of ours) {
    const pod = podOf(t.server);
    if ((pod === undefined || answered.has(pod)) && !probes.has(t.server)) probes.set(t.server, { server: t.server, dblinkSchema: row.dblink_schema, table: t });
  }
  const answers = await probe([...probes.values()]);
  return {
    version: row.version,
    serverSettings: Object.fromEntries([...servers].map(([name, o]) => [name, libpqSettings(o.options)])),
    replicationRoles: Object.fromEntries([...answers].flatMap(([server, a]) => (a.replicationRole === undefined ? [] : [[server, a.replicationRole]]))),
    foreignTables: ours.map((t) => {
      const o = parseOptions(t.options);
      const pod = podOf(t.server);
      return {
        schema: t.schema,
        name: t.name,
        server: t.server,
        remote: `${o.schema_name ?? ''}.${o.table_name ?? ''}`,
        remoteColumns: t.columns,
        managed: isManaged(t.comment),
        ...(pod === undefined ? {} : { secondary: pod }),
        error: probes.has(t.server) ? (answers.get(t.server)?.error ?? null) : 'not tried: its secondary did not answer',
      };
    }),
    apiObjects: row.api,
  };
}

const messageOf = (db: Db | undefined, doing: string, err: unknown): string => {
  if (err instanceof VecscaleError) return err.message;
  const silent = db ? silentOr(db, doing, err) : undefined;
  // postgres_fdw puts libpq's own message (why the login failed; never a password) in the DETAIL.
  const e = err as { message?: string; detail?: string };
  return silent?.message ?? `${doing} failed: ${[e?.message ?? String(err), e?.detail].filter(Boolean).join(': ').split('\n')[0]}`;
};

/** status's bound on waiting for another session's lock: it reads, and must not queue DDL (or be queued) for long. */
const LOCK_TIMEOUT = '1s';

async function reading<T>(target: Target, opts: StatusReadOptions, fn: (db: Db) => Promise<T>, doing = `reading ${describeTarget(target)}`): Promise<Reading<T>> {
  let db: Db | undefined;
  try {
    db = await connect(target, {
      readOnly: true,
      applicationName: 'vecscale status',
      // Session settings (read only, timeouts): the session must be the server's own, as for plan.
      requireSession: true,
      ...(opts.connectTimeoutMs === undefined ? {} : { timeoutMs: opts.connectTimeoutMs }),
      ...(opts.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: opts.statementTimeoutMs }),
    });
    await db.query(`SET lock_timeout = ${literal(LOCK_TIMEOUT)}`);
    return { ok: true, value: await fn(db) };
  } catch (err) {
    return { ok: false, error: messageOf(db, doing, err) };
  } finally {
    if (db) await close(db);
  }
}

/** Reads every database at once; the primary's wrapper round trips wait only for the secondaries' answers. */
export async function readStatus(topology: Topology, opts: StatusReadOptions = {}): Promise<RawStatus> {
  const secondaryReads = new Map(
    topology.secondaries.map((s) => {
      const tables = topology.collections.flatMap((c) => partsOf(c).filter((p) => p.secondary === s.name).map((p) => p.table));
      return [s.name, reading({ database: s.name, url: s.url }, opts, (db) => readSecondary(db, tables, s.fdwUser, opts.exact ?? false))] as const;
    }),
  );
  const settled = Promise.all([...secondaryReads].map(async ([name, p]) => [name, await p] as const)).then((x) => new Map(x));
  const primary = reading({ database: 'primary', url: topology.primary.url }, opts, async (db) => {
    const secondaries = await settled;
    const byAddress = new Map(
      topology.secondaries.map((s) => {
        const u = parsePgUrl(s.url);
        return [`${u.host}:${u.port}/${u.database}` as string, s.name] as const;
      }),
    );
    // A server's secondary: the one at any of its hosts (a secondary with standbys lists them with it).
    const secondaryOf = (o: Record<string, string>) => {
      const hosts = (o.host ?? '').split(',');
      const ports = (o.port ?? '').split(',');
      return hosts.map((h, i) => byAddress.get(`${h}:${ports[i] ?? ports[0] ?? ''}/${o.dbname ?? ''}`)).find((x) => x !== undefined);
    };
    const answered = new Set(topology.secondaries.filter((s) => secondaries.get(s.name)?.ok).map((s) => s.name));
    const primaryTarget = { database: 'primary', url: topology.primary.url };
    return readPrimary(db, topology, secondaryOf, answered, (probes) => probeServers(primaryTarget, opts, probes));
  });
  return { primary: await primary, secondaries: await settled };
}
