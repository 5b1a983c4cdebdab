/**
 * A URL that goes through a transaction-mode pooler cannot hold vecscale's session lock or its session settings:
 * plan and apply refuse it with exit 6 and the direct URL's advice. A session-mode pooler keeps one server session
 * per client: it works. Against a real PgBouncer (Debian's `pgbouncer`), skipped where it is not installed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { plan } from '../../src/api.js';
import { connect } from '../../src/db/connect.js';
import { isVecscaleError } from '../../src/errors.js';
import { nextFreePort } from '../../src/sandbox/host.js';
import { vecscale } from '../cli.js';
import { freshDatabases } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const binary = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer'], { encoding: 'utf8' }).trim().split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
})();
const skip = binary === undefined ? 'pgbouncer is not installed (apt-get install pgbouncer)' : false;

const dbs = await freshDatabases('pooler');
const file = (primary: string) => topologyFile({ ...dbs, primary }, `  docs:\n    secondary: pod_a\n    dimension: 3\n`);

/** PgBouncer in front of the test primary: database `tx` in transaction mode, `sess` in session mode. */
async function pgbouncer(): Promise<{ url: (db: 'tx' | 'sess') => string; stop: () => void }> {
  const primary = new URL(dbs.primary);
  const port = await nextFreePort(56432, new Set());
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-pgbouncer-'));
  chmodSync(dir, 0o777);
  const server = `host=${primary.hostname} port=${primary.port} dbname=${dbs.name} user=${decodeURIComponent(primary.username)} password=${decodeURIComponent(primary.password)}`;
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    `[databases]\ntx = ${server} pool_mode=transaction\nsess = ${server} pool_mode=session\n` +
      `[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nunix_socket_dir =\nauth_type = any\n` +
      `default_pool_size = 4\nlogfile = ${join(dir, 'pgbouncer.log')}\npidfile = ${join(dir, 'pgbouncer.pid')}\n`,
    { mode: 0o644 },
  );
  // PgBouncer refuses to run as root: -u drops to the postgres user.
  const child: ChildProcess = spawn(binary!, [...(process.getuid?.() === 0 ? ['-u', 'postgres'] : []), ini], { stdio: 'ignore' });
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  after(stop);
  const url = (db: 'tx' | 'sess') => `postgres://${primary.username}:${primary.password}@127.0.0.1:${port}/${db}`;
  for (let i = 0; ; i++) {
    try {
      const c = await connect({ database: 'primary', url: url('sess') });
      await c.end();
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url, stop };
}

test('through a transaction-mode pooler: plan refuses with exit 6 and the direct URL\'s advice; connect() without requireSession still works', { skip }, async () => {
  const bouncer = await pgbouncer();
  const f = file(bouncer.url('tx'));
  const r = await vecscale(['plan', f.path], { env: f.env });
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /the primary \(postgres(ql)?:\/\/[^)]*\/tx\) goes through a transaction-mode connection pooler \(/);
  assert.match(r.stderr, /hint: use the database's direct URL/);
  await assert.rejects(plan(f.load()), (e: unknown) => isVecscaleError(e) && e.code === 'config' && e.meta.reason === 'transaction_pooler');
  // A client that needs no session (vecscale query) may go through it.
  const c = await connect({ database: 'primary', url: bouncer.url('tx') });
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  await c.end();
});

test('through a session-mode pooler: plan works (one server session per client)', { skip }, async () => {
  const bouncer = await pgbouncer();
  const f = file(bouncer.url('sess'));
  const r = await vecscale(['plan', f.path, '--detailed-exitcode'], { env: f.env });
  assert.equal(r.code, 2, r.stderr);
});
