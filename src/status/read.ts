/**
 * `vecscale status`, the reading half: what each database says about itself, in a fixed number of statements per
 * database whatever the number of collections, every database at once. Read-only sessions; nothing is created,
 * not even a temporary object. The raw rows stay in this file's types; ./report.ts judges them.
 *
 * A database that cannot be reached, or stops answering, is a result (`error`), not a failure: status reports the
 * others and names it. The wrapper round trips (one per foreign server) run last, on the primary, and only through
 * servers whose secondary answered: a round trip to a silent secondary would wait for the whole statement's timeout.
 */
import type { Topology } from '../config/types.js';
import { close, connect, type Db, describeTarget, silentOr, type Target } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { partsOf } from '../model/placement.js';
import { API_SCHEMA, REMOTE_SCHEMA, WRITE_SCHEMA } from '../model/state.js';
import { matchFunctionName } from '../query/match-function.js';
import { literal, qualified } from '../sql/quote.js';
import { parsePgUrl } from '../util/url.js';

export interface StatusReadOptions {
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
  /** Count every table's rows exactly (default: only tables whose heap is at most EXACT_COUNT_BYTES). */
  readonly exact?: boolean;
}

/** Tables up to this heap size are counted exactly (a sequential scan of 64 MB takes tens of milliseconds). */
export const EXACT_COUNT_BYTES = 64 * 1024 * 1024;

export interface RawIndex {
  readonly name: string;
  readonly method: string;
  readonly opclass: string;
  readonly options: Record<string, string>;
  readonly valid: boolean;
  readonly bytes: number;
}

export interface RawTable {
  readonly table: string;
  /** pg_class.reltuples: -1 when never vacuumed or analyzed. */
  readonly reltuples: number;
  /** Heap (main fork) bytes. */
  readonly heapBytes: number;
  /** Heap and TOAST: pg_table_size. */
  readonly tableBytes: number;
  readonly lastAnalyze: string | null;
  readonly indexes: readonly RawIndex[];
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
  readonly slots: readonly RawSlot[];
  readonly replicas: readonly RawReplica[];
  readonly tables: readonly RawTable[];
  /** Every relation in vecs and vecscale, `schema.name`: what the primary's foreign tables may read. */
  readonly relations: readonly string[];
}

export interface RawForeignTable {
  readonly schema: string;
  readonly name: string;
  readonly server: string;
  /** The remote relation it reads (schema_name, table_name options). */
  readonly remote: string;
  /** The secondary its server points at (by host, port and database), when it is one of the topology's. */
  readonly secondary?: string;
  /** null: the one-row read through its server worked (`tried`: through this table). */
  readonly error: string | null;
  readonly tried: boolean;
}

export interface RawPrimary {
  readonly version: string;
  /** Server name → its `options` option (libpq `-c k=v …`), parsed. */
  readonly serverSettings: Record<string, Record<string, string>>;
  readonly foreignTables: readonly RawForeignTable[];
  /** `public.<c>` views and `public.match_<c>` functions present, by name. */
  readonly apiObjects: readonly string[];
}

export type Reading<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export interface RawStatus {
  readonly primary: Reading<RawPrimary>;
  readonly secondaries: ReadonlyMap<string, Reading<RawSecondary>>;
}

const QUERY_SETTING = `(s.setting LIKE 'hnsw.%' OR s.setting LIKE 'ivfflat.%')`;

// One statement: the facts of a secondary, its slots and standbys, and its collection tables with their vector indexes.
// NOTE: pg_current_wal_lsn() fails on a standby; a secondary is a primary server (its standbys are read-only copies).
const SECONDARY_SQL = `
SELECT pg_catalog.current_setting('server_version') AS version,
       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'vector') AS pgvector,
       pg_catalog.current_setting('wal_level') AS wal_level,
       (SELECT COALESCE(pg_catalog.json_agg(s.setting), '[]') FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) s(setting)
         WHERE d.setrole = 0 AND d.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
           AND ${QUERY_SETTING}) AS database_settings,
       (SELECT COALESCE(pg_catalog.json_agg(s.setting ORDER BY d.setdatabase), '[]') FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) s(setting)
         WHERE d.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)
           AND d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
           AND ${QUERY_SETTING}) AS role_settings,
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
          FROM pg_catalog.pg_stat_replication a) AS replicas,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'table', c.relname, 'reltuples', c.reltuples,
                 'heap', pg_catalog.pg_relation_size(c.oid), 'size', pg_catalog.pg_table_size(c.oid),
                 'analyzed', GREATEST(st.last_analyze, st.last_autoanalyze),
                 'indexes', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                                 'name', ic.relname, 'method', am.amname, 'opclass', opc.opcname,
                                 'options', COALESCE(ic.reloptions, '{}'), 'valid', i.indisvalid,
                                 'bytes', pg_catalog.pg_relation_size(ic.oid)) ORDER BY ic.relname), '[]')
                               FROM pg_catalog.pg_index i
                               JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                               JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                               JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0]
                              WHERE i.indrelid = c.oid AND am.amname IN ('hnsw', 'ivfflat')))
               ORDER BY c.relname), '[]')
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_catalog.pg_stat_all_tables st ON st.relid = c.oid
         WHERE n.nspname = 'vecs' AND c.relkind = 'r' AND c.relname = ANY ($1::pg_catalog.name[])) AS tables,
       ARRAY(SELECT n.nspname::text || '.' || c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('vecs', 'vecscale') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) AS relations`;

