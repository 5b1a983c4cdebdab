/**
 * Logical replication facts of one database (`ReplicationFacts`), read inside the catalog reader's READ ONLY
 * transaction (search_path = pg_catalog). Settings, headroom and the connecting role's rights are what a move's
 * prerequisites are checked against (src/move/prerequisites.ts); the objects named with vecscale's prefix are what an
 * interrupted move left, reported by `plan` and removed by `apply`.
 * Raw rows stay in this file and ./catalog.ts; `toReplicationFacts` (pure) maps them into the model.
 */
import type { ReplicationFacts, ReplicationSlotFact } from '../model/state.js';
import { MOVE_PREFIX } from '../move/names.js';
import { byCodePoint } from '../util/fingerprint.js';

/** The catalog reader's query function (runs in its transaction). */
export type CatalogQuery = <R>(text: string, values?: unknown[]) => Promise<R[]>;

interface RawSlot {
  slot_name: string;
  database: string | null;
  active: boolean;
  /** Bytes, as text: int8 arrives as a string. */
  retained: string | null;
}

/** What `readReplication` returns: catalog rows as they come, for `toReplicationFacts`. */
export interface RawReplication {
  readonly settings: {
    wal_level: string;
    max_replication_slots: string;
    max_wal_senders: string;
    max_logical_replication_workers: string;
    max_sync_workers_per_subscription: string;
    rolsuper: boolean;
    rolreplication: boolean;
    used_slots: string;
    used_senders: string;
    enabled_subscriptions: string;
    system_identifier: string;
    started_at: string;
    /** Every subscription of the cluster, any name: a table-sync slot names its subscription by oid. */
    subscription_oids: number[];
  };
  readonly slots: readonly RawSlot[];
  /** Slots named as PostgreSQL names a subscription's table-sync slot (`pg_<suboid>_sync_<relid>_<sysid>`). */
  readonly syncSlots: readonly RawSlot[];
  readonly publications: ReadonlyArray<{ pubname: string; tables: string[] }>;
  readonly subscriptions: ReadonlyArray<{
    subname: string;
    subenabled: boolean;
    subslotname: string | null;
    subpublications: string[];
    /** `schema.name` → srsubstate; null when it has no table yet. */
    tables: Record<string, string> | null;
  }>;
}

// NOTE: `_` is LIKE's one-character wildcard: the prefix is matched with its underscores escaped.
const like = (s: string): string => s.replace(/[\\%_]/g, '\\$&');
const MOVE_LIKE = `${like(MOVE_PREFIX)}%`;

// NOTE: pg_current_wal_lsn() raises on a standby ("recovery is in progress"); CASE evaluates it only on a primary.
// restart_lsn is NULL for a slot reserved without WAL, or invalidated by max_slot_wal_keep_size.
const SLOT_COLUMNS = `s.slot_name::text, s.database::text, s.active,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery() AND s.restart_lsn IS NOT NULL
            THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::pg_catalog.int8::text END AS retained`;

/**
 * Reads the replication facts. Everything read here is readable by PUBLIC on PostgreSQL 15, so a non-superuser
 * (a Supabase project's `postgres`) introspects without error.
 */
