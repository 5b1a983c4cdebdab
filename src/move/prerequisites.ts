/**
 * What a plan's moves need of PostgreSQL's logical replication, checked against introspected facts before anything
 * starts, and what interrupted moves left behind. Pure.
 *
 * The rule, per cluster (databases of one cluster share its slots, WAL senders and workers; demands add up):
 * - a source of N subscriptions (one per target database it feeds) needs wal_level = logical, N + 1 free
 *   replication slots and N + 1 free WAL senders: one slot and sender per subscription for its life, plus one for the
 *   table-sync slot PostgreSQL creates on the source while a subscription's initial copy runs (copies queue behind
 *   one another for that one; with none free a copy never starts). The connecting role needs REPLICATION or superuser.
 * - a target of M subscriptions needs M + 1 free logical replication workers (an apply worker each, plus one
 *   table-sync worker at a time for the copies), max_sync_workers_per_subscription above 0, and a superuser
 *   (PostgreSQL 15 lets only superusers CREATE SUBSCRIPTION).
 * vecscale's own slots and subscriptions (named MOVE_PREFIX…) count as free: apply removes or reuses each of them.
 */
import type { ReplicationFacts, ReplicationSlotFact } from '../model/state.js';
import type { Blocker, MoveLeftover, Note } from '../plan/types.js';
import { isMoveObject } from './names.js';

/** One database's part in the planned moves. */
export interface ReplicationDemand {
  /** vecscale's name of the database (`pod_a`). */
  readonly database: string;
  /** The role vecscale connects as there (LiveFacts.currentUser). */
  readonly role: string;
  /** undefined: not read, which blocks a database the moves need. */
  readonly facts: ReplicationFacts | undefined;
  /** Subscriptions this database serves as a source: cross-database flows grouped by target database. */
  readonly sourceSubscriptions: number;
  /** Subscriptions created on this database as a target. */
  readonly targetSubscriptions: number;
}

/** Headroom kept above the exact need in suggested settings: a restart is costly, a few spare slots are not. */
const SPARE = 4;
const RESTART = 'then restart the server: the setting takes effect only at server start';

const clusterKey = (d: ReplicationDemand): string =>
  d.facts?.cluster ? `${d.facts.cluster.systemIdentifier}@${d.facts.cluster.startedAt}` : `database:${d.database}`;

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** Free slots, counting vecscale's own as free (apply drops or reuses them before it creates any). */
export function freeSlots(f: ReplicationFacts): number {
  return f.maxReplicationSlots - f.usedReplicationSlots + f.slots.filter((s) => isMoveObject(s.name)).length;
}

/** Free WAL senders: an active vecscale slot is streamed by a sender its subscription holds, freed with it. */
export function freeWalSenders(f: ReplicationFacts): number {
  const ours = f.slots.filter((s) => isMoveObject(s.name) && s.active).length;
  return f.maxWalSenders - Math.max(0, f.usedWalSenders - ours);
}

/** Free logical replication workers: enabled vecscale subscriptions (this database's) hold workers apply frees. */
export function freeWorkers(f: ReplicationFacts): number {
  const ours = f.subscriptions.filter((s) => s.enabled && isMoveObject(s.name)).length;
  return f.maxLogicalReplicationWorkers - Math.max(0, f.enabledSubscriptions - ours);
}

/** Blockers for the moves' replication: each names the database, the setting, its value and the fix. */
export function replicationBlockers(demands: readonly ReplicationDemand[]): Blocker[] {
  const out: Blocker[] = [];
  const active = demands.filter((d) => d.sourceSubscriptions > 0 || d.targetSubscriptions > 0);
  for (const d of active) {
    if (!d.facts) {
      out.push({ database: d.database, object: 'logical replication', reason: 'its replication settings could not be read, and a move needs them: plan again once the database answers' });
      continue;
    }
    if (d.sourceSubscriptions > 0 && !d.facts.replication) {
      out.push({
        database: d.database,
        object: `role ${d.role}`,
        reason: `has neither REPLICATION nor SUPERUSER, and rows move off this database by logical replication (a slot, and the target's subscription connecting as ${d.role}): ALTER ROLE ${d.role} REPLICATION (as a superuser)`,
      });
    }
    if (d.targetSubscriptions > 0 && !d.facts.superuser) {
      out.push({
        database: d.database,
        object: `role ${d.role}`,
        reason: `is not a superuser, and PostgreSQL 15 lets only superusers create the subscription that copies rows into this database: apply with a superuser's URL for ${d.database}`,
      });
    }
  }
  const clusters = new Map<string, ReplicationDemand[]>();
  for (const d of active) if (d.facts) clusters.set(clusterKey(d), [...(clusters.get(clusterKey(d)) ?? []), d]);
  for (const group of clusters.values()) out.push(...clusterBlockers(group));
  return out;
}

