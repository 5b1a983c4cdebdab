/**
 * What a URL says reaches both ends: the wrapper's foreign server carries the URL's sslmode (and only it), every
 * wrapper server carries TCP keepalives, drift in them is planned back, and apply converges. vecscale's own
 * connection settings for each sslmode (pgConnection) reach the test clusters, which run without TLS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { parseTopology } from '../../src/config/index.js';
import type { Topology } from '../../src/config/types.js';
import { KEEPALIVE_OPTIONS } from '../../src/desired/servers.js';
import { hasChanges, type Plan } from '../../src/plan/types.js';
import { pgConnection, type PgSsl } from '../../src/util/url.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, templated } from '../topology-files.js';

const dbs = await freshDatabases('server_options');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const approve = async () => true;

/** A topology whose URLs end in the given query strings (primary, pod_a, pod_b). */
function topologyWith(queries: { primary?: string; a?: string; b?: string }): Topology {
  const p = templated(dbs.primary, 'SO_PRIMARY_PW');
  const a = templated(podA, 'SO_POD_A_PW');
  const b = templated(podB, 'SO_POD_B_PW');
  const fdw = `    fdw_user: ${fdwUserFor(dbs)}\n`;
  const text =
    `version: 1\nprimary:\n  url: ${p.url}${queries.primary ?? ''}\nsecondaries:\n` +
    `  pod_a:\n    url: ${a.url}${queries.a ?? ''}\n${fdw}  pod_b:\n    url: ${b.url}${queries.b ?? ''}\n${fdw}` +
    'collections:\n  docs:\n    secondary: pod_a\n    dimension: 3\n  pics:\n    secondary: pod_b\n    dimension: 3\n';
  const r = parseTopology(text, 'server-options.yaml', { ...p.env, ...a.env, ...b.env });
  if (!r.ok) throw new Error(r.problems.map((x) => x.message).join('\n'));
  return r.topology;
}

const serverOptions = async (name: string): Promise<Record<string, string>> => {
  const [row] = await sql<{ o: string[] }>(dbs.primary, 'SELECT srvoptions AS o FROM pg_catalog.pg_foreign_server WHERE srvname = $1', [name]);
  assert.ok(row, `server ${name} exists`);
  return Object.fromEntries(row.o.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
};
const changes = (p: Plan): string[] => p.databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`));

test('sslmode from the URL reaches the foreign server, every server gets keepalives, and the next plan is empty', async () => {
  const t = topologyWith({ primary: '?sslmode=disable', a: '?sslmode=disable' });
  assert.equal((await apply(t, { approve })).status, 'applied');
  const a = await serverOptions('pod_a');
  const b = await serverOptions('pod_b');
  assert.equal(a.sslmode, 'disable');
  // No sslmode written: none on the server, libpq's default (prefer) as for vecscale's own connection.
  assert.equal(b.sslmode, undefined);
  for (const [k, v] of Object.entries(KEEPALIVE_OPTIONS)) {
    assert.equal(a[k], v, `pod_a ${k}`);
    assert.equal(b[k], v, `pod_b ${k}`);
  }
  // The wrapper connects with those options (libpq accepts every one of them).
  assert.deepEqual(await sql(dbs.primary, 'SELECT count(*)::int AS n FROM public.docs'), [{ n: 0 }]);
  assert.deepEqual(changes(await plan(t)), []);
});


test('a changed sslmode is planned as an ALTER SERVER of that option, and apply converges', async () => {
  const t = topologyWith({ b: '?sslmode=disable' });
  const p = await plan(t);
  const sqlText = p.databases.flatMap((d) => d.steps.flatMap((s) => s.sql)).join('\n');
  assert.match(sqlText, /ALTER SERVER "pod_a" OPTIONS \(DROP "sslmode"\)/);
  assert.match(sqlText, /ALTER SERVER "pod_b" OPTIONS \(ADD "sslmode" 'disable'\)/);
  assert.equal((await apply(t, { approve })).status, 'applied');
  assert.equal((await serverOptions('pod_a')).sslmode, undefined);
  assert.equal((await serverOptions('pod_b')).sslmode, 'disable');
  assert.deepEqual(changes(await plan(t)), []);
});

test(
  'keepalives removed or changed by hand are drift: planned back, and apply converges',
  async () => {
    const t = topologyWith({ b: '?sslmode=disable' });
    await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (DROP keepalives_idle, SET tcp_user_timeout '0')`);
    const p = await plan(t);
    assert.ok(hasChanges(p), 'the plan sees the missing keepalive');
    assert.deepEqual(changes(p).filter((c) => c.startsWith('primary:')).length > 0, true);
    assert.equal((await apply(t, { approve })).status, 'applied');
    const a = await serverOptions('pod_a');
    assert.equal(a.keepalives_idle, KEEPALIVE_OPTIONS.keepalives_idle);
    assert.equal(a.tcp_user_timeout, KEEPALIVE_OPTIONS.tcp_user_timeout);
    assert.deepEqual(changes(await plan(t)), []);
  },
);