export async function readReplication(q: CatalogQuery): Promise<RawReplication> {
  // NOTE: pg_stat_replication and pg_replication_slots list every row to any role (a non-superuser sees some
  // columns NULL, never fewer rows). pg_control_system() is PUBLIC's to execute.
  const settings = (await q<RawReplication['settings']>(
    `SELECT pg_catalog.current_setting('wal_level') AS wal_level,
            pg_catalog.current_setting('max_replication_slots') AS max_replication_slots,
            pg_catalog.current_setting('max_wal_senders') AS max_wal_senders,
            pg_catalog.current_setting('max_logical_replication_workers') AS max_logical_replication_workers,
            pg_catalog.current_setting('max_sync_workers_per_subscription') AS max_sync_workers_per_subscription,
            r.rolsuper, r.rolreplication,
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots)::text AS used_slots,
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication)::text AS used_senders,
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription s WHERE s.subenabled)::text AS enabled_subscriptions,
            (SELECT c.system_identifier::text FROM pg_catalog.pg_control_system() c) AS system_identifier,
            pg_catalog.pg_postmaster_start_time()::text AS started_at,
            ARRAY(SELECT s.oid::int8 FROM pg_catalog.pg_subscription s ORDER BY 1) AS subscription_oids
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  ))[0]!;
  const slots = await q<RawSlot>(
    `SELECT ${SLOT_COLUMNS} FROM pg_catalog.pg_replication_slots s WHERE s.slot_name::text LIKE $1 AND s.database = pg_catalog.current_database() ORDER BY 1`,
    [MOVE_LIKE],
  );
  const syncSlots = await q<RawSlot>(
    `SELECT ${SLOT_COLUMNS} FROM pg_catalog.pg_replication_slots s WHERE s.slot_name::text ~ '^pg_[0-9]+_sync_[0-9]+_[0-9]+$' ORDER BY 1`,
  );
  const publications = await q<RawReplication['publications'][number]>(
    `SELECT p.pubname::text,
            ARRAY(SELECT t.schemaname::text || '.' || t.tablename::text FROM pg_catalog.pg_publication_tables t
                   WHERE t.pubname = p.pubname ORDER BY 1) AS tables
       FROM pg_catalog.pg_publication p WHERE p.pubname::text LIKE $1 ORDER BY 1`,
    [MOVE_LIKE],
  );
  // NOTE: pg_subscription is shared by the cluster's databases (subdbid says whose). Its subconninfo holds the
  // connection's password and is never selected: PG15 revokes it from PUBLIC and grants every other column.
  const subscriptions = await q<RawReplication['subscriptions'][number]>(
    `SELECT s.subname::text, s.subenabled, s.subslotname::text AS subslotname, s.subpublications::text[] AS subpublications,
            (SELECT pg_catalog.json_object_agg(n.nspname::text || '.' || c.relname::text, sr.srsubstate::text)
               FROM pg_catalog.pg_subscription_rel sr JOIN pg_catalog.pg_class c ON c.oid = sr.srrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE sr.srsubid = s.oid) AS tables
       FROM pg_catalog.pg_subscription s
      WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
        AND s.subname::text LIKE $1
      ORDER BY 1`,
    [MOVE_LIKE],
  );
  return { settings, slots, syncSlots, publications, subscriptions };
}

const slotOf = (s: RawSlot): ReplicationSlotFact => ({
  name: s.slot_name,
  database: s.database,
  active: s.active,
  retainedBytes: s.retained === null ? null : Number(s.retained),
});

/** Pure: the raw rows as the model's `ReplicationFacts`. */
export function toReplicationFacts(raw: RawReplication): ReplicationFacts {
  const s = raw.settings;
  return {
    walLevel: s.wal_level,
    superuser: s.rolsuper,
    // NOTE: a superuser may replicate whatever rolreplication says.
    replication: s.rolsuper || s.rolreplication,
    maxReplicationSlots: Number(s.max_replication_slots),
    usedReplicationSlots: Number(s.used_slots),
    maxWalSenders: Number(s.max_wal_senders),
    usedWalSenders: Number(s.used_senders),
    maxLogicalReplicationWorkers: Number(s.max_logical_replication_workers),
    maxSyncWorkersPerSubscription: Number(s.max_sync_workers_per_subscription),
    enabledSubscriptions: Number(s.enabled_subscriptions),
    cluster: { systemIdentifier: s.system_identifier, startedAt: s.started_at },
    subscriptionOids: s.subscription_oids.map(Number),
    slots: raw.slots.map(slotOf),
    syncSlots: raw.syncSlots.map(slotOf),
    publications: raw.publications.map((p) => ({ name: p.pubname, tables: [...p.tables].sort(byCodePoint) })),
    subscriptions: raw.subscriptions.map((x) => ({
      name: x.subname,
      enabled: x.subenabled,
      slotName: x.subslotname,
      publications: [...x.subpublications],
      tables: Object.fromEntries(Object.entries(x.tables ?? {}).sort(([a], [b]) => byCodePoint(a, b))),
    })),
  };
}
