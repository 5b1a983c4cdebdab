/**
 * `vecscale status` on real clusters: after apply and rows, every collection with its exact row count and index
 * name, healthy, exit 0; then three things broken by hand as an operator would meet them — the wrapper role's
 * password changed on a secondary, a vector index dropped, a replication slot left behind, a secondary's view
 * dropped — and each is named with its fix, exit 2. Statements per database do not grow with the collections.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { indexName } from '../../src/desired/index.js';
import { DEFINITION_MARK, MANAGED_COMMENT, PROTECTED_MARK } from '../../src/model/state.js';
import { status } from '../../src/status/index.js';
import { vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('status');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(
  dbs,
  `  docs:
    secondary: pod_a
    dimension: 8
    index: { method: hnsw, m: 8, ef_construction: 32 }
  flat:
    secondary: pod_b
    dimension: 8
    index: { method: none }
  spread:
    shards: [pod_a, pod_b]
    dimension: 8
`,
);
const topology = file.load();
await apply(topology, { approve: async () => true });
const vec = `ARRAY(SELECT random()::real + g * 0 FROM generate_series(1, 8))::vector(8)`;
await sql(podA, `INSERT INTO vecs.docs (id, vec, metadata) SELECT 'd' || g, ${vec}, '{}' FROM generate_series(1, 300) g`);
await sql(podB, `INSERT INTO vecs.flat (id, vec, metadata) SELECT 'f' || g, ${vec}, '{}' FROM generate_series(1, 50) g`);
await sql(dbs.primary, `INSERT INTO public.spread (id, embedding, metadata) SELECT 's' || g, ${vec}, '{}' FROM generate_series(1, 200) g`);

const cli = (...args: string[]) => vecscale(['status', file.path, ...args], { env: file.env });
/** The same topology without flat: a collection taken out. */
const without = topologyFile(
  dbs,
  `  docs:
    secondary: pod_a
    dimension: 8
    index: { method: hnsw, m: 8, ef_construction: 32 }
  spread:
    shards: [pod_a, pod_b]
    dimension: 8
`,
);

test('healthy: every collection with exact rows and its index; exit 0 and the JSON document', async () => {
  const r = await status(topology);
  assert.deepEqual(r.problems, [], 'no problems');
  assert.equal(r.healthy, true);
  const byName = new Map(r.collections.map((c) => [c.name, c]));
  assert.equal(byName.get('docs')?.rows, 300, 'docs rows');
  assert.equal(byName.get('flat')?.rows, 50, 'flat rows');
  assert.equal(byName.get('spread')?.rows, 200, 'spread rows, summed over its partitions');
  assert.ok(r.collections.every((c) => c.rowsExact), 'small tables are counted exactly');
  const docs = topology.collections.find((c) => c.name === 'docs')!;
  if (docs.index.method === 'none') throw new Error('docs has an index');
  assert.equal(byName.get('docs')?.parts[0]?.index?.name, indexName(docs, docs.index), 'docs index name');
  assert.deepEqual(byName.get('docs')?.parts[0]?.index?.params, { ef_construction: '32', m: '8' }, 'docs index parameters');
  assert.equal(byName.get('flat')?.parts[0]?.index, null, 'flat has no index');
  assert.equal(byName.get('spread')?.parts.length, 2, 'spread: two partitions');
  assert.ok(byName.get('spread')?.parts.every((p) => p.index?.method === 'hnsw' && p.index.valid), 'each partition has its HNSW index');
  assert.equal(byName.get('docs')?.parts[0]?.serverSettings?.['hnsw.ef_search'], '100', 'the wrapper server carries ef_search');
  assert.ok(r.wrappers.length >= 6 && r.wrappers.every((w) => w.ok), `every foreign table read through: ${JSON.stringify(r.wrappers)}`);
  const pods = r.databases.filter((d) => d.database !== 'primary');
  assert.ok(pods.every((d) => d.reachable && d.pgvector && d.walLevel), 'pods: reachable, pgvector and wal_level known');

  const human = await cli();
  assert.equal(human.code, 0, human.stderr + human.stdout);
  assert.match(human.stdout, /docs\s+pod_a\s+300\s/);
  assert.match(human.stdout, new RegExp(indexName(docs, docs.index)));
  const json = await cli('--json');
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { healthy: boolean; collections: Array<{ name: string; rows: number }> };
  assert.equal(doc.healthy, true);
  assert.deepEqual(doc.collections.map((c) => [c.name, c.rows]), [['docs', 300], ['flat', 50], ['spread', 200]]);
  assert.doesNotMatch(json.stdout + json.stderr + human.stdout + human.stderr, /sandbox-password/, 'no password in the output');
});

