/**
 * Removing a move's machinery: subscriptions (which drop their slots on the source, sync slots included),
 * publications, any slot still there, mirror triggers and their functions, staging and beacon tables, and the
 * move marks of targets. Run before a move starts (what an interrupted attempt left) and after it finished. Every
 * statement is idempotent, so a run cut off half-way is finished by the next.
 */
import type { Db } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { type LiveDatabase, MANAGED_COMMENT, PROTECTED_MARK, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { ident, literal } from '../sql/quote.js';
import { detachSql, FAST_DEADLOCK_CHECK } from './sql.js';

export interface RemoveOptions {
  readonly dbs: ReadonlyMap<string, Db>;
  readonly live: ReadonlyMap<string, LiveDatabase>;
  /** Whether a replication object's or function's name is one to remove. */
  readonly belongs: (name: string) => boolean;
  /** Whether a move-marked table (`vecs.t`, `vecscale.t`) is one to remove or unmark. */
  readonly tableBelongs: (database: string, qualifiedName: string) => boolean;
  /** A move target the primary reads: unmarked (with `protect`'s mark when set), never dropped. */
  readonly isLive: (database: string, qualifiedName: string) => boolean;
  readonly protect: boolean;
  /** Slots to drop by name as well (orphaned table-sync slots, `pg_<oid>_sync_…`). */
  readonly slots?: readonly { readonly database: string; readonly name: string }[];
  /** Tables of `vecs` (unqualified names) whose REPLICA IDENTITY FULL a move set (sources of row-filtered flows). */
  readonly fullIdentity?: (database: string, table: string) => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function q(db: Db, database: string, sql: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[] }> {
  try {
    return await db.query(sql, params);
  } catch (err) {
    throw new VecscaleError('database', `${database}: removing a move's replication objects: ${(err as Error).message}`, { cause: err, meta: { database, sqlstate: (err as { code?: string }).code ?? null } });
  }
}

const quotedTable = (qualifiedName: string): string => {
  const dot = qualifiedName.indexOf('.');
  return `${ident(qualifiedName.slice(0, dot))}.${ident(qualifiedName.slice(dot + 1))}`;
};

const VIEWS_OVER = `SELECT DISTINCT vn.nspname, v.relname FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
  JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refobjid = pg_catalog.to_regclass($1) AND v.oid <> d.refobjid
    AND pg_catalog.obj_description(v.oid, 'pg_class') LIKE $2`;

/** Drops a slot by name if it exists, waiting (bounded) for a walsender that still serves it to go. */
export async function dropSlot(db: Db, database: string, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await q(db, database, 'SELECT active, active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND (database IS NULL OR database = pg_catalog.current_database())', [name]);
    const row = r.rows[0];
    if (!row) return;
    if (!row.active) {
      await q(db, database, 'SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active AND (database IS NULL OR database = pg_catalog.current_database())', [name]);
      continue;
    }
    // The subscription that used it is gone; its walsender notices within wal_sender_timeout. Do not wait that long.
    if (i === 20) await q(db, database, 'SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND active AND (database IS NULL OR database = pg_catalog.current_database())', [name]);
    await sleep(100);
  }
  throw new VecscaleError('database', `${database}: replication slot ${name} is still in use after 10 s; drop it with SELECT pg_drop_replication_slot('${name}') once its connection is gone`);
}

/** Detaches every partition of a staging table and drops it, in one short transaction, retried if a lock waits. */
async function detachAll(db: Db, database: string, staging: string): Promise<void> {
  const parent = staging.slice(staging.indexOf('.') + 1);
  await lockedTransaction(db, database, '1s', async () => {
    const children = await q(db, database, `SELECT n.nspname, c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = pg_catalog.to_regclass($1) ORDER BY c.relname`, [quotedTable(staging)]);
    const names = children.rows.map((c) => `${ident(String(c.nspname))}.${ident(String(c.relname))}`);
    if (names.length > 0) await q(db, database, `LOCK TABLE ${names.join(', ')} IN ACCESS EXCLUSIVE MODE`);
    await q(db, database, `LOCK TABLE ${quotedTable(staging)} IN ACCESS EXCLUSIVE MODE`);
    for (const c of children.rows) await q(db, database, detachSql(parent, String(c.relname)));
    await q(db, database, `DROP TABLE IF EXISTS ${quotedTable(staging)}`);
  });
}

/**
 * Runs `work` in a transaction with a short lock_timeout, tried again (up to 20 times, backing off) when a lock
 * waited too long or a deadlock chose it: what needs ACCESS EXCLUSIVE for a moment waits behind a long transaction
 * without making every later reader and writer wait behind it.
 */
async function lockedTransaction(db: Db, database: string, lockTimeout: string, work: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await q(db, database, 'BEGIN');
    try {
      await q(db, database, `SET LOCAL lock_timeout = ${literal(lockTimeout)}`);
      await q(db, database, FAST_DEADLOCK_CHECK);
      await work();
      await q(db, database, 'COMMIT');
      return;
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      const code = ((err as VecscaleError).meta?.sqlstate ?? '') as string;
      if (attempt >= 20 || (code !== '55P03' && code !== '40P01')) throw err;
      await sleep(100 * attempt);
    }
  }
}