interface SecondaryRow {
  version: string;
  pgvector: string | null;
  wal_level: string;
  database_settings: string[];
  role_settings: string[];
  slots: Array<{ name: string; type: 'logical' | 'physical'; active: boolean; retained: number | null }>;
  replicas: Array<{ name: string; address: string | null; state: string; lag_seconds: number | null; lag_bytes: number | null }>;
  tables: Array<{ table: string; reltuples: number; heap: number; size: number; analyzed: string | null; indexes: Array<Omit<RawIndex, 'options'> & { options: string[] }> }>;
  relations: string[];
}

/** `k=v` strings (reloptions, setconfig) as a record; the last of a key wins, as in PostgreSQL. */
const keyValues = (items: readonly string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const o of items) {
    const i = o.indexOf('=');
    if (i > 0) out[o.slice(0, i)] = o.slice(i + 1);
  }
  return out;
};

/** libpq `options` as vecscale writes them (`-c k=v -c k=v`) → settings. */
export const libpqSettings = (options: string | undefined): Record<string, string> =>
  keyValues([...(options ?? '').matchAll(/(?:^|\s)-c\s*(\S+)/g)].map((m) => m[1]!));

async function readSecondary(db: Db, tables: readonly string[], fdwUser: string, exact: boolean): Promise<RawSecondary> {
  const row = (await db.query<SecondaryRow>(SECONDARY_SQL, [tables, fdwUser])).rows[0]!;
  // A second statement only when there is something to count: every table at once.
  const toCount = row.tables.filter((t) => exact || t.reltuples < 0 || t.heap <= EXACT_COUNT_BYTES).map((t) => t.table);
  const counts = new Map<string, number>();
  if (toCount.length > 0) {
    const r = await db.query<{ t: string; n: string }>(
      toCount.map((t) => `SELECT ${literal(t)} AS t, pg_catalog.count(*) AS n FROM ${qualified('vecs', t)}`).join(' UNION ALL '),
    );
    for (const x of r.rows) counts.set(x.t, Number(x.n));
  }
  return {
    version: row.version,
    pgvector: row.pgvector,
    walLevel: row.wal_level,
    databaseSettings: keyValues(row.database_settings),
    wrapperRoleSettings: keyValues(row.role_settings),
    slots: row.slots.map((s) => ({ name: s.name, type: s.type, active: s.active, retainedBytes: s.retained })),
    replicas: row.replicas.map((r) => ({ name: r.name, address: r.address, state: r.state, replayLagSeconds: r.lag_seconds, replayLagBytes: r.lag_bytes })),
    tables: row.tables.map((t) => ({
      table: t.table,
      reltuples: t.reltuples,
      heapBytes: Number(t.heap),
      tableBytes: Number(t.size),
      lastAnalyze: t.analyzed,
      indexes: t.indexes.map((i) => ({ ...i, options: keyValues(i.options), bytes: Number(i.bytes) })),
      ...(counts.has(t.table) ? { count: counts.get(t.table)! } : {}),
    })),
    relations: row.relations,
  };
}

const PRIMARY_SQL = `
SELECT pg_catalog.current_setting('server_version') AS version,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object('name', s.srvname, 'options', COALESCE(s.srvoptions, '{}')) ORDER BY s.srvname), '[]')
          FROM pg_catalog.pg_foreign_server s
          JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'postgres_fdw') AS servers,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                 'schema', n.nspname, 'name', c.relname, 'server', s.srvname, 'options', COALESCE(ft.ftoptions, '{}'))
               ORDER BY n.nspname, c.relname), '[]')
          FROM pg_catalog.pg_foreign_table ft
          JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
         WHERE n.nspname IN (${literal(REMOTE_SCHEMA)}, ${literal(WRITE_SCHEMA)})) AS foreign_tables,
       ARRAY(SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = ${literal(API_SCHEMA)} AND c.relkind = 'v' AND c.relname = ANY ($1::pg_catalog.name[])
             UNION ALL
             SELECT p.proname::text || '()' FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = ${literal(API_SCHEMA)} AND p.proname = ANY ($2::pg_catalog.name[])) AS api`;

interface PrimaryRow {
  version: string;
  servers: Array<{ name: string; options: string[] }>;
  foreign_tables: Array<{ schema: string; name: string; server: string; options: string[] }>;
  api: string[];
}

/**
 * One read of one row through each foreign table, in one statement: a DO block whose every read has its own
 * exception block (a failure is recorded, the rest go on), the outcomes left in a transaction-local setting read by
 * the same round trip. A read through a view the secondary no longer has, or with a password the wrapper role no
 * longer has, fails here as the applications' queries would.
 */