test('a changed wrapper password, a dropped index, a slot left behind, a dropped view: each named with its fix, exit 2', async () => {
  const docs = topology.collections.find((c) => c.name === 'docs')!;
  if (docs.index.method === 'none') throw new Error('docs has an index');
  const slot = `status_left_${Math.random().toString(36).slice(2, 8)}`;
  await sql(podA, `ALTER ROLE ${fdwUserFor(dbs)} PASSWORD 'changed-by-hand'`);
  await sql(podA, `DROP INDEX vecs.${indexName(docs, docs.index)}`);
  await sql(podB, `SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`);
  await sql(podB, `DROP VIEW vecscale.flat`);
  try {
    const r = await status(topology);
    assert.equal(r.healthy, false);
    const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
    assert.match(text, /^primary \| server pod_a \| a login through server pod_a failed \(vecscale_remote\.docs, .*password authentication failed.* \| .*sets it again/m, text);
    assert.match(text, /^pod_a \| collection docs \| vecs\.docs has no vector index.* \| vecscale apply builds it/m, text);
    assert.match(text, new RegExp(`^pod_b \\| replication slot ${slot} \\| .*inactive.* \\| .*pg_drop_replication_slot\\('${slot}'\\)`, 'm'), text);
    assert.match(text, /^primary \| vecscale_remote\.flat \| .*reads vecscale\.flat, which is gone on the secondary.* \| vecscale apply creates vecscale\.flat again/m, text);
    const cliRun = await cli();
    assert.equal(cliRun.code, 2, cliRun.stderr + cliRun.stdout);
    assert.match(cliRun.stdout, new RegExp(`replication slot ${slot}`));
    assert.doesNotMatch(cliRun.stdout + cliRun.stderr, /changed-by-hand|sandbox-password/, 'no password in the output');
  } finally {
    await sql(podB, `SELECT pg_drop_replication_slot('${slot}')`);
  }
  // apply repairs what it can: the password, the index, the view; the slot was dropped above.
  await apply(file.load(), { approve: async () => true });
  const after = await status(topology);
  assert.deepEqual(after.problems, [], 'healthy again after apply');
});

test('an unreachable secondary is a problem, not a crash: the others are still reported', async () => {
  const broken = topologyFile(
    { ...dbs, secondaries: { ...dbs.secondaries, [Object.keys(dbs.secondaries)[1]!]: 'postgresql://postgres:x@127.0.0.1:1/none' } },
    `  docs:
    secondary: pod_a
    dimension: 8
    index: { method: hnsw, m: 8, ef_construction: 32 }
`,
  );
  const r = await status(broken.load(), { connectTimeoutMs: 2000 });
  assert.equal(r.healthy, false);
  const podBStatus = r.databases.find((d) => d.database === 'pod_b');
  assert.equal(podBStatus?.reachable, false, 'pod_b unreachable');
  assert.match(r.problems.find((p) => p.database === 'pod_b')?.message ?? '', /cannot connect to secondary pod_b/);
  assert.equal(r.collections[0]?.rows, 300, 'pod_a still read');
});

test('a collection taken out of the topology: its table, still on its pod with rows, is named, as the plan that it blocks says', async () => {
  const r = await status(without.load());
  assert.equal(r.healthy, false, 'an orphaned collection table needs attention');
  const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
  assert.match(text, /^pod_b \| table vecs\.flat \| vecs\.flat \(made by vecscale; 50 rows\) belongs to collection flat, which is not in the topology: apply drops it \| .*put collection flat back in the topology.*vecscale apply --allow-destructive flat/m, text);
  const cliRun = await vecscale(['status', without.path], { env: without.env });
  assert.equal(cliRun.code, 2, cliRun.stderr + cliRun.stdout);
  assert.match(cliRun.stdout, /vecs\.flat/);
  const plan = await vecscale(['plan', without.path], { env: without.env });
  assert.equal(plan.code, 3, `plan is blocked by the same table: ${plan.stderr}${plan.stdout}`);
  assert.match(plan.stdout + plan.stderr, /--allow-destructive flat/);
  // status changed nothing: the full topology is still healthy.
  assert.deepEqual((await status(topology)).problems, [], 'status is read-only');
});

test('every marker plan takes as vecscale\'s is an orphan to status too; an empty protected one is dropped without a flag, as status says', async () => {
  await sql(podB, `CREATE TABLE vecs.defmark (id character varying PRIMARY KEY, vec vector(8) NOT NULL, metadata jsonb DEFAULT '{}'::jsonb)`);
  await sql(podB, `COMMENT ON TABLE vecs.defmark IS '${MANAGED_COMMENT}${DEFINITION_MARK}0123'`);
  await sql(podB, `INSERT INTO vecs.defmark (id, vec) SELECT 'x', ${vec} FROM generate_series(1, 1) g`);
  await sql(podB, `CREATE TABLE vecs.keptempty (id character varying PRIMARY KEY, vec vector(8) NOT NULL, metadata jsonb DEFAULT '{}'::jsonb)`);
  await sql(podB, `COMMENT ON TABLE vecs.keptempty IS '${MANAGED_COMMENT}${PROTECTED_MARK}'`);
  after(() => sql(podB, 'DROP TABLE IF EXISTS vecs.defmark, vecs.keptempty'));
  const r = await status(topology);
  const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
  assert.match(text, /^pod_b \| table vecs\.defmark \| vecs\.defmark \(made by vecscale; 1 row\) belongs to collection defmark/m, text);
  assert.match(text, /^pod_b \| table vecs\.keptempty \| vecs\.keptempty \(made by vecscale, protected; empty\) .*apply drops it \| .*no flag needed/m, text);
  const blocked = await vecscale(['plan', file.path], { env: file.env });
  assert.equal(blocked.code, 3, `plan is blocked by vecs.defmark's row, as status says: ${blocked.stderr}${blocked.stdout}`);
  await sql(podB, `DELETE FROM vecs.defmark`);
  await apply(topology, { approve: async () => true });
  const [left] = await sql<{ n: number }>(podB, `SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('defmark', 'keptempty')`);
  assert.equal(left?.n, 0, 'both dropped without --allow-destructive');
  assert.deepEqual((await status(topology)).problems, [], 'healthy again');
});

test('settings that break the wrappers\' sessions are named: the wrapper role\'s own (apply resets them), a database default that loses upserts', async () => {
  const role = fdwUserFor(dbs);
  const podBDb = new URL(podB).pathname.slice(1);
  await sql(podB, `ALTER ROLE "${role}" IN DATABASE "${podBDb}" SET statement_timeout = '50ms'`);
  await sql(podB, `ALTER DATABASE "${podBDb}" SET session_replication_role = replica`);
  try {
    const r = await status(topology);
    const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
    assert.match(text, new RegExp(`^pod_b \\| role ${role} \\| the wrapper role ${role} has settings of its own \\(statement_timeout=50ms\\).*\\| vecscale apply resets them`, 'm'), text);
    assert.match(text, /^pod_b \| setting session_replication_role \| pod_b's database default session_replication_role = replica: triggers do not fire, so upserts through the primary .* are lost without an error/m, text);
    const cliRun = await cli();
    assert.equal(cliRun.code, 2, cliRun.stdout + cliRun.stderr);
    await apply(topology, { approve: async () => true });
    const after = (await status(topology)).problems.map((p) => p.object);
    assert.ok(!after.includes(`role ${role}`), `apply reset the wrapper role's settings: ${after.join(', ')}`);
    assert.ok(after.includes('setting session_replication_role'), 'a database default is left to its owner');
  } finally {
    await sql(podB, `ALTER ROLE "${role}" IN DATABASE "${podBDb}" RESET ALL`);
    await sql(podB, `ALTER DATABASE "${podBDb}" RESET session_replication_role`);
  }
  assert.deepEqual((await status(topology)).problems, [], 'healthy again');
});

test('a column renamed on the pod, a table locked by another session, a pod the primary cannot reach (but status can)', async () => {
  // A silent listener on loopback: accepts the primary's connection and never answers it.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as net.AddressInfo).port;
  const [{ host: oldHost, port: oldPort }] = await sql<{ host: string; port: string }>(
    dbs.primary,
    `SELECT (SELECT substr(o, 6) FROM unnest(srvoptions) o WHERE o LIKE 'host=%') AS host, (SELECT substr(o, 6) FROM unnest(srvoptions) o WHERE o LIKE 'port=%') AS port FROM pg_foreign_server WHERE srvname = 'pod_a'`,
  ) as [{ host: string; port: string }];
  await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (SET port '${port}')`);
  await sql(podB, `ALTER VIEW vecscale.flat RENAME COLUMN metadata TO metadata_x`);
  const locker = new pg.Client({ connectionString: podB });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE vecs.flat IN ACCESS EXCLUSIVE MODE');
  try {
    const started = Date.now();
    const r = await status(topology, { statementTimeoutMs: 2000 });
    assert.ok(Date.now() - started < 20_000, 'bounded');
    const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
    assert.match(text, /^primary \| server pod_a \| a login through server pod_a .*got no answer within the statement timeout: the primary cannot reach/m, text);
    assert.match(text, /^primary \| vecscale_remote\.flat \| .*reads vecscale\.flat, whose column metadata is gone on the secondary/m, text);
    assert.equal(r.databases.find((d) => d.database === 'primary')?.reachable, true, 'the primary is still read');
    const b = r.databases.find((d) => d.database === 'pod_b');
    assert.equal(b?.reachable, true, 'a locked table does not make its pod unreachable');
    assert.match(b?.warning ?? '', /sizes and row counts unknown: locked by another session: vecs\.flat/);
    assert.equal(r.collections.find((c) => c.name === 'docs')?.rows, 300, 'the rest of the reading stands');
    assert.ok(!/sandbox-password/.test(JSON.stringify(r)), 'no password in the report');
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
    await sql(podB, `ALTER VIEW vecscale.flat RENAME COLUMN metadata_x TO metadata`);
    await sql(dbs.primary, `ALTER SERVER pod_a OPTIONS (SET host '${oldHost}', SET port '${oldPort}')`);
    // The primary's backend waits on its connect until the listener's sockets close.
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
  assert.deepEqual((await status(topology)).problems, [], 'healthy again');
});

test('a collection taken out whose pod objects were dropped by hand: the primary\'s wrappers are named as left over, not to be created again; apply drops them without a flag', async () => {
  await sql(podB, `DROP VIEW vecscale.flat`);
  await sql(podB, `DROP TABLE vecs.flat`);
  const r = await status(without.load());
  const text = r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`).join('\n');
  assert.equal(r.healthy, false, text);
  assert.match(text, /^primary \| collection flat \| the foreign tables vecscale_remote\.flat and vecscale_write\.flat on the primary belong to collection flat, which is not in the topology \| .*vecscale apply drops them/m, text);
  assert.doesNotMatch(text, /creates vecscale\.flat again|creates vecs\.flat again/, 'a leftover is not to be created again');
  const cliRun = await vecscale(['status', without.path], { env: without.env });
  assert.equal(cliRun.code, 2, cliRun.stderr + cliRun.stdout);
  await apply(without.load(), { approve: async () => true });
  assert.deepEqual((await status(without.load())).problems, [], 'healthy after apply');
  const left = await sql<{ n: number }>(
    dbs.primary,
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'flat' AND n.nspname IN ('public', 'vecscale_remote', 'vecscale_write', 'vecscale')`,
  );
  assert.equal(left[0]?.n, 0, 'apply dropped the view and foreign tables of flat');
  const fns = await sql<{ n: number }>(dbs.primary, `SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE '%\\_flat'`);
  assert.equal(fns[0]?.n, 0, 'and its functions');
});
