/**
 * A hostile caller cannot tie up a secondary (issue 11 §5), on Supabase-shaped databases, as `anon`:
 *
 * - Filters are bounded — 64 KiB of JSON text, 256 operators (every `$`-key), 8 levels of `$and`/`$or` — and a filter
 *   over a bound fails at once with SQLSTATE 22023 and a message naming the bound, before any statement reaches a
 *   secondary; a filter at each bound still works and returns vecs' rows.
 * - The caller's statement_timeout and pg_cancel_backend reach the secondary, on both query paths: a collection on one
 *   secondary (dblink from vecscale.search_<c>, which sends `SET LOCAL statement_timeout = <what is left>`) and a
 *   sharded collection (the same fan-out, a statement per partition). The remote query is made slow in two ways: a filter that is expensive but in
 *   bounds, over rows whose metadata is stored compressed, and a lock held on the secondary (deterministic: the remote
 *   query waits for it).
 *
 * "Nothing keeps running on the secondary" is read from the secondary's pg_stat_activity: no backend of the wrapper
 * role (the only role vecscale's connections log in as) in any state but idle. Wall time is asserted only as a
 * generous bound on a hang.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { outcome, sql } from '../harness.js';
import { Rest, supabaseDatabases } from '../supabase.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('hostile_caller');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const wrapper = fdwUserFor(dbs);
// `exact*`: a few rows whose filtered results are checked; `slow*`: many rows, for calls that must be cut short.
// No vector index anywhere: exact search, so match_count 1000 returns every row that passes the filter.
const file = topologyFile(
  dbs,
  `  exact:
    secondary: pod_b
    dimension: 3
    index: { method: none }
  exactshard:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
  slow:
    secondary: pod_a
    dimension: 3
    index: { method: none }
  slowshard:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
`,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n',
);
await apply(file.load(), { approve: async () => true });

type Meta = { g: number; s: string; kind: string };
const ROWS = 60;
const meta = (g: number): Meta => ({ g, s: `v${g}`, kind: g % 3 === 0 ? 'a' : 'b' });
const embedding = (g: number) => `[${Math.sin(g)},${Math.cos(g)},${Math.sin(g * 0.5)}]`;
const exactRows = Array.from({ length: ROWS }, (_, i) => i + 1);
// Through the primary as admin: public.exactshard routes each row to its shard.
for (const table of ['exact', 'exactshard']) {
  await sql(
    dbs.primary,
    `INSERT INTO public.${table} (id, embedding, metadata) SELECT * FROM unnest($1::text[], $2::extensions.vector[], $3::jsonb[])`,
    [exactRows.map((g) => `e${g}`), exactRows.map(embedding), exactRows.map((g) => JSON.stringify(meta(g)))],
  );
}

/**
 * The slow collections, written on the secondaries directly (generate_series is far faster than 100k routed rows;
 * match_<c> reads every partition, so which one holds a row does not matter here). Each row's metadata carries 3 kB
 * that PostgreSQL stores compressed: every string condition of SLOW_FILTER decompresses it again, so 200 of them
 * over 100k rows keep a secondary busy for tens of seconds — far beyond every timeout below.
 */
const slowRows = (from: number, to: number) => `SELECT 's' || g, ('[' || sin(g) || ',' || cos(g) || ',' || sin(g * 0.5) || ']')::extensions.vector,
         jsonb_build_object('g', g, 'pad', repeat('x', 3000)) FROM generate_series(${from}, ${to}) g`;
await sql(podA, `INSERT INTO vecs.slow (id, vec, metadata) ${slowRows(1, 100_000)}`);
await sql(podA, `INSERT INTO vecs.slowshard_p0of2 (id, vec, metadata) ${slowRows(1, 50_000)}`);
await sql(podB, `INSERT INTO vecs.slowshard_p1of2 (id, vec, metadata) ${slowRows(50_001, 100_000)}`);
await sql(podA, 'ANALYZE vecs.slow, vecs.slowshard_p0of2');
await sql(podB, 'ANALYZE vecs.slowshard_p1of2');
/** 200 `$eq` on a key no row has (201 operators: in bounds): nothing matches, every condition is evaluated. */
const SLOW_FILTER = { $or: Array.from({ length: 200 }, (_, i) => ({ nokey: { $eq: `v${i}` } })) };