async function roundTrips(db: Db, tables: ReadonlyArray<{ schema: string; name: string }>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (tables.length === 0) return out;
  const reads = tables
    .map((t) => {
      const key = literal(`${t.schema}.${t.name}`);
      // NOTE: LIMIT 1 is shipped: the secondary reads at most one row. `WHERE false` would never connect.
      return `  BEGIN
    PERFORM 1 FROM ONLY ${qualified(t.schema, t.name)} LIMIT 1;
    r := r || pg_catalog.jsonb_build_object(${key}, NULL);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    r := r || pg_catalog.jsonb_build_object(${key}, pg_catalog.concat_ws(': ', msg, NULLIF(detail, '')));
  END;`;
    })
    .join('\n');
  const block = `DO $vecscale_status$
DECLARE r pg_catalog.jsonb := '{}'; msg pg_catalog.text; detail pg_catalog.text;
BEGIN
${reads}
  PERFORM pg_catalog.set_config('vecscale.status_round_trips', r::pg_catalog.text, true);
END
$vecscale_status$`;
  // Simple protocol, one round trip: BEGIN; the block; the setting it left; COMMIT.
  const results = (await db.query(`BEGIN READ ONLY; ${block}; SELECT pg_catalog.current_setting('vecscale.status_round_trips') AS r; COMMIT`)) as unknown as Array<{ rows: Array<{ r?: string }> }>;
  const parsed = JSON.parse(results.find((x) => x.rows[0]?.r !== undefined)?.rows[0]?.r ?? '{}') as Record<string, string | null>;
  for (const [k, v] of Object.entries(parsed)) out.set(k, v === null ? null : v.split('\n')[0]!);
  return out;
}

async function readPrimary(db: Db, topology: Topology, secondaryOf: (serverOptions: Record<string, string>) => string | undefined, answered: ReadonlySet<string>): Promise<RawPrimary> {
  const names = topology.collections.map((c) => c.name);
  const row = (await db.query<PrimaryRow>(PRIMARY_SQL, [names, names.map(matchFunctionName)])).rows[0]!;
  const servers = new Map(row.servers.map((s) => [s.name, keyValues(s.options)]));
  const ours = row.foreign_tables.filter((t) => servers.has(t.server));
  const podOf = (server: string) => secondaryOf(servers.get(server) ?? {});
  // One read per server, through its first foreign table: it logs in through the server's user mapping as every
  // query does (a refused password, a secondary the primary cannot reach). Whether each table's remote relation
  // exists is read from the secondary's own catalog (./report.ts): a read per table costs a round trip each.
  const probes = new Map<string, { schema: string; name: string }>();
  for (const t of ours) {
    const pod = podOf(t.server);
    if (pod !== undefined && answered.has(pod) && !probes.has(t.server)) probes.set(t.server, t);
  }
  const answers = await roundTrips(db, [...probes.values()]);
  return {
    version: row.version,
    serverSettings: Object.fromEntries([...servers].map(([name, o]) => [name, libpqSettings(o.options)])),
    foreignTables: ours.map((t) => {
      const o = keyValues(t.options);
      const key = `${t.schema}.${t.name}`;
      const probe = probes.get(t.server);
      const pod = podOf(t.server);
      const serverError = probe ? (answers.get(`${probe.schema}.${probe.name}`) ?? null) : pod === undefined ? 'not tried: its server points at no secondary of the topology' : 'not tried: its secondary did not answer';
      const tried = probe !== undefined && `${probe.schema}.${probe.name}` === key;
      // The probe's failure is the server's when it is the login's (every table's reads fail so), its table's own else.
      const loginFailed = serverError !== null && /could not connect|password|connection|not tried/i.test(serverError);
      return {
        schema: t.schema,
        name: t.name,
        server: t.server,
        remote: `${o.schema_name ?? ''}.${o.table_name ?? ''}`,
        ...(pod === undefined ? {} : { secondary: pod }),
        error: tried || loginFailed ? serverError : null,
        tried,
      };
    }),
    apiObjects: row.api,
  };
}

const messageOf = (db: Db | undefined, doing: string, err: unknown): string => {
  if (err instanceof VecscaleError) return err.message;
  const silent = db ? silentOr(db, doing, err) : undefined;
  return silent?.message ?? `${doing} failed: ${String((err as Error)?.message ?? err).split('\n')[0]}`;
};

async function reading<T>(target: Target, opts: StatusReadOptions, fn: (db: Db) => Promise<T>): Promise<Reading<T>> {
  let db: Db | undefined;
  try {
    db = await connect(target, {
      readOnly: true,
      applicationName: 'vecscale status',
      ...(opts.connectTimeoutMs === undefined ? {} : { timeoutMs: opts.connectTimeoutMs }),
      ...(opts.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: opts.statementTimeoutMs }),
    });
    return { ok: true, value: await fn(db) };
  } catch (err) {
    return { ok: false, error: messageOf(db, `reading ${describeTarget(target)}`, err) };
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
    return readPrimary(db, topology, secondaryOf, answered);
  });
  return { primary: await primary, secondaries: await settled };
}
