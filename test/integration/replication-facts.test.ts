/**
 * Replication facts read from real clusters (src/introspect/replication.ts through the catalog reader): settings and
 * headroom, vecscale's slots, publications and subscriptions with their tables, as a superuser and as a Supabase
 * project's non-superuser, and a wal_level = replica server, which a move from it is blocked on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect } from '../../src/db/connect.js';
import { readCatalog } from '../../src/introspect/catalog.js';
import { toState } from '../../src/introspect/map.js';
import type { ReplicationFacts } from '../../src/model/state.js';
import { leftoverNotes, replicationBlockers, replicationLeftovers } from '../../src/move/prerequisites.js';
import { chownToPostgres, nextFreePort } from '../../src/sandbox/host.js';
import { findPostgres } from '../../src/sandbox/pg-bin.js';
import { runPg } from '../../src/sandbox/run.js';
import { freshDatabases, sql } from '../harness.js';
import { prepareSupabase } from '../supabase.js';

const dbs = await freshDatabases('replication_facts');
const source = dbs.primary;
const target = Object.values(dbs.secondaries)[0]!;
const FLOW = 'vecscale_mv_test_x';
const SYNC = 'vecscale_mv_test_sync';

/** The replication facts, and the whole raw catalog, as introspection reads them over `url`. */
async function factsOf(url: string): Promise<{ facts: ReplicationFacts; raw: unknown }> {
  const db = await connect({ database: 'pod', url }, { readOnly: true });
  try {
    const raw = await readCatalog(db, { relationNames: [], functionNames: [] });
    const facts = toState('pod', 'secondary', raw, { roleHome: false }).facts.replication;
    assert.ok(facts, 'replication facts are read on every database');
    return { facts, raw };
  } finally {
    await db.end();
  }
}