/** The one-secondary path and the sharded path (both dblink from search_<c>), with where their remote query runs. */
const PATHS = [
  { name: 'one secondary (dblink)', collection: 'slow', secondaries: [podA], lockUrl: podA, lockTable: 'vecs.slow' },
  { name: 'sharded (dblink fan-out)', collection: 'slowshard', secondaries: [podA, podB], lockUrl: podA, lockTable: 'vecs.slowshard_p0of2' },
] as const;

let rest: Rest;
before(async () => {
  rest = await Rest.connect(dbs.primary);
});
after(async () => {
  await rest?.end();
});

const connect = async (url: string): Promise<pg.Client> => {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
};

/** A session on the primary as anon (SET ROLE on an admin connection), with the given statement_timeout. */
async function asAnon<T>(statementTimeout: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(dbs.primary);
  try {
    await c.query('SET ROLE anon');
    await c.query(`SET statement_timeout = '${statementTimeout}'`);
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const match = (c: pg.Client, collection: string, filter: unknown, count = 1000) =>
  c.query<{ id: string }>(`SELECT id FROM public.match_${collection}($1, $2, $3)`, ['[1,2,3]', count, JSON.stringify(filter)]);

const rpcMatch = (collection: string, filter: unknown, count = 1000) =>
  rest.request('anon', true, (q) =>
    q.rpc(`match_${collection}`, [['query_embedding', 'extensions.vector', [1, 2, 3]], ['match_count', 'integer', count], ['filter', 'jsonb', filter]]),
  );

/** The first line of an error message (a dblink error's context carries the whole remote statement). */
const brief = (e: pg.DatabaseError | undefined) => (e ? `${e.code}: ${e.message.split('\n')[0]!.slice(0, 200)}` : 'no error');

function assertFailed(o: { ms: number; error?: pg.DatabaseError }, code: string, withinMs: number, message?: RegExp): void {
  assert.equal(o.error?.code, code, `SQLSTATE ${code} expected, got ${brief(o.error)}`);
  if (message) assert.match(o.error!.message, message);
  assert.ok(o.ms < withinMs, `returned after ${Math.round(o.ms)} ms (bound ${withinMs} ms)`);
}

/** Every statement the wrapper role has started on the secondaries, as `secondary pid@query_start`. */
async function wrapperStatements(): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const url of [podA, podB]) {
    const rows = await sql<{ pid: number; started: string }>(
      url,
      `SELECT pid, query_start::text AS started FROM pg_stat_activity WHERE usename = $1 AND datname = current_database() AND query_start IS NOT NULL`,
      [wrapper],
    );
    for (const r of rows) seen.add(`${new URL(url).port} ${r.pid}@${r.started}`);
  }
  return seen;
}
const newStatements = (before: Set<string>, now: Set<string>) => [...now].filter((s) => !before.has(s));

/** The wrapper role's backends on `urls` that are doing anything (a statement, an open transaction). */
async function busyWrappers(urls: readonly string[]): Promise<string[]> {
  const busy: string[] = [];
  for (const url of urls) {
    const rows = await sql<{ line: string }>(
      url,
      `SELECT pid || ' ' || state || coalesce(' waiting on ' || wait_event_type, '') || ': ' || left(query, 80) AS line
         FROM pg_stat_activity WHERE usename = $1 AND datname = current_database() AND state <> 'idle'`,
      [wrapper],
    );
    busy.push(...rows.map((r) => `${new URL(url).port} ${r.line}`));
  }
  return busy;
}

