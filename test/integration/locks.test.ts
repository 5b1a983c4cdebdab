/**
 * vecscale's advisory locks on real clusters: a second run times out naming the holder and keeps nothing; a closed
 * holder lets a waiting run through; locks are per database; the fixed order keeps crossing runs from deadlocking.
 * No assertion on wall time beyond "it succeeded" or "it failed".
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { acquireLocks, LOCK_KEY, releaseLocks, type Holder, type LockTarget } from '../../src/apply/lock.js';
import { connect } from '../../src/db/connect.js';
import { VecscaleError } from '../../src/errors.js';
import { redactUrl } from '../../src/util/url.js';
import { freshDatabases, sql } from '../harness.js';

const dbs = await freshDatabases('locks');
const other = await freshDatabases('locks_other');

interface Named {
  readonly database: string;
  readonly url: string;
}
const named = (set: typeof dbs): Named[] => [
  { database: 'primary', url: set.primary },
  ...Object.entries(set.secondaries).map(([database, url]) => ({ database, url })),
];
const ALL = named(dbs);
assert.ok(ALL.length >= 3, "the primary and at least two secondaries");

const open = new Set<pg.Client>();
after(async () => {
  await Promise.all([...open].map((c) => c.end().catch(() => undefined)));
});

async function client(url: string, applicationName = 'vecscale apply'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: applicationName });
  c.on('error', () => undefined);
  await c.connect();
  open.add(c);
  return c;
}

const label = (n: Named) => `${n.database === 'primary' ? 'the primary' : `secondary ${n.database}`} (${redactUrl(n.url)})`;
const order = (n: Named) => redactUrl(n.url).replace(/^[a-z]+:\/\/[^@/]*@/, '');

/** One "run": a connection per database, as apply opens them. */
async function run(targets: readonly Named[], applicationName?: string): Promise<LockTarget[]> {
  return Promise.all(
    targets.map(async (n) => ({ database: n.database, db: await client(n.url, applicationName), label: label(n), order: order(n) })),
  );
}