/** The settings of one cluster against the sum of its databases' demands. */
function clusterBlockers(group: readonly ReplicationDemand[]): Blocker[] {
  const out: Blocker[] = [];
  const f = group[0]!.facts!;
  const sources = group.filter((d) => d.sourceSubscriptions > 0);
  const targets = group.filter((d) => d.targetSubscriptions > 0);
  const where = (ds: readonly ReplicationDemand[]) => ds.length > 1 ? ` (one server for ${ds.map((d) => d.database).join(', ')})` : '';
  const block = (ds: readonly ReplicationDemand[], setting: string, reason: string) =>
    out.push({ database: ds[0]!.database, object: `setting ${setting}`, reason: `${reason}${where(ds)}` });
  if (sources.length > 0) {
    const n = sources.reduce((a, d) => a + d.sourceSubscriptions, 0);
    const feeds = `rows move off this database to ${plural(n, 'subscription')}`;
    if (f.walLevel !== 'logical') {
      block(sources, 'wal_level', `is ${f.walLevel}, and ${feeds} by logical replication, which needs wal_level = logical: ALTER SYSTEM SET wal_level = logical, ${RESTART}`);
    }
    const slots = freeSlots(f);
    if (slots < n + 1) {
      const inUse = f.maxReplicationSlots - slots;
      block(sources, 'max_replication_slots', `is ${f.maxReplicationSlots} with ${inUse} in use (${plural(Math.max(0, slots), 'free', 'free')}); ${feeds}, which needs ${n + 1} free (one per subscription, one for the initial copy): ALTER SYSTEM SET max_replication_slots = ${inUse + n + 1 + SPARE}, ${RESTART}`);
    }
    const senders = freeWalSenders(f);
    if (senders < n + 1) {
      const inUse = f.maxWalSenders - senders;
      block(sources, 'max_wal_senders', `is ${f.maxWalSenders} with ${inUse} running (${plural(Math.max(0, senders), 'free', 'free')}); ${feeds}, which needs ${n + 1} free (one per subscription, one for the initial copy): ALTER SYSTEM SET max_wal_senders = ${inUse + n + 1 + SPARE}, ${RESTART}`);
    }
  }
  if (targets.length > 0) {
    const m = targets.reduce((a, d) => a + d.targetSubscriptions, 0);
    const workers = freeWorkers(f);
    if (workers < m + 1) {
      const inUse = f.maxLogicalReplicationWorkers - workers;
      block(targets, 'max_logical_replication_workers', `is ${f.maxLogicalReplicationWorkers} with ${inUse} held by enabled subscriptions (${plural(Math.max(0, workers), 'free', 'free')}); rows move into this database through ${plural(m, 'subscription')}, which needs ${m + 1} free (an apply worker each, one for the initial copy): ALTER SYSTEM SET max_logical_replication_workers = ${inUse + m + 1 + SPARE} (max_worker_processes must leave room for them too), ${RESTART}`);
    }
    if (f.maxSyncWorkersPerSubscription === 0) {
      block(targets, 'max_sync_workers_per_subscription', 'is 0, so a subscription\'s initial copy never starts and the move would wait forever: ALTER SYSTEM SET max_sync_workers_per_subscription = 2, then SELECT pg_reload_conf()');
    }
  }
  return out;
}

/** A leftover replication object, with the sentence the plan prints for it. */
export interface ReplicationLeftover extends MoveLeftover {
  readonly kind: 'replication slot' | 'publication' | 'subscription';
  readonly message: string;
}

