/**
 * Test harness: real PostgreSQL clusters from the sandbox code, never a mock. `scripts/test.sh` starts a test
 * sandbox (its own folder and ports, fsync off) and exports its URLs; a test file run on its own starts it itself.
 * Each test file gets fresh databases on every cluster, dropped when the file ends, so files never see each other.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after } from 'node:test';
import pg from 'pg';
import { sandboxUp, sandboxUrls, type SandboxUrls } from '../src/sandbox/sandbox.js';

export const ROOT = join(import.meta.dirname, '..');
export const TEST_SANDBOX_DIR = join(ROOT, '.vecscale', 'test-sandbox');
export const TEST_SANDBOX_PORT = 55432;
export const TEST_SECONDARIES = 3;

let clustersPromise: Promise<SandboxUrls> | undefined;

/** URLs of the test clusters' `postgres` databases (admin connections). */
export function testClusters(): Promise<SandboxUrls> {
  clustersPromise ??= (async () => {
    const fromEnv = process.env.VECSCALE_TEST_CLUSTERS;
    if (fromEnv) return JSON.parse(fromEnv) as SandboxUrls;
    const clusters = await sandboxUp({
      dir: TEST_SANDBOX_DIR,
      basePort: TEST_SANDBOX_PORT,
      secondaries: TEST_SECONDARIES,
      fast: true,
    });
    return sandboxUrls(clusters);
  })();
  return clustersPromise;
}

export const withDatabase = (url: string, db: string): string => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

/** Runs one statement on a URL with a short-lived connection. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Creates a database named `<prefix>_<random>` on the primary and on every secondary, and registers their removal
 * when the calling test file ends. Call it at the top level of a test file (not inside a hook: an `after` registered
 * in a hook runs when the hook ends). Returns URLs in the shape of `sandbox up --json`.
 */
export async function freshDatabases(prefix: string): Promise<SandboxUrls & { readonly name: string }> {
  const clusters = await testClusters();
  const name = `${prefix.replace(/[^a-z0-9_]/g, '_').slice(0, 40)}_${randomBytes(4).toString('hex')}`;
  const admin = [clusters.primary, ...Object.values(clusters.secondaries)];
  for (const url of admin) await sql(url, `CREATE DATABASE "${name}"`);
  after(async () => {
    for (const url of admin) await sql(url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    // The wrapper role of this file's topologies (see test/topology-files.ts): its privileges went with the databases.
    for (const url of admin) await sql(url, `DROP ROLE IF EXISTS "fdw_${name}"`);
  });
  return {
    name,
    primary: withDatabase(clusters.primary, name),
    secondaries: Object.fromEntries(Object.entries(clusters.secondaries).map(([k, u]) => [k, withDatabase(u, name)])),
  };
}

/**
 * Freezes (SIGSTOP) the sessions of database `db` on the cluster of `adminUrl` that match `where` (SQL over
 * pg_stat_activity): a database that accepted the connections and then stopped answering. Returns the function that
 * thaws them (SIGCONT; call it in a `finally`). Only those sessions stop — not the cluster's postmaster, nor other
 * databases — so test files that share the clusters go on. A stopped process fires no timer: the frozen sessions'
 * own statement_timeout does nothing until they are thawed, exactly as on a stopped server.
 *
 * They thaw by themselves after `maxMs` too: a test that hangs (and is abandoned at its timeout, its `finally`
 * never reached) must not leave stopped backends, which no DROP DATABASE … WITH (FORCE) can end.
 */
export async function freezeSessions(adminUrl: string, db: string, where = 'true', maxMs = 30_000): Promise<{ pids: number[]; thaw: () => void }> {
  const rows = await sql<{ pid: number }>(
    adminUrl,
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND (${where})`,
    [db],
  );
  const pids = rows.map((r) => r.pid);
  const thaw = () => {
    clearTimeout(safety);
    process.off('exit', thaw);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone already
      }
    }
  };
  const safety = setTimeout(thaw, maxMs);
  safety.unref();
  process.once('exit', thaw);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  return { pids, thaw };
}

/** How a call ended, and after how long (ms: only ever a bound on a hang). */
export async function outcome(p: Promise<unknown>): Promise<{ ms: number; error?: pg.DatabaseError }> {
  const t0 = performance.now();
  try {
    await p;
    return { ms: performance.now() - t0 };
  } catch (e) {
    return { ms: performance.now() - t0, error: e as pg.DatabaseError };
  }
}
