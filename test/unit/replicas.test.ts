/** Read replicas per secondary: the config key, the primary's read and write servers, fresh reads. Pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem, parseTopology } from '../../src/config/index.js';
import { buildDesired } from '../../src/desired/index.js';
import { writeServerFor } from '../../src/desired/servers.js';
import { type DbObject, keys } from '../../src/model/state.js';
import { buildPlan } from '../../src/plan/planner.js';
import { collection, secondary, sharded, topology } from '../topologies.js';

const env = { PW: 'pod-pw-1', RPW: 'replica-Pw-9!' };
const yaml = (replicas: string) => `version: 1
primary:
  url: postgres://postgres:\${PW}@db.primary:5432/postgres
secondaries:
  pod_a:
    url: postgres://postgres:\${PW}@pod-a.internal:5432/vectors
    replicas: ${replicas}
collections:
  docs: { secondary: pod_a, dimension: 3 }
`;

test('config: replicas is a list of URLs, interpolated, their passwords secrets; absent is none', () => {
  const r = parseTopology(yaml('\n      - postgres://postgres:${RPW}@pod-a-replica-1.internal:5432/vectors'), 't.yaml', env);
  assert.ok(r.ok, `loads: ${r.ok ? '' : r.problems.map(formatProblem).join('\n')}`);
  assert.deepEqual(r.topology.secondaries[0]!.replicas, [`postgres://postgres:${encodeURIComponent(env.RPW)}@pod-a-replica-1.internal:5432/vectors`]);
  assert.ok(r.topology.secrets.includes(env.RPW), 'the replica password is a secret (scrubbed from output)');
  const none = parseTopology(yaml('[]'), 't.yaml', env);
  assert.ok(none.ok, 'an empty list loads');
  assert.deepEqual(none.topology.secondaries[0]!.replicas, []);
});

test('config: each replica URL is checked like url, located at its item; same database and sslmode as the secondary', () => {
  const r = parseTopology(yaml(`
      - postgres://postgres:\${RPW}@r1:5432/other
      - postgres://postgres:\${RPW}@r2:5432/vectors?sslmode=require
      - postgres://postgres:\${PW}@pod-a.internal:5432/vectors
      - http://r4
      - postgres://postgres:literal-pw@r5/vectors`), 't.yaml', env);
  assert.equal(r.ok, false, 'refused');
  const lines = r.ok ? [] : r.problems.map(formatProblem);
  assert.deepEqual(lines, [
    't.yaml:8:9: secondaries.pod_a.replicas[0]: names database "other", secondaries.pod_a.url "vectors": a physical standby holds its secondary\'s databases, so write the same one',
    't.yaml:9:9: secondaries.pod_a.replicas[1]: has sslmode require, secondaries.pod_a.url (default): the wrappers reach a secondary and its standbys through one server, with one sslmode',
    't.yaml:10:9: secondaries.pod_a.replicas[2]: points at the same database as secondaries.pod_a (pod-a.internal:5432/vectors)',
    't.yaml:11:9: secondaries.pod_a.replicas[3]: must be a postgres:// or postgresql:// URL (got http://r4/)',
    'warning: t.yaml:12:9: secondaries.pod_a.replicas[4]: literal password in secondaries.pod_a.replicas[4]: use ${ENV_VAR}',
  ]);
  assert.ok(!lines.join('\n').includes('literal-pw') && !lines.join('\n').includes(env.RPW), 'no password is quoted');
});

const R1 = 'postgres://postgres:r-pw@10.0.0.12:5434/vectors';
const R2 = 'postgres://postgres:r-pw@10.0.0.13:5435/vectors';
const withReplicas = () =>
  topology({
    secondaries: [
      secondary('pod_text', 'postgres://postgres:pw@10.0.0.2:5433/vectors', { replicas: [R1, R2] }),
      secondary('pod_img', 'postgres://admin:pw@10.0.0.3:5432/postgres?sslmode=require'),
    ],
    collections: [
      collection('docs', 'pod_text', { dimension: 384, query: { efSearch: 40, iterativeScan: 'strict_order', probes: 10 } }),
      collection('images', 'pod_img', { dimension: 512 }),
      sharded('chunks', ['pod_text', 'pod_img'], 2),
    ],
  });
const docsReadServer = (p: ReadonlyMap<string, DbObject>): string => (p.get(keys.relation('vecscale_remote', 'docs')) as { server: string }).server;
const primaryOf = (t = withReplicas()) =>
  buildDesired(t, { vectorSchema: 'public', dblinkSchema: 'vecscale', owners: new Map() }).find((d) => d.database === 'primary')!.objects;
const get = <K extends DbObject['kind']>(objects: ReadonlyMap<string, DbObject>, key: string, kind: K): Extract<DbObject, { kind: K }> => {
  const o = objects.get(key);
  assert.equal(o?.kind, kind, `${key} is a ${kind}`);
  return o as Extract<DbObject, { kind: K }>;
};

test('servers: read servers list the secondary then its standbys (prefer-standby); the write server the secondary alone', () => {
  const p = primaryOf();
  const w = writeServerFor('pod_text');
  assert.match(w, /^pod_text_w[0-9a-f]{7}$/);
  for (const name of ['pod_text', ...[...p.values()].filter((o) => o.kind === 'server' && /^pod_text_q/.test(o.name)).map((o) => (o as { name: string }).name)]) {
    const s = get(p, keys.server(name), 'server');
    assert.equal(s.options.host, '10.0.0.2,10.0.0.12,10.0.0.13', `${name}: hosts`);
    assert.equal(s.options.port, '5433,5434,5435', `${name}: ports`);
    assert.equal(s.options.target_session_attrs, 'prefer-standby', `${name}: prefer-standby`);
  }
  const write = get(p, keys.server(w), 'server');
  assert.deepEqual([write.options.host, write.options.port, write.options.target_session_attrs], ['10.0.0.2', '5433', undefined]);
  assert.equal(get(p, keys.userMapping(w, 'public'), 'user_mapping').options.user, 'vecscale_fdw', 'the write server maps to the wrapper role');
  // Without standbys: one host, no target_session_attrs, no write server.
  const img = get(p, keys.server('pod_img'), 'server');
  assert.deepEqual([img.options.host, img.options.port, img.options.target_session_attrs], ['10.0.0.3', '5432', undefined]);
  assert.equal([...p.keys()].some((k) => k.includes(writeServerFor('pod_img'))), false, 'no write server for pod_img');
});

const DOCS_QUERY = { efSearch: 40, iterativeScan: 'strict_order', probes: 10 } as const;

test('writes go through the write server of the collection\'s settings: vecscale_write.<c>, the upsert table vecscale.<c>, a sharded collection\'s partitions', () => {
  const p = primaryOf();
  const w = writeServerFor('pod_text', DOCS_QUERY);
  assert.equal(get(p, keys.server(w), 'server').options.options, get(p, keys.server(docsReadServer(p)), 'server').options.options, 'same session settings as the read server');
  const docsRemote = get(p, keys.relation('vecscale_remote', 'docs'), 'foreign_table');
  assert.match(docsRemote.server, /^pod_text_q/, 'reads: the read server of the collection\'s settings');
  assert.equal(get(p, keys.relation('vecscale_write', 'docs'), 'foreign_table').server, w);
  const upsertTable = get(p, keys.relation('vecscale', 'docs'), 'foreign_table');
  assert.deepEqual([upsertTable.server, upsertTable.options.schema_name, upsertTable.options.table_name], [w, 'vecscale', 'docs']);
  const upserts = [...p.values()].filter((o) => o.kind === 'function' && o.name === 'upsert_docs');
  assert.equal(upserts.length, 2, 'both upsert_docs overloads');
  for (const f of upserts) assert.match((f as { create: string }).create, /INSERT INTO "vecscale"\."docs" \(id, embedding, metadata\)/, 'upserts insert through the write server');
  // Sharded: public.<c>'s trigger writes to vecscale_remote.<c>, so both partitions on pod_text go to the secondary
  // (match_<c> reads the standbys over dblink).
  const parts = [...p.values()].filter((o) => o.kind === 'foreign_table' && o.partition !== undefined) as Array<Extract<DbObject, { kind: 'foreign_table' }>>;
  const onText = parts.filter((o) => o.name === 'chunks_p0of2').map((o) => `${o.schema} ${o.server}`).sort();
  assert.deepEqual(onText, [`vecscale_remote ${writeServerFor('pod_text')}`, `vecscale_write ${writeServerFor('pod_text')}`]);
  // pod_img: as before replicas.
  assert.equal(p.has(keys.relation('vecscale', 'images')), false, 'no upsert table without standbys');
  assert.equal(get(p, keys.relation('vecscale_write', 'images'), 'foreign_table').server, 'pod_img');
});

test('search_<c>: vecscale.read_from = secondary switches to the write servers, with the collection\'s own settings', () => {
  const p = primaryOf();
  const body = (name: string) => ([...p.values()].find((o) => o.kind === 'function' && o.name === name) as { create: string }).create;
  const docs = body('search_docs');
  assert.match(docs, /current_setting\('vecscale\.read_from', true\) OPERATOR\(pg_catalog\.=\) 'secondary'/);
  assert.ok(docs.includes(`servers := ARRAY['${writeServerFor('pod_text', DOCS_QUERY)}']`), 'fresh: the write server of its settings');
  assert.ok(docs.includes(`servers ${'pg_catalog.text[]'} := ARRAY['${docsReadServer(p)}']`) || docs.includes(`'${docsReadServer(p)}'`), 'by default: the read server');
  const chunks = body('search_chunks');
  assert.ok(chunks.includes(`servers := ARRAY['${writeServerFor('pod_text')}', 'pod_img']`), 'sharded: only the partitions of a secondary with standbys switch');
  assert.equal(body('search_images').includes('read_from'), false, 'no standbys: no switch');
});

test('plan: a topology without replicas plans exactly as before; adding one alters the read server and adds the write server', () => {
  const plain = topology();
  const plainPrimary = primaryOf(plain);
  assert.equal([...plainPrimary.values()].some((o) => o.kind === 'server' && 'target_session_attrs' in o.options), false);
  assert.equal([...plainPrimary.values()].some((o) => (o as { create?: string }).create?.includes('read_from')), false, 'no fresh switch anywhere');
  const empty = new Map([['primary', 'primary'], ...plain.secondaries.map((s) => [s.name, 'secondary'] as const)].map(([n, role]) => [n, {
    state: { database: n, role: role as 'primary' | 'secondary', objects: new Map() },
    facts: { database: n, currentUser: 'postgres', serverVersion: 150000, vectorSchema: undefined, nonEmpty: new Set<string>() },
  }]));
  const plan = buildPlan(withReplicas(), empty);
  const primarySteps = plan.databases.find((d) => d.database === 'primary')!.steps.map((s) => `${s.action} ${s.object}`);
  assert.ok(primarySteps.includes(`create server ${writeServerFor('pod_text')}`) && primarySteps.includes(`create server ${writeServerFor('pod_text', DOCS_QUERY)}`), `the write server is created: ${primarySteps.join('; ')}`);
  assert.ok(primarySteps.includes('create foreign table vecscale.docs'), `the upsert table is created: ${primarySteps.join('; ')}`);
});