test(
  "vecscale's own connection reads allow and prefer as libpq does: on a server without TLS, plaintext (node-pg alone: verify-full, and fails)",
  async () => {
    const t = topologyWith({ primary: '?sslmode=prefer', a: '?sslmode=prefer', b: '?sslmode=allow' });
    assert.equal((await apply(t, { approve })).status, 'applied');
    assert.equal((await serverOptions('pod_a')).sslmode, 'prefer');
    assert.equal((await serverOptions('pod_b')).sslmode, 'allow');
    assert.deepEqual(changes(await plan(t)), []);
  },
);

/** Connects with pgConnection's settings, attempt by attempt as connect.ts should; returns the attempts made and TLS use. */
async function connectLikeVecscale(url: string): Promise<{ attempts: PgSsl[]; ssl: boolean }> {
  const c = pgConnection(url);
  const tried: PgSsl[] = [];
  let lastError: unknown;
  for (const ssl of c.ssl) {
    tried.push(ssl);
    const client = new pg.Client({ host: c.host, port: c.port, database: c.database, user: c.user, password: c.password, ssl });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const [row] = (await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()')).rows;
      await client.end();
      return { attempts: tried, ssl: row!.ssl };
    } catch (e) {
      lastError = e;
      await client.end().catch(() => undefined);
    }
  }
  throw lastError;
}

test('pgConnection: disable and allow connect in plaintext at once, prefer after TLS is refused, require fails like libpq', async () => {
  const withQuery = (q: string) => `${podA}${podA.includes('?') ? '&' : '?'}${q}`;
  assert.deepEqual(await connectLikeVecscale(withQuery('sslmode=disable')), { attempts: [false], ssl: false });
  assert.deepEqual(await connectLikeVecscale(withQuery('sslmode=allow')), { attempts: [false], ssl: false });
  const prefer = await connectLikeVecscale(withQuery('sslmode=prefer'));
  assert.deepEqual(prefer, { attempts: [{ rejectUnauthorized: false }, false], ssl: false });
  // No sslmode: libpq's default, prefer.
  assert.deepEqual(await connectLikeVecscale(podA), prefer);
  await assert.rejects(connectLikeVecscale(withQuery('sslmode=require')), /does not support SSL/);
  // libpq on the primary says the same about require through a foreign server: the two ends agree.
  const u = new URL(podA);
  await sql(dbs.primary, `CREATE SERVER so_require FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${u.hostname}', port '${u.port}', dbname '${dbs.name}', sslmode 'require')`);
  try {
    await sql(dbs.primary, `CREATE USER MAPPING FOR CURRENT_USER SERVER so_require OPTIONS (user '${u.username}', password '${decodeURIComponent(u.password)}')`);
    await sql(dbs.primary, `CREATE FOREIGN TABLE public.so_probe (amname name) SERVER so_require OPTIONS (schema_name 'pg_catalog', table_name 'pg_am')`);
    await assert.rejects(sql(dbs.primary, 'SELECT * FROM public.so_probe'), (e: { detail?: string }) => /server does not support SSL/.test(e.detail ?? ''));
  } finally {
    await sql(dbs.primary, 'DROP SERVER so_require CASCADE');
  }
});
