/** The moves' replication prerequisites and leftover reports (src/move/prerequisites.ts), and the facts mapper. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toReplicationFacts } from '../../src/introspect/replication.js';
import type { ReplicationFacts } from '../../src/model/state.js';
import {
  freeSlots,
  freeWalSenders,
  freeWorkers,
  leftoverNotes,
  type ReplicationDemand,
  replicationBlockers,
  replicationLeftovers,
  walSize,
} from '../../src/move/prerequisites.js';

const ready: ReplicationFacts = {
  walLevel: 'logical',
  superuser: true,
  replication: true,
  maxReplicationSlots: 10,
  usedReplicationSlots: 0,
  maxWalSenders: 10,
  usedWalSenders: 0,
  maxLogicalReplicationWorkers: 4,
  maxSyncWorkersPerSubscription: 2,
  enabledSubscriptions: 0,
  cluster: { systemIdentifier: '7000000000000000001', startedAt: '2026-12-01 10:00:00+00' },
  subscriptionOids: [],
  slots: [],
  syncSlots: [],
  publications: [],
  subscriptions: [],
};
const otherCluster = { systemIdentifier: '7000000000000000002', startedAt: '2026-12-01 10:00:00+00' };

const demand = (database: string, facts: ReplicationFacts | undefined, source: number, target: number): ReplicationDemand => ({
  database, role: 'postgres', facts, sourceSubscriptions: source, targetSubscriptions: target,
});

test('a ready source and target need nothing', () => {
  assert.deepEqual(replicationBlockers([demand('pod_a', ready, 2, 0), demand('pod_b', { ...ready, cluster: otherCluster }, 0, 2)]), []);
});

test('a database without moves is never checked, whatever its settings', () => {
  assert.deepEqual(replicationBlockers([demand('pod_a', { ...ready, walLevel: 'replica', superuser: false, replication: false, maxReplicationSlots: 0 }, 0, 0)]), []);
});

test('wal_level = replica on a source blocks, naming the value and the fix', () => {
  const [b, ...rest] = replicationBlockers([demand('pod_a', { ...ready, walLevel: 'replica' }, 1, 0)]);
  assert.deepEqual(rest, []);
  assert.equal(b!.database, 'pod_a');
  assert.equal(b!.object, 'setting wal_level');
  assert.equal(
    b!.reason,
    'is replica, and rows move off this database to 1 subscription by logical replication, which needs wal_level = logical: ' +
      'ALTER SYSTEM SET wal_level = logical, then restart the server: the setting takes effect only at server start',
  );
});

test('slots: N + 1 free needed (one per subscription, one for the initial copy); vecscale\'s own count as free', () => {
  const full = { ...ready, maxReplicationSlots: 3, usedReplicationSlots: 2 };
  assert.equal(freeSlots(full), 1);
  const [b] = replicationBlockers([demand('pod_a', full, 1, 0)]);
  assert.equal(b!.object, 'setting max_replication_slots');
  assert.equal(
    b!.reason,
    'is 3 with 2 in use (1 free); rows move off this database to 1 subscription, which needs 2 free (one per subscription, one for the initial copy): ' +
      'ALTER SYSTEM SET max_replication_slots = 8, then restart the server: the setting takes effect only at server start',
  );
  // One of the two in use is a leftover of vecscale's: apply drops it first, so two are free.
  const withOurs = { ...full, slots: [{ name: 'vecscale_mv_0123456789_abcdefabcd', database: 'app', active: false, retainedBytes: 100 }] };
  assert.equal(freeSlots(withOurs), 2);
  assert.deepEqual(replicationBlockers([demand('pod_a', withOurs, 1, 0)]), []);
});

test('WAL senders: N + 1 free needed; an active vecscale slot\'s sender is freed with it', () => {
  const busy = { ...ready, maxWalSenders: 4, usedWalSenders: 3 };
  assert.equal(freeWalSenders(busy), 1);
  const [b] = replicationBlockers([demand('pod_a', busy, 2, 0)]);
  assert.equal(b!.object, 'setting max_wal_senders');
  assert.equal(
    b!.reason,
    'is 4 with 3 running (1 free); rows move off this database to 2 subscriptions, which needs 3 free (one per subscription, one for the initial copy): ' +
      'ALTER SYSTEM SET max_wal_senders = 10, then restart the server: the setting takes effect only at server start',
  );
  const streaming = { ...busy, slots: [{ name: 'vecscale_mv_0123456789_abcdefabcd', database: 'app', active: true, retainedBytes: 0 }, { name: 'vecscale_mv_0123456789_1111111111', database: 'app', active: true, retainedBytes: 0 }] };
  assert.equal(freeWalSenders(streaming), 3);
  assert.deepEqual(replicationBlockers([demand('pod_a', streaming, 2, 0)]), []);
});

test('workers: M + 1 free needed beyond enabled subscriptions; vecscale\'s enabled ones count as free', () => {
  const taken = { ...ready, maxLogicalReplicationWorkers: 4, enabledSubscriptions: 2 };
  assert.equal(freeWorkers(taken), 2);
  const [b] = replicationBlockers([demand('pod_b', taken, 0, 2)]);
  assert.equal(b!.database, 'pod_b');
  assert.equal(b!.object, 'setting max_logical_replication_workers');
  assert.equal(
    b!.reason,
    'is 4 with 2 held by enabled subscriptions (2 free); rows move into this database through 2 subscriptions, which needs 3 free (an apply worker each, one for the initial copy): ' +
      'ALTER SYSTEM SET max_logical_replication_workers = 9 (max_worker_processes must leave room for them too), then restart the server: the setting takes effect only at server start',
  );
  const ours = { ...taken, subscriptions: [{ name: 'vecscale_mv_0123456789_abcdefabcd', enabled: true, slotName: 'vecscale_mv_0123456789_abcdefabcd', publications: [], tables: {} }] };
  assert.equal(freeWorkers(ours), 3);
  assert.deepEqual(replicationBlockers([demand('pod_b', ours, 0, 2)]), []);
});

test('max_sync_workers_per_subscription = 0 on a target blocks: the initial copy would never start', () => {
  const [b] = replicationBlockers([demand('pod_b', { ...ready, maxSyncWorkersPerSubscription: 0 }, 0, 1)]);
  assert.equal(b!.object, 'setting max_sync_workers_per_subscription');
  assert.match(b!.reason, /^is 0, so a subscription's initial copy never starts .*ALTER SYSTEM SET max_sync_workers_per_subscription = 2, then SELECT pg_reload_conf\(\)$/);
});

test('roles: a source needs REPLICATION (or superuser), a target a superuser', () => {
  const plain = { ...ready, superuser: false, replication: false };
  const bs = replicationBlockers([{ ...demand('pod_a', plain, 1, 0), role: 'app' }, { ...demand('pod_b', { ...plain, cluster: otherCluster }, 0, 1), role: 'app' }]);
  assert.deepEqual(bs, [
    {
      database: 'pod_a',
      object: 'role app',
      reason: 'has neither REPLICATION nor SUPERUSER, and rows move off this database by logical replication (a slot, and the target\'s subscription connecting as app): ALTER ROLE app REPLICATION (as a superuser)',
    },
    {
      database: 'pod_b',
      object: 'role app',
      reason: 'is not a superuser, and PostgreSQL 15 lets only superusers create the subscription that copies rows into this database: apply with a superuser\'s URL for pod_b',
    },
  ]);
  // REPLICATION is enough on a source.
  assert.deepEqual(replicationBlockers([demand('pod_a', { ...plain, replication: true }, 1, 0)]), []);
});

test('databases of one cluster share its headroom: their demands add up, the blocker names them all', () => {
  const small = { ...ready, maxReplicationSlots: 2 };
  assert.deepEqual(replicationBlockers([demand('pod_a', small, 1, 0), demand('pod_c', { ...small, cluster: otherCluster }, 1, 0)]), []);
  const [b, ...rest] = replicationBlockers([demand('pod_a', small, 1, 0), demand('pod_c', small, 1, 0)]);
  assert.deepEqual(rest, []);
  assert.equal(b!.object, 'setting max_replication_slots');
  assert.match(b!.reason, /needs 3 free .* \(one server for pod_a, pod_c\)$/);
});

test('unread facts block a database the moves need', () => {
  assert.deepEqual(replicationBlockers([demand('pod_a', undefined, 1, 0)]), [
    { database: 'pod_a', object: 'logical replication', reason: 'its replication settings could not be read, and a move needs them: plan again once the database answers' },
  ]);
});

test('walSize prints as pg_size_pretty does', () => {
  assert.equal(walSize(0), '0 bytes');
  assert.equal(walSize(10239), '10239 bytes');
  assert.equal(walSize(10240), '10 kB');
  assert.equal(walSize(12 * 1024 * 1024), '12 MB');
  assert.equal(walSize(5 * 1024 * 1024), '5120 kB');
});

test('every vecscale slot, publication and subscription is reported once, with what it holds', () => {
  const slot = { name: 'vecscale_mv_0123456789_abcdefabcd', database: 'app', active: false, retainedBytes: 12 * 1024 * 1024 };
  const source: ReplicationFacts = {
    ...ready,
    slots: [slot, { name: 'someone_elses', database: 'app', active: false, retainedBytes: 1 }],
    publications: [{ name: 'vecscale_mv_0123456789_abcdefabcd', tables: ['vecs.docs'] }, { name: 'theirs', tables: [] }],
  };
  const target: ReplicationFacts = {
    ...ready,
    cluster: otherCluster,
    subscriptions: [{ name: 'vecscale_mv_0123456789_abcdefabcd', enabled: false, slotName: 'vecscale_mv_0123456789_abcdefabcd', publications: ['vecscale_mv_0123456789_abcdefabcd'], tables: { 'vecs.docs': 'd' } }],
  };
  // pod_c is another database of pod_a's cluster: it sees the same slot.
  const notes = leftoverNotes([{ database: 'pod_a', facts: source }, { database: 'pod_c', facts: { ...ready, slots: [slot] } }, { database: 'pod_b', facts: target }, { database: 'pod_d', facts: undefined }]);
  assert.deepEqual(notes, [
    { database: 'pod_a', object: 'replication slot vecscale_mv_0123456789_abcdefabcd', message: 'replication slot vecscale_mv_0123456789_abcdefabcd (inactive, holds 12 MB of WAL): left by an interrupted move; apply removes or reuses it' },
    { database: 'pod_a', object: 'publication vecscale_mv_0123456789_abcdefabcd', message: 'publication vecscale_mv_0123456789_abcdefabcd (tables vecs.docs): left by an interrupted move; apply removes or reuses it' },
    {
      database: 'pod_b',
      object: 'subscription vecscale_mv_0123456789_abcdefabcd',
      message: 'subscription vecscale_mv_0123456789_abcdefabcd (disabled, slot vecscale_mv_0123456789_abcdefabcd, vecs.docs copying): left by an interrupted move; apply removes or reuses it',
    },
  ]);
});

test('a table-sync slot whose subscription is gone from its subscriber is reported; a live or active one is not', () => {
  const sync = (suboid: number, sysid: string, active = false) => ({ name: `pg_${suboid}_sync_16390_${sysid}`, database: 'app', active, retainedBytes: 2048 });
  const source: ReplicationFacts = { ...ready, syncSlots: [sync(16400, otherCluster.systemIdentifier), sync(16401, otherCluster.systemIdentifier), sync(16402, otherCluster.systemIdentifier, true), sync(16403, '99')] };
  const target: ReplicationFacts = { ...ready, cluster: otherCluster, subscriptionOids: [16401] };
  const left = replicationLeftovers([{ database: 'pod_a', facts: source }, { database: 'pod_b', facts: target }]);
  assert.deepEqual(left.map((l) => [l.database, l.kind, l.name, l.detail]), [['pod_a', 'replication slot', `pg_16400_sync_16390_${otherCluster.systemIdentifier}`, 'inactive, holds 2048 bytes of WAL']]);
  assert.match(left[0]!.message, /the initial-copy slot of a subscription that no longer exists .*: apply removes it$/);
});

test('toReplicationFacts maps catalog rows: counts as numbers, superuser implies replication, tables sorted', () => {
  const facts = toReplicationFacts({
    settings: {
      wal_level: 'logical', max_replication_slots: '10', max_wal_senders: '12', max_logical_replication_workers: '4', max_sync_workers_per_subscription: '2',
      rolsuper: true, rolreplication: false, used_slots: '3', used_senders: '1', enabled_subscriptions: '2',
      system_identifier: '7000000000000000001', started_at: '2026-12-01 10:00:00+00', subscription_oids: [16400],
    },
    slots: [{ slot_name: 'vecscale_mv_a', database: 'app', active: true, retained: '123456789012' }, { slot_name: 'vecscale_mv_b', database: null, active: false, retained: null }],
    syncSlots: [],
    publications: [{ pubname: 'vecscale_mv_a', tables: ['vecs.z', 'vecs.a'] }],
    subscriptions: [{ subname: 'vecscale_mv_a', subenabled: true, subslotname: null, subpublications: ['vecscale_mv_a'], tables: { 'vecs.z': 'r', 'vecs.a': 'i' } }, { subname: 'vecscale_mv_b', subenabled: false, subslotname: 'x', subpublications: [], tables: null }],
  });
  assert.deepEqual(facts, {
    walLevel: 'logical', superuser: true, replication: true, maxReplicationSlots: 10, usedReplicationSlots: 3, maxWalSenders: 12, usedWalSenders: 1,
    maxLogicalReplicationWorkers: 4, maxSyncWorkersPerSubscription: 2, enabledSubscriptions: 2,
    cluster: { systemIdentifier: '7000000000000000001', startedAt: '2026-12-01 10:00:00+00' }, subscriptionOids: [16400],
    slots: [{ name: 'vecscale_mv_a', database: 'app', active: true, retainedBytes: 123456789012 }, { name: 'vecscale_mv_b', database: null, active: false, retainedBytes: null }],
    syncSlots: [],
    publications: [{ name: 'vecscale_mv_a', tables: ['vecs.a', 'vecs.z'] }],
    subscriptions: [
      { name: 'vecscale_mv_a', enabled: true, slotName: null, publications: ['vecscale_mv_a'], tables: { 'vecs.a': 'i', 'vecs.z': 'r' } },
      { name: 'vecscale_mv_b', enabled: false, slotName: 'x', publications: [], tables: {} },
    ],
  });
});