const sysid = async (url: string): Promise<string> => (await sql(url, 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s as string;

const TABLE = 'CREATE SCHEMA vecs; CREATE TABLE vecs.docs (id text PRIMARY KEY, n int)';
await sql(source, TABLE);
await sql(target, TABLE);
await sql(source, "INSERT INTO vecs.docs SELECT g::text, g FROM generate_series(1, 100) g");
after(async () => {
  // What this file made, whatever a failed test left: the subscription first (it holds the source's slot).
  await sql(target, `DROP SUBSCRIPTION IF EXISTS ${FLOW}`).catch(() => undefined);
  for (const slot of [FLOW, SYNC]) {
    await sql(source, 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
  }
  await sql(source, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pg\\_99999\\_sync\\_%'").catch(() => undefined);
});

test('settings and headroom read as the server reports them', async () => {
  const { facts } = await factsOf(source);
  const [s] = await sql(source, `SELECT current_setting('max_replication_slots')::int AS slots, current_setting('max_wal_senders')::int AS senders,
    current_setting('max_logical_replication_workers')::int AS workers, current_setting('max_sync_workers_per_subscription')::int AS sync,
    (SELECT count(*)::int FROM pg_replication_slots) AS used, (SELECT count(*)::int FROM pg_stat_replication) AS running,
    (SELECT count(*)::int FROM pg_subscription WHERE subenabled) AS subs`);
  assert.equal(facts.walLevel, 'logical');
  assert.equal(facts.superuser, true);
  assert.equal(facts.replication, true);
  assert.equal(facts.maxReplicationSlots, s!.slots);
  assert.equal(facts.maxWalSenders, s!.senders);
  assert.equal(facts.maxLogicalReplicationWorkers, s!.workers);
  assert.equal(facts.maxSyncWorkersPerSubscription, s!.sync);
  assert.equal(facts.usedReplicationSlots, s!.used);
  assert.equal(facts.usedWalSenders, s!.running);
  assert.equal(facts.enabledSubscriptions, s!.subs);
  assert.equal(facts.cluster?.systemIdentifier, await sysid(source));
  assert.equal(facts.publications.length, 0);
  assert.equal(facts.subscriptions.length, 0);
});

test('a vecscale slot and publication are found, with the WAL the slot holds; others are not', async () => {
  const before = (await factsOf(source)).facts;
  await sql(source, `CREATE PUBLICATION ${FLOW} FOR TABLE vecs.docs`);
  await sql(source, 'CREATE PUBLICATION not_ours FOR TABLE vecs.docs');
  await sql(source, `SELECT pg_create_logical_replication_slot('${FLOW}', 'pgoutput')`);
  await sql(source, "UPDATE vecs.docs SET n = n + 1"); // WAL the slot now holds
  try {
    const { facts } = await factsOf(source);
    assert.equal(facts.usedReplicationSlots, before.usedReplicationSlots + 1);
    assert.equal(facts.slots.length, 1);
    const slot = facts.slots[0]!;
    assert.equal(slot.name, FLOW);
    assert.equal(slot.database, dbs.name);
    assert.equal(slot.active, false);
    assert.ok(typeof slot.retainedBytes === 'number' && slot.retainedBytes > 0, `holds WAL: ${slot.retainedBytes}`);
    assert.deepEqual(facts.publications, [{ name: FLOW, tables: ['vecs.docs'] }]);
    const [note] = leftoverNotes([{ database: 'pod_src', facts }]).filter((n) => n.object.startsWith('replication slot'));
    assert.match(note!.message, /^replication slot vecscale_mv_test_x \(inactive, holds \d+ (bytes|kB|MB) of WAL\): left by an interrupted move; apply removes or reuses it$/);
    // A logical slot decodes one database: another database of the cluster does not list it as its own (so a run
    // against that database never drops it), nor the publication.
    const admin = new URL(source);
    admin.pathname = '/postgres';
    const other = (await factsOf(admin.toString())).facts;
    assert.deepEqual(other.slots.map((s) => s.name), []);
    assert.deepEqual(other.publications, []);
  } finally {
    await sql(source, 'DROP PUBLICATION not_ours');
  }
});

test('a subscription shows with its tables\' states; its password is never read', async () => {
  const conninfo = `host=127.0.0.1 port=${new URL(source).port} dbname=${dbs.name} user=postgres password=${decodeURIComponent(new URL(source).password)}`;
  await sql(target, `CREATE SUBSCRIPTION ${FLOW} CONNECTION '${conninfo}' PUBLICATION ${FLOW} WITH (create_slot = false, slot_name = '${FLOW}')`);
  let facts: ReplicationFacts | undefined;
  let raw: unknown;
  for (let i = 0; i < 300; i++) {
    ({ facts, raw } = await factsOf(target));
    if (facts.subscriptions[0]?.tables['vecs.docs'] === 'r') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(facts!.subscriptions, [{ name: FLOW, enabled: true, slotName: FLOW, publications: [FLOW], tables: { 'vecs.docs': 'r' } }]);
  assert.ok(facts!.enabledSubscriptions >= 1);
  assert.ok(!JSON.stringify(raw).includes('sandbox-password'), 'no connection string in what introspection read');
  // On the source, the subscription's walsender streams from the slot.
  const src = (await factsOf(source)).facts;
  assert.equal(src.slots.find((s) => s.name === FLOW)?.active, true);
  assert.ok(src.usedWalSenders >= 1);
});

test('a Supabase-shaped database introspects as a non-superuser, vecscale\'s subscription included', async () => {
  await prepareSupabase(target);
  const role = `nosuper_${dbs.name}`;
  await sql(target, `CREATE ROLE "${role}" LOGIN NOSUPERUSER NOREPLICATION PASSWORD 'nosuper-pw'`);
  try {
    const u = new URL(target);
    u.username = role;
    u.password = 'nosuper-pw';
    const { facts } = await factsOf(u.toString());
    assert.equal(facts.superuser, false);
    assert.equal(facts.replication, false);
    assert.deepEqual(facts.subscriptions.map((s) => [s.name, s.tables]), [[FLOW, { 'vecs.docs': 'r' }]]);
    assert.ok(facts.enabledSubscriptions >= 1);
    assert.equal(facts.cluster?.systemIdentifier, await sysid(target));
    // Such a role can be neither a source nor a target of a move.
    assert.deepEqual(replicationBlockers([{ database: 'pod_b', role, facts, sourceSubscriptions: 1, targetSubscriptions: 1 }]).map((b) => b.object), [`role ${role}`, `role ${role}`]);
  } finally {
    await sql(target, `DROP ROLE "${role}"`);
  }
});

test('dropping the subscription drops its slot on the source: nothing left', async () => {
  await sql(target, `DROP SUBSCRIPTION ${FLOW}`);
  await sql(source, `DROP PUBLICATION ${FLOW}`);
  assert.deepEqual(replicationLeftovers([{ database: 'src', facts: (await factsOf(source)).facts }, { database: 'tgt', facts: (await factsOf(target)).facts }]), []);
});

test('a table-sync slot left by a subscription gone from its subscriber is reported', async () => {
  const subscriber = await sysid(target);
  const name = `pg_99999_sync_16390_${subscriber}`;
  await sql(source, `SELECT pg_create_logical_replication_slot('${name}', 'pgoutput')`);
  try {
    const left = replicationLeftovers([{ database: 'src', facts: (await factsOf(source)).facts }, { database: 'tgt', facts: (await factsOf(target)).facts }]);
    assert.deepEqual(left.map((l) => [l.database, l.kind, l.name]), [['src', 'replication slot', name]]);
  } finally {
    await sql(source, 'SELECT pg_drop_replication_slot($1)', [name]);
  }
});

test('a wal_level = replica server reports it, and a move off it is blocked naming the setting', { timeout: 120_000 }, async () => {
  const pgi = findPostgres();
  const dir = mkdtempSync('/tmp/vecscale-replica-');
  chownToPostgres(dir);
  const data = join(dir, 'data');
  const port = await nextFreePort(Number(process.env.VECSCALE_TEST_SCRATCH_PORT ?? 58490), new Set());
  try {
    const init = await runPg(join(pgi.bindir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'], { cwd: dir });
    assert.equal(init.code, 0, init.stderr);
    appendFileSync(join(data, 'postgresql.conf'), `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = ''\nwal_level = replica\nfsync = off\n`);
    const start = await runPg(join(pgi.bindir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', 'start'], { cwd: dir });
    assert.equal(start.code, 0, start.stderr);
    try {
      const { facts } = await factsOf(`postgresql://postgres@127.0.0.1:${port}/postgres`);
      assert.equal(facts.walLevel, 'replica');
      const blockers = replicationBlockers([{ database: 'pod_old', role: 'postgres', facts, sourceSubscriptions: 1, targetSubscriptions: 0 }]);
      assert.deepEqual(blockers.map((b) => [b.database, b.object]), [['pod_old', 'setting wal_level']]);
      assert.match(blockers[0]!.reason, /^is replica, .*ALTER SYSTEM SET wal_level = logical, then restart the server/);
    } finally {
      await runPg(join(pgi.bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { cwd: dir });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