const pidOf = async (t: LockTarget): Promise<number> => (await t.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

/** Whether this session holds vecscale's lock on its database. */
async function holds(t: LockTarget): Promise<boolean> {
  const r = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
       AND classid = $1::int4::oid AND objid = $2::int4::oid AND objsubid = 2`,
    [LOCK_KEY[0], LOCK_KEY[1]],
  );
  return r.rows[0]!.n > 0;
}

const sorted = (ts: readonly LockTarget[]) => [...ts].sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));

const isLockError = (e: unknown): e is VecscaleError => e instanceof VecscaleError && e.code === 'lock';

test('the first run locks all three databases; a second one times out naming the busy database and the holder', async () => {
  const first = await run(ALL);
  await acquireLocks(first, { timeoutMs: 1000 });
  for (const t of first) assert.ok(await holds(t), t.database);

  const second = await run(ALL, 'vecscale second');
  const busy = sorted(second)[0]!; // the first in the fixed order
  const holderPid = await pidOf(first.find((t) => t.database === busy.database)!);
  const waits: [string, Holder | undefined][] = [];
  await assert.rejects(
    acquireLocks(second, { timeoutMs: 300, pollMs: 20, onWait: (t, h) => waits.push([t.database, h]) }),
    (e: unknown) => {
      assert.ok(isLockError(e), String(e));
      assert.match(e.message, /^another vecscale run holds the lock on /);
      assert.ok(e.message.includes(busy.label), e.message);
      assert.ok(e.message.includes(`application_name "vecscale apply"`), e.message);
      assert.ok(e.message.includes(`pid ${holderPid}`), e.message);
      assert.match(e.message, /since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
      assert.doesNotMatch(e.message, /sandbox-password/);
      assert.equal(e.hint, 'wait for it to finish, or raise --lock-timeout');
      assert.deepEqual(e.meta, { database: busy.database, holder: { pid: holderPid, applicationName: 'vecscale apply' } });
      return true;
    },
  );
  // onWait: once, for the busy database, with the holder.
  assert.equal(waits.length, 1);
  assert.equal(waits[0]![0], busy.database);
  assert.equal(waits[0]![1]?.pid, holderPid);
  assert.equal(waits[0]![1]?.applicationName, 'vecscale apply');
  for (const t of second) assert.equal(await holds(t), false, t.database);

  await releaseLocks(first);
  for (const t of first) assert.equal(await holds(t), false, t.database);
  await acquireLocks(second, { timeoutMs: 1000 });
  for (const t of second) assert.ok(await holds(t), t.database);
  await releaseLocks(second);
});

test('a run that fails on its last database releases the ones it took; a third run then gets them all', async () => {
  const ordered = sorted(await run(ALL));
  const last = ordered[ordered.length - 1]!;
  // The first run holds only the last database in the order.
  const first = await run(ALL.filter((n) => n.database === last.database));
  await acquireLocks(first, { timeoutMs: 1000 });

  const second = await run(ALL, 'vecscale second');
  await assert.rejects(acquireLocks(second, { timeoutMs: 300, pollMs: 20 }), (e: unknown) => {
    assert.ok(isLockError(e), String(e));
    assert.equal(e.meta.database, last.database);
    assert.ok(e.message.includes(last.label), e.message);
    return true;
  });
  // It had taken the two before it, and gave them back.
  for (const t of second) assert.equal(await holds(t), false, t.database);
  const third = await run(ALL, 'vecscale third');
  await assert.rejects(acquireLocks(third, { timeoutMs: 0 }), isLockError);

  await releaseLocks(first);
  await acquireLocks(third, { timeoutMs: 1000 });
  for (const t of third) assert.ok(await holds(t), t.database);
  await releaseLocks(third);
});

test('closing the holding connection lets a waiting run through (a killed run leaves no stale lock)', async () => {
  const first = await run(ALL);
  await acquireLocks(first, { timeoutMs: 1000 });
  const second = await run(ALL, 'vecscale second');
  let waited = 0;
  await acquireLocks(second, {
    timeoutMs: 30_000,
    pollMs: 20,
    onWait: () => {
      waited++;
      // The holder goes away only once the second run is waiting.
      for (const t of first) void t.db.end();
    },
  });
  assert.equal(waited, 1);
  for (const t of second) assert.ok(await holds(t), t.database);
  await releaseLocks(second);
});

test('locks are per database: other databases, on the same clusters or not, do not conflict', async () => {
  const primaryOnly = await run(ALL.filter((n) => n.database === 'primary'));
  await acquireLocks(primaryOnly, { timeoutMs: 0 });
  // The secondaries of the same set: other clusters.
  const secondaries = await run(ALL.filter((n) => n.database !== 'primary'));
  await acquireLocks(secondaries, { timeoutMs: 0 });
  // Another set of databases on the very same clusters, primary included.
  const otherSet = await run(named(other));
  await acquireLocks(otherSet, { timeoutMs: 0 });
  for (const t of [...primaryOnly, ...secondaries, ...otherSet]) assert.ok(await holds(t), t.database);
  await releaseLocks([...primaryOnly, ...secondaries, ...otherSet]);
});

test('the fixed order: two runs listing the databases in opposite orders both get through, one after the other', async () => {
  for (let round = 0; round < 5; round++) {
    const a = await run(ALL, 'vecscale a');
    const b = (await run(ALL, 'vecscale b')).reverse();
    // Whoever gets everything first gives it back at once; the other then gets everything too. Without the fixed
    // order each could hold what the other waits for, and both would time out.
    const go = (ts: LockTarget[]) => acquireLocks(ts, { timeoutMs: 20_000, pollMs: 5 }).then(() => releaseLocks(ts));
    await Promise.all([go(a), go(b)]);
  }
});

test('two targets that are the same database: a config error at once, and nothing kept', async () => {
  const [primary] = ALL;
  const twice = [
    { database: 'primary', db: await client(primary!.url), label: label(primary!), order: 'a' },
    { database: 'pod_x', db: await client(primary!.url), label: 'secondary pod_x (alias)', order: 'b' },
  ];
  await assert.rejects(acquireLocks(twice, { timeoutMs: 30_000 }), (e: unknown) => {
    assert.ok(e instanceof VecscaleError && e.code === 'config', String(e));
    assert.match(e.message, /are the same database/);
    assert.deepEqual(e.meta, { database: 'pod_x', sameAs: 'primary' });
    return true;
  });
  for (const t of twice) assert.equal(await holds(t), false);
});

test('a lost connection while locking is a plain connection error, and the locks taken are released', async () => {
  const ts = sorted(await run(ALL));
  const lastTarget = ts[ts.length - 1]!;
  const killer = await client(ALL.find((n) => n.database === lastTarget.database)!.url, 'locks test');
  await killer.query('SELECT pg_terminate_backend($1)', [await pidOf(lastTarget)]);
  await assert.rejects(acquireLocks(ts, { timeoutMs: 1000 }), (e: unknown) => {
    assert.ok(e instanceof VecscaleError && e.code === 'connection', String(e));
    assert.ok(e.message.startsWith(`cannot take vecscale's lock on ${lastTarget.label}: `), e.message);
    assert.equal(e.meta.database, lastTarget.database);
    return true;
  });
  for (const t of ts.slice(0, -1)) assert.equal(await holds(t), false, t.database);
});

test('through connect(): the holder is named "vecscale"; a role that may not see its details is told so', async () => {
  const primary = ALL[0]!;
  const holderDb = await connect(primary);
  open.add(holderDb);
  const holder: LockTarget = { database: 'primary', db: holderDb, label: label(primary), order: order(primary) };
  await acquireLocks([holder], { timeoutMs: 0 });
  const holderPid = await pidOf(holder);

  // An unprivileged role sees pg_locks and the holder's pid and application_name, not when or where it connected.
  const role = `vs_locks_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await sql(primary.url, `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  const weakUrl = new URL(primary.url);
  weakUrl.username = role;
  weakUrl.password = password;
  const weakDb = await client(weakUrl.toString(), 'vecscale weak');
  assert.equal((await weakDb.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u, role);
  after(async () => {
    await weakDb.end().catch(() => undefined);
    await sql(primary.url, `DROP ROLE IF EXISTS ${role}`);
  });
  const weak: LockTarget = { database: 'primary', db: weakDb, label: label(primary), order: order(primary) };
  await assert.rejects(acquireLocks([weak], { timeoutMs: 0 }), (e: unknown) => {
    assert.ok(isLockError(e), String(e));
    assert.ok(e.message.includes(`application_name "vecscale", pid ${holderPid}`), e.message);
    assert.match(e.message, /this role may not see when it connected or from where/);
    assert.deepEqual(e.meta.holder, { pid: holderPid, applicationName: 'vecscale' });
    return true;
  });
  await releaseLocks([holder]);
  await acquireLocks([weak], { timeoutMs: 0 });
  await releaseLocks([weak]);
});