/** `12 MB`, as pg_size_pretty prints it (a unit holds up to 10239 of itself before the next takes over). */
export function walSize(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let v = Math.max(0, bytes);
  let i = 0;
  while (v >= 10 * 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Math.round(v)} ${units[i]}`;
}

const slotDetail = (s: ReplicationSlotFact): string =>
  `${s.active ? 'active' : 'inactive'}${s.retainedBytes === null ? '' : `, holds ${walSize(s.retainedBytes)} of WAL`}`;

const STATES: Readonly<Record<string, string>> = { i: 'waiting to copy', d: 'copying', f: 'copied', s: 'synchronised', r: 'ready' };

/** A table-sync slot's name: `pg_<suboid>_sync_<relid>_<system identifier of the subscriber>`. */
const SYNC_SLOT = /^pg_(\d+)_sync_\d+_(\d+)$/;

/**
 * Every replication object an interrupted move left, in input order, each once: vecscale's slots (a cluster's
 * slots show from each of its databases: reported under the first), publications and subscriptions, and table-sync
 * slots whose subscription, on one of these clusters, no longer exists (PostgreSQL never drops those by itself).
 */
export function replicationLeftovers(databases: ReadonlyArray<{ readonly database: string; readonly facts: ReplicationFacts | undefined }>): ReplicationLeftover[] {
  const out: ReplicationLeftover[] = [];
  const seen = new Set<string>();
  const fix = 'left by an interrupted move; apply removes or reuses it';
  // A subscriber cluster's subscriptions, by system identifier: a sync slot naming one that is not there is orphaned.
  const subscribers = new Map<string, Set<number>>();
  for (const { facts } of databases) {
    if (facts?.cluster && facts.subscriptionOids) {
      const oids = subscribers.get(facts.cluster.systemIdentifier) ?? new Set<number>();
      for (const o of facts.subscriptionOids) oids.add(o);
      subscribers.set(facts.cluster.systemIdentifier, oids);
    }
  }
  for (const { database, facts } of databases) {
    if (!facts) continue;
    const cluster = facts.cluster ? `${facts.cluster.systemIdentifier}@${facts.cluster.startedAt}` : `database:${database}`;
    const once = (name: string): boolean => {
      const key = `${cluster}/${name}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    };
    for (const s of facts.slots) {
      if (!isMoveObject(s.name) || !once(s.name)) continue;
      const detail = slotDetail(s);
      out.push({ database, kind: 'replication slot', name: s.name, detail, message: `replication slot ${s.name} (${detail}): ${fix}` });
    }
    for (const s of facts.syncSlots ?? []) {
      const m = SYNC_SLOT.exec(s.name);
      const oids = m ? subscribers.get(m[2]!) : undefined;
      // An active one is held by a running copy (its subscription may be newer than the subscriber's facts).
      if (!m || s.active || !oids || oids.has(Number(m[1])) || !once(s.name)) continue;
      const detail = slotDetail(s);
      out.push({
        database, kind: 'replication slot', name: s.name, detail,
        message: `replication slot ${s.name} (${detail}): the initial-copy slot of a subscription that no longer exists (dropped while this database was unreachable); nothing will read it again: apply removes it`,
      });
    }
    for (const p of facts.publications) {
      if (!isMoveObject(p.name)) continue;
      const detail = p.tables.length > 0 ? `tables ${p.tables.join(', ')}` : 'no tables';
      out.push({ database, kind: 'publication', name: p.name, detail, message: `publication ${p.name} (${detail}): ${fix}` });
    }
    for (const s of facts.subscriptions) {
      if (!isMoveObject(s.name)) continue;
      const tables = Object.entries(s.tables).map(([t, st]) => `${t} ${STATES[st] ?? st}`);
      const detail = [s.enabled ? 'enabled' : 'disabled', s.slotName === null ? 'no slot' : `slot ${s.slotName}`, ...tables].join(', ');
      out.push({ database, kind: 'subscription', name: s.name, detail, message: `subscription ${s.name} (${detail}): ${fix}` });
    }
  }
  return out;
}

/** The leftovers as plan notes (informational: they never change the exit code). */
export function leftoverNotes(databases: Parameters<typeof replicationLeftovers>[0]): Note[] {
  return replicationLeftovers(databases).map((l) => ({ database: l.database, object: `${l.kind} ${l.name}`, message: l.message }));
}