/** Polls up to `graceMs` for the secondaries to have no busy wrapper backend; returns what is still busy. */
async function settled(urls: readonly string[], graceMs = 2000): Promise<string[]> {
  const until = performance.now() + graceMs;
  for (;;) {
    const busy = await busyWrappers(urls);
    if (busy.length === 0 || performance.now() > until) return busy;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until a wrapper backend on `url` matches `condition` (SQL over pg_stat_activity); false after `ms`. */
async function seenOn(url: string, condition: string, ms = 5000): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const rows = await sql(url, `SELECT 1 FROM pg_stat_activity WHERE usename = $1 AND datname = current_database() AND ${condition}`, [wrapper]);
    if (rows.length > 0) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** After a test that may have failed: end whatever still runs for the wrapper role, so the next test starts clean. */
async function stopLeftovers(): Promise<void> {
  for (const url of [podA, podB]) {
    await sql(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database() AND state <> 'idle'`, [wrapper]);
  }
}

/** Holds ACCESS EXCLUSIVE on `table` in an open transaction on `url`: a remote query on it waits. */
async function locked<T>(url: string, table: string, fn: () => Promise<T>): Promise<T> {
  const holder = await connect(url);
  try {
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    return await fn();
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
  }
}

// ---- Filter bounds -------------------------------------------------------------------------------------------------

type Filter = Record<string, unknown>;
/** vecs' meaning of the filters used here (numbers and strings compared with their own kind; a missing key: no row). */
function holds(f: Filter, m: Meta): boolean {
  const [key, value] = Object.entries(f)[0]!;
  if (key === '$and') return (value as Filter[]).every((x) => holds(x, m));
  if (key === '$or') return (value as Filter[]).some((x) => holds(x, m));
  const [op, arg] = Object.entries(value as Filter)[0]!;
  const v = (m as Record<string, unknown>)[key];
  if (v === undefined) return false;
  const same = typeof v === typeof arg;
  switch (op) {
    case '$eq': return v === arg;
    case '$in': return (arg as unknown[]).includes(v);
    case '$gte': return same && (v as number) >= (arg as number);
    case '$lte': return same && (v as number) <= (arg as number);
  }
  throw new Error(`operator ${op} not modelled`);
}
const expectedIds = (f: Filter) => exactRows.filter((g) => holds(f, meta(g))).map((g) => `e${g}`).sort();

// The bound is on the jsonb value itself: measured without printing it (1e131071 is 8 bytes as jsonb, 131 KB as text).
const jsonBytes = async (f: Filter) => (await sql<{ n: number }>(dbs.primary, 'SELECT pg_column_size($1::jsonb)::int AS n', [JSON.stringify(f)]))[0]!.n;

/** A filter that is exactly `bytes` long as jsonb; it matches e7 only. */
async function filterOfSize(bytes: number): Promise<Filter> {
  const make = (n: number): Filter => ({ $or: [{ s: { $eq: 'v7' } }, { s: { $eq: 'x'.repeat(n) } }] });
  const base = await jsonBytes(make(0));
  const f = make(bytes - base);
  assert.equal(await jsonBytes(f), bytes);
  return f;
}

/** `$or` of `n` conditions: n + 1 operators. Values v7, v14, …: the rows whose g is a multiple of 7. */
const orOf = (n: number): Filter => ({ $or: Array.from({ length: n }, (_, i) => ({ s: { $eq: `v${7 * (i + 1)}` } })) });

/** `levels` nested `$and`/`$or` (alternating), each with a condition of its own; the innermost condition at depth `levels`. */
function nested(levels: number): Filter {
  let f: Filter = { g: { $lte: 40 } };
  for (let i = 1; i <= levels; i++) {
    f = i % 2 === 1 ? { $and: [{ g: { $gte: i } }, f] } : { $or: [{ g: { $eq: 50 + i } }, f] };
  }
  return f;
}

const BOUNDS = [
  {
    bound: 'size: 65,536 bytes (as jsonb)',
    at: () => filterOfSize(65_536),
    over: () => filterOfSize(65_537),
    message: /the filter is 65537 bytes \(as jsonb\); at most 65536/,
  },
  { bound: 'operators: 256 (every $-key)', at: async () => orOf(255), over: async () => orOf(256), message: /more than 256 operators/ },
  { bound: 'depth: 8 levels of $and/$or', at: async () => nested(8), over: async () => nested(9), message: /nested deeper than 8 levels/ },
];

for (const { bound, at, over, message } of BOUNDS) {
  test(`filter bound, ${bound}: a filter at the bound returns vecs' rows; one over it fails at once with 22023, and no secondary runs anything`, async () => {
    const atBound = await at();
    const overBound = await over();
    for (const collection of ['exact', 'exactshard']) {
      await asAnon('0', async (c) => {
        const before = await wrapperStatements();
        const rows = (await match(c, collection, atBound)).rows.map((r) => r.id).sort();
        assert.deepEqual(rows, expectedIds(atBound), `${collection}: rows at the bound`);
        assert.ok(rows.length > 0 && rows.length < ROWS, `${collection}: a selective filter (${rows.length} rows)`);
        // The probe sees a statement when one is sent: the call at the bound ran on the secondary.
        const sent = await wrapperStatements();
        assert.ok(newStatements(before, sent).length > 0, `${collection}: the call at the bound shows up on a secondary`);

        const refused = await outcome(match(c, collection, overBound));
        assertFailed(refused, '22023', 2000, message);
        assert.deepEqual(newStatements(sent, await wrapperStatements()), [], `${collection}: a secondary ran a statement for a refused filter`);
      });
    }
  });
}

test('a small filter whose numbers would print huge (1e131071: 8 bytes as jsonb, 131 KB as text) fails at once, before anything is printed or sent', async () => {
  // 64 KB of such numbers once made a primary backend allocate ~1 GB for 9–18 s, past its statement_timeout.
  const wide = { s: { $in: Array.from({ length: 2_000 }, () => 1e308 * 0) } };
  const text = JSON.stringify(wide).replace(/0/g, '1e131071');
  assert.ok((await sql<{ n: number }>(dbs.primary, 'SELECT pg_column_size($1::jsonb)::int AS n', [text]))[0]!.n < 65_536, 'within the size bound');
  for (const [what, filter] of [['a huge number', text], ['a tiny one', '{"g": {"$lt": 1e-16000}}'], ['a huge negative one', '{"g": {"$gt": -1e400}}']] as const) {
    for (const collection of ['exact', 'exactshard']) {
      await asAnon('1s', async (c) => {
        const before = await wrapperStatements();
        const refused = await outcome(c.query(`SELECT id FROM public.match_${collection}($1, 10, $2::jsonb)`, [embedding(1), filter]));
        assertFailed(refused, '22023', 2000, /numbers must be 0 or between 1e-307 and 1e308 in magnitude/);
        assert.deepEqual(newStatements(before, await wrapperStatements()), [], `${what}, ${collection}: nothing sent`);
      });
    }
  }
  // Ordinary numbers, big and small, still filter.
  await asAnon('0', async (c) => assert.deepEqual((await match(c, 'exact', { g: { $lt: 1e300 } })).rows.length, ROWS));
});

test("the issue's filter — an $or of 20,000 conditions, ~578 KB — fails at once as anon through PostgREST, before any secondary sees it", async () => {
  const huge = { $or: Array.from({ length: 20_000 }, (_, i) => ({ [`key${i}`]: { $eq: `value-${i}` } })) };
  assert.ok(Buffer.byteLength(JSON.stringify(huge)) > 500_000);
  for (const collection of ['exact', 'exactshard']) {
    const before = await wrapperStatements();
    const refused = await outcome(rpcMatch(collection, huge));
    assertFailed(refused, '22023', 2000, /bytes \(as jsonb\); at most 65536/);
    assert.deepEqual(newStatements(before, await wrapperStatements()), [], `${collection}: a secondary ran a statement for a refused filter`);
  }
  // The refusal broke nothing: the same PostgREST session runs a sound filter (sharded: no remote timeout involved).
  assert.deepEqual(((await rpcMatch('exactshard', { s: { $eq: 'v7' } })) as { id: string }[]).map((r) => r.id), ['e7']);
});

// ---- statement_timeout and cancel reach the secondary --------------------------------------------------------------

for (const path of PATHS) {
  const { name, collection, secondaries } = path;

  test(`${name}: a slow filter under statement_timeout = 1s fails with 57014 within 2 s and leaves nothing running on the secondary`, { timeout: 60_000 }, async () => {
    try {
      await asAnon('1s', async (c) => {
        const o = await outcome(match(c, collection, SLOW_FILTER, 10));
        assertFailed(o, '57014', 2000);
        assert.deepEqual(await settled(secondaries), [], 'still busy on the secondary');
        // The session goes on: the same call with a sound filter returns rows.
        assert.equal((await match(c, collection, {}, 10)).rows.length, 10);
      });
    } finally {
      await stopLeftovers();
    }
  });

  test(`${name}: a query waiting for a lock on the secondary is cancelled at the caller's 1 s; once the lock is gone the same session's call succeeds`, { timeout: 60_000 }, async () => {
    try {
      await asAnon('1s', async (c) => {
        assert.equal((await match(c, collection, {}, 10)).rows.length, 10, 'warm-up: the session has its connection');
        await locked(path.lockUrl, path.lockTable, async () => {
          const call = outcome(match(c, collection, {}, 10));
          // The remote query reached the secondary and waits there for the lock (so the timeout cancels a remote wait).
          const waited = await seenOn(path.lockUrl, `state = 'active' AND wait_event_type = 'Lock'`, 1500);
          const o = await call;
          assert.ok(waited, `the remote query was seen waiting for the lock (${brief(o.error)})`);
          assertFailed(o, '57014', 2000);
          assert.deepEqual(await settled(secondaries), [], 'still busy (or waiting) on the secondary');
        });
        assert.equal((await match(c, collection, {}, 10)).rows.length, 10, 'the call succeeds once the lock is released');
      });
    } finally {
      await stopLeftovers();
    }
  });

  test(`${name}: through PostgREST, anon's own statement_timeout (3s) ends a slow call within 5 s and leaves nothing running`, { timeout: 60_000 }, async () => {
    try {
      const o = await outcome(rpcMatch(collection, SLOW_FILTER, 10));
      assertFailed(o, '57014', 5000);
      assert.deepEqual(await settled(secondaries), [], 'still busy on the secondary');
      // The PostgREST connection (a pooled one, in real life) serves the next request.
      assert.equal(((await rpcMatch(collection, {}, 10)) as unknown[]).length, 10);
    } finally {
      await stopLeftovers();
    }
  });
}

/** A slow call as anon under `statementTimeout`, cancelled with pg_cancel_backend once the secondary runs it. */
async function cancelledCall(c: pg.Client, collection: string, secondary: string): Promise<{ ms: number; cancelAfterMs: number; error?: pg.DatabaseError }> {
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const t0 = performance.now();
  const call = outcome(match(c, collection, SLOW_FILTER, 10));
  assert.ok(await seenOn(secondary, `state = 'active'`), 'the secondary runs the remote query');
  // At least 0.5 s into the call, as the hostile caller would see it hang.
  await new Promise((r) => setTimeout(r, Math.max(0, 500 - (performance.now() - t0))));
  const cancelAfterMs = performance.now() - t0;
  const [sent] = await sql<{ cancelled: boolean }>(dbs.primary, 'SELECT pg_cancel_backend($1) AS cancelled', [pid]);
  assert.equal(sent?.cancelled, true);
  return { ...(await call), cancelAfterMs };
}

test('sharded (dblink fan-out): pg_cancel_backend during a slow call stops it within 2 s and leaves nothing on the secondaries', { timeout: 60_000 }, async () => {
  try {
    // A statement_timeout far beyond the bound, as a safety net: the cancel alone must end the call.
    await asAnon('20s', async (c) => {
      const o = await cancelledCall(c, 'slowshard', podA);
      assert.equal(o.error?.code, '57014', brief(o.error));
      assert.match(o.error!.message, /user request/, 'ended by the cancel, not by a timeout');
      assert.ok(o.ms - o.cancelAfterMs < 2000, `stopped ${Math.round(o.ms - o.cancelAfterMs)} ms after the cancel`);
      assert.deepEqual(await settled([podA, podB]), [], 'still busy on a secondary');
      assert.equal((await match(c, 'slowshard', {}, 10)).rows.length, 10, 'the session goes on');
    });
  } finally {
    await stopLeftovers();
  }
});

test('one secondary (dblink): a cancel takes effect at once (bounded here by the caller\'s statement_timeout, 3 s), and nothing keeps running', { timeout: 60_000 }, async (t) => {
  // search_<c> waits in an interruptible loop (src/query/match-function.ts, awaitAnswer), and the remote session
  // notices the closed connection (client_connection_check_interval): the bound is generous, the cancel is prompt.
  try {
    await asAnon('3s', async (c) => {
      const o = await cancelledCall(c, 'slow', podA);
      t.diagnostic(`cancel sent after ${Math.round(o.cancelAfterMs)} ms; the call ended after ${Math.round(o.ms)} ms with ${brief(o.error)}`);
      assertFailed(o, '57014', 3000 + 2000);
      assert.deepEqual(await settled([podA]), [], 'still busy on the secondary');
    });
  } finally {
    await stopLeftovers();
  }
});

test('one secondary (dblink): after a cancelled call the same session\'s next match_<c> works (the kept dblink connection is usable or re-established)', { timeout: 60_000 }, async () => {
  try {
    await asAnon('3s', async (c) => {
      const o = await cancelledCall(c, 'slow', podA);
      assert.equal(o.error?.code, '57014', brief(o.error));
      assert.deepEqual(await settled([podA]), [], 'still busy on the secondary');
      const next = await outcome(match(c, 'slow', {}, 10));
      assert.equal(next.error, undefined, `the next call failed: ${brief(next.error)}`);
    });
  } finally {
    await stopLeftovers();
  }
});