/** Removes what `opts` selects on every database. */
export async function removeMachinery(opts: RemoveOptions): Promise<void> {
  const { dbs, live } = opts;
  const db = (name: string) => {
    const d = dbs.get(name);
    if (!d) throw new Error(`no connection for ${name}`);
    return d;
  };
  for (const [name, l] of live) {
    for (const s of l.facts.replication?.subscriptions ?? []) {
      if (!opts.belongs(s.name)) continue;
      try {
        // Disabled first, in a transaction of its own: on PostgreSQL 15 and older the launcher tries to restart the
        // worker of an enabled subscription dropped under it, and that attempt holds back every worker start on the
        // cluster for wal_retrieve_retry_interval (5 s): the next move's subscription (a rerun's above all) waits.
        // (A subscription already gone is fine: DROP … IF EXISTS below.)
        if (s.enabled) await db(name).query(`ALTER SUBSCRIPTION ${ident(s.name)} DISABLE`).catch(() => undefined);
        // Connects to the source and drops the slot and any table-sync slot there.
        await db(name).query(`DROP SUBSCRIPTION IF EXISTS ${ident(s.name)}`);
      } catch {
        // The source is unreachable: keep the subscription from holding anything, then drop it; its slot is dropped below.
        await q(db(name), name, `ALTER SUBSCRIPTION ${ident(s.name)} DISABLE`);
        await q(db(name), name, `ALTER SUBSCRIPTION ${ident(s.name)} SET (slot_name = NONE)`);
        await q(db(name), name, `DROP SUBSCRIPTION IF EXISTS ${ident(s.name)}`);
      }
    }
  }
  for (const [name, l] of live) {
    for (const p of l.facts.replication?.publications ?? []) if (opts.belongs(p.name)) await q(db(name), name, `DROP PUBLICATION IF EXISTS ${ident(p.name)}`);
    for (const s of l.facts.replication?.slots ?? []) if (opts.belongs(s.name)) await dropSlot(db(name), name, s.name);
    for (const s of opts.slots ?? []) if (s.database === name) await dropSlot(db(name), name, s.name);
    for (const o of l.state.objects.values()) {
      if (o.kind !== 'function' || o.schema !== SECONDARY_SCHEMA || !opts.belongs(o.name)) continue;
      const triggers = await q(db(name), name, `SELECT t.tgname, c.relname, n.nspname FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE t.tgfoid = (SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace WHERE pn.nspname = $1 AND p.proname = $2 AND p.pronargs = 0)`, [o.schema, o.name]);
      for (const t of triggers.rows) await q(db(name), name, `DROP TRIGGER IF EXISTS ${ident(String(t.tgname))} ON ${ident(String(t.nspname))}.${ident(String(t.relname))}`);
      await q(db(name), name, `DROP FUNCTION IF EXISTS ${ident(o.schema)}.${ident(o.name)}()`);
    }
    const marked = [...(l.facts.moveMarks ?? [])].map(([key, mark]) => ({ table: key.slice('relation:'.length), mark })).filter((m) => opts.tableBelongs(name, m.table));
    // Staging tables: their partitions (targets, or other staging tables) are detached first, so no target goes with
    // them. A write to a partition locks the partition, then its parent: lock in that order, or writers deadlock.
    for (const m of marked.filter((x) => x.mark === 'staging')) await detachAll(db(name), name, m.table);
    for (const m of marked.filter((x) => x.mark !== 'target')) await q(db(name), name, `DROP TABLE IF EXISTS ${quotedTable(m.table)}`);
    for (const m of marked.filter((x) => x.mark === 'target')) {
      if (opts.isLive(name, m.table)) {
        await q(db(name), name, `COMMENT ON TABLE ${quotedTable(m.table)} IS ${literal(MANAGED_COMMENT + (opts.protect ? PROTECTED_MARK : ''))}`);
      } else {
        // A copy that never went live: vecscale's own views over it (made with it) go first; anything else keeps it.
        const views = await q(db(name), name, VIEWS_OVER, [quotedTable(m.table), `${MANAGED_COMMENT}%`]);
        for (const v of views.rows) await q(db(name), name, `DROP VIEW IF EXISTS ${ident(String(v.nspname))}.${ident(String(v.relname))}`);
        await q(db(name), name, `DROP TABLE IF EXISTS ${quotedTable(m.table)}`);
      }
    }
    if (opts.fullIdentity) {
      const full = await q(db(name), name, `SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(${literal(VECS_SCHEMA)})::pg_catalog.oid AND c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relreplident OPERATOR(pg_catalog.=) 'f' ORDER BY c.relname`);
      for (const r of full.rows) if (opts.fullIdentity(name, String(r.relname))) await replicaIdentity(db(name), name, String(r.relname), 'DEFAULT');
    }
  }
}

/**
 * Sets a vecs table's REPLICA IDENTITY in a short transaction of its own (it takes ACCESS EXCLUSIVE for a moment),
 * retried while a reader or writer is in the way. FULL for the source of a row-filtered flow: an UPDATE that moves a
 * row into the filter is published as an INSERT, and PostgreSQL fills its unchanged TOASTed vector from the old row,
 * which only FULL logs (with DEFAULT, the target would get a NULL vector and its apply worker fail forever).
 */
export async function replicaIdentity(db: Db, database: string, table: string, identity: 'FULL' | 'DEFAULT'): Promise<void> {
  await lockedTransaction(db, database, '500ms', async () => {
    await q(db, database, `ALTER TABLE ${ident(VECS_SCHEMA)}.${ident(table)} REPLICA IDENTITY ${identity}`);
  });
}
