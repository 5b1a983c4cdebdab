/** `vecscale status`'s judging half, on hand-made readings: what is healthy, and each problem with its fix. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { indexName } from '../../src/desired/index.js';
import { libpqSettings, type RawPrimary, type RawSecondary, type RawStatus } from '../../src/status/read.js';
import { buildReport } from '../../src/status/report.js';
import { topology } from '../topologies.js';

const t = topology();
const docs = t.collections[0]!;
const images = t.collections[1]!;
if (docs.index.method === 'none' || images.index.method === 'none') throw new Error('fixture collections have indexes');
const settings = { cursor_tuple_fraction: '1', 'hnsw.ef_search': '100', 'hnsw.iterative_scan': 'relaxed_order', 'ivfflat.probes': '10' };

const pod = (table: string, index: RawSecondary['tables'][number]['indexes'][number] | null, over: Partial<RawSecondary> = {}): RawSecondary => ({
  version: '15.8',
  pgvector: '0.8.0',
  walLevel: 'logical',
  databaseSettings: {},
  wrapperRoleSettings: {},
  wrapperRoleOwn: {},
  databaseHazards: {},
  slots: [],
  replicas: [],
  tables: [{ table, reltuples: 10, heapBytes: 8192, tableBytes: 16384, lastAnalyze: null, indexes: index ? [index] : [], otherIndexes: {}, count: 10 }],
  relations: { [`vecs.${table}`]: ['id', 'vec', 'metadata'], [`vecscale.${table}`]: ['id', 'embedding', 'metadata'] },
  hiddenReplicas: 0,
  orphans: [],
  ...over,
});
const hnsw = { name: indexName(docs, docs.index), method: 'hnsw', opclass: 'vector_cosine_ops', options: {}, valid: true, bytes: 8192 };
const ivf = { name: indexName(images, images.index, 'images'), method: 'ivfflat', opclass: 'vector_l2_ops', options: { lists: '100' }, valid: true, bytes: 8192 };
const primary = (over: Partial<RawPrimary> = {}): RawPrimary => ({
  version: '15.8',
  serverSettings: { pod_text: settings, pod_img: settings },
  replicationRoles: {},
  foreignTables: [
    { schema: 'vecscale_remote', name: 'docs', server: 'pod_text', remote: 'vecscale.docs', remoteColumns: ['id', 'embedding', 'metadata'], secondary: 'pod_text', managed: true, error: null },
    { schema: 'vecscale_write', name: 'docs', server: 'pod_text', remote: 'vecs.docs', remoteColumns: ['id', 'vec', 'metadata'], secondary: 'pod_text', managed: true, error: null },
    { schema: 'vecscale_remote', name: 'images', server: 'pod_img', remote: 'vecscale.images', remoteColumns: ['id', 'embedding', 'metadata'], secondary: 'pod_img', managed: true, error: null },
    { schema: 'vecscale_write', name: 'images', server: 'pod_img', remote: 'vecs.images', remoteColumns: ['id', 'vec', 'metadata'], secondary: 'pod_img', managed: true, error: null },
  ],
  apiObjects: ['docs', 'images', 'match_docs()', 'match_images()'],
  ...over,
});
const raw = (over: { primary?: RawStatus['primary']; text?: RawSecondary; img?: RawSecondary } = {}): RawStatus => ({
  primary: over.primary ?? { ok: true, value: primary() },
  secondaries: new Map([
    ['pod_text', { ok: true, value: over.text ?? pod('docs', hnsw) }],
    ['pod_img', { ok: true, value: over.img ?? pod('images', ivf) }],
  ]),
});
const lines = (r: ReturnType<typeof buildReport>) => r.problems.map((p) => `${p.database} | ${p.object} | ${p.message} | ${p.fix}`);

test('as applied: healthy, pgvector defaults filled in for parameters PostgreSQL does not store', () => {
  const r = buildReport(t, raw());
  assert.deepEqual(lines(r), []);
  assert.equal(r.healthy, true);
  assert.deepEqual(r.collections.map((c) => [c.name, c.rows, c.rowsExact]), [['docs', 10, true], ['images', 10, true]]);
  assert.deepEqual(r.collections[0]!.parts[0]!.index?.params, { m: '16', ef_construction: '64' });
});

test('an index with other parameters, an INVALID one, a missing one, one where the topology wants none', () => {
  assert.match(lines(buildReport(t, raw({ text: pod('docs', { ...hnsw, options: { m: '32' } }) })))[0]!, /is hnsw \(m 32, ef_construction 64; vector_cosine_ops\); the topology wants hnsw \(ef_construction 64, m 16/);
  assert.match(lines(buildReport(t, raw({ text: pod('docs', { ...hnsw, valid: false }) })))[0]!, /INVALID .*\| vecscale apply drops and builds it again/);
  assert.match(lines(buildReport(t, raw({ text: pod('docs', null) })))[0]!, /^pod_text \| collection docs \| vecs\.docs has no vector index/);
  const none = topology({ collections: [{ ...docs, index: { method: 'none' } }, images] });
  assert.match(lines(buildReport(none, raw()))[0]!, /exists; the topology wants no index/);
});

test('an inactive slot: its drop statement, or for a move\'s slot, apply; an active one is fine', () => {
  const slots: RawSecondary['slots'] = [
    { name: "odd'name", type: 'logical', active: false, retainedBytes: 32 * 1024 * 1024 },
    { name: 'vecscale_mv_0123456789_abcdef0123', type: 'logical', active: false, retainedBytes: null },
    { name: 'busy', type: 'logical', active: true, retainedBytes: 0 },
  ];
  const l = lines(buildReport(t, raw({ text: pod('docs', hnsw, { slots }) })));
  assert.equal(l.length, 2, l.join('\n'));
  assert.match(l[0]!, /holding 32 MB of WAL.*pg_drop_replication_slot\('odd''name'\)/);
  assert.match(l[1]!, /no WAL reserved yet.*it is a move's/);
});

test('a refused login is one problem per server; a relation gone on the pod one per table; not-tried servers none', () => {
  const refused = 'could not connect to server "pod_text": FATAL:  password authentication failed for user "vecscale_fdw"';
  const p = primary({
    foreignTables: primary().foreignTables.map((f) => (f.server === 'pod_text' ? { ...f, error: refused } : f)),
  });
  const l = lines(buildReport(t, raw({ primary: { ok: true, value: p }, img: pod('images', ivf, { relations: { 'vecs.images': ['id', 'vec', 'metadata'] } }) })));
  assert.equal(l.length, 2, l.join('\n'));
  assert.match(l[0]!, /^primary \| server pod_text \| a login through server pod_text failed \(vecscale_remote\.docs, vecscale_write\.docs read through it\).*\| .*sets it again on both sides/);
  assert.match(l[1]!, /^primary \| vecscale_remote\.images \| .*reads vecscale\.images, which is gone on the secondary/);
});

test('an unreachable pod: one problem, its parts unknown, the other pod still judged; the primary down: wrappers unknown', () => {
  const r = buildReport(t, { ...raw(), secondaries: new Map([['pod_text', { ok: false, error: 'cannot connect to secondary pod_text (…): connection refused' }], ['pod_img', { ok: true, value: pod('images', ivf) }]]) });
  assert.deepEqual(lines(r).map((x) => x.split(' | ')[0]), ['pod_text']);
  assert.equal(r.collections[0]!.rows, null);
  assert.equal(r.collections[1]!.rows, 10);
  const down = buildReport(t, raw({ primary: { ok: false, error: 'cannot connect to the primary' } }));
  assert.deepEqual(lines(down).map((x) => x.split(' | ').slice(0, 2).join(' | ')), ['primary | database']);
});

test('a column gone on the pod, a write foreign table dropped on the primary, a physical slot seen from two databases of one cluster', () => {
  const renamed = pod('docs', hnsw, { relations: { 'vecs.docs': ['id', 'vec', 'metadata'], 'vecscale.docs': ['id', 'embedding', 'metadata_x'] } });
  assert.match(lines(buildReport(t, raw({ text: renamed })))[0]!, /^primary \| vecscale_remote\.docs \| .*reads vecscale\.docs, whose column metadata is gone on the secondary/);
  const dropped = primary({ foreignTables: primary().foreignTables.filter((f) => !(f.schema === 'vecscale_write' && f.name === 'images')) });
  assert.match(lines(buildReport(t, raw({ primary: { ok: true, value: dropped } })))[0]!, /^primary \| collection images \| the foreign table vecscale_write\.images is missing/);
  const shared = topology({ secondaries: [t.secondaries[0]!, { ...t.secondaries[1]!, url: t.secondaries[0]!.url.replace('/vectors', '/other') }] });
  const phys: RawSecondary['slots'] = [{ name: 'backup', type: 'physical', active: false, retainedBytes: 0 }];
  const l = lines(buildReport(shared, raw({ text: pod('docs', hnsw, { slots: phys }), img: pod('images', ivf, { slots: phys }) })));
  assert.equal(l.filter((x) => x.includes('slot backup')).length, 1, l.join('\n'));
});

test('standbys whose state the role may not see are unknown, not missing', () => {
  const withReplica = topology({ secondaries: t.secondaries.map((s, i) => (i === 0 ? { ...s, replicas: ['postgres://x@10.0.0.9:5433/vectors'] } : s)) });
  const hidden = pod('docs', hnsw, { replicas: [{ name: 'walreceiver', address: null, state: null as unknown as string, replayLagSeconds: null, replayLagBytes: null }], hiddenReplicas: 1 });
  const upsert = { schema: 'vecscale', name: 'docs', server: 'pod_text_w1', remote: 'vecscale.docs', remoteColumns: ['id', 'embedding', 'metadata'], secondary: 'pod_text', managed: true, error: null };
  const p = primary({ foreignTables: [...primary().foreignTables, upsert] });
  assert.deepEqual(lines(buildReport(withReplica, raw({ primary: { ok: true, value: p }, text: hidden }))), []);
  assert.match(lines(buildReport(withReplica, raw({ text: hidden })))[0]!, /the foreign table vecscale\.docs is missing on the primary/, 'with standbys, upserts go through vecscale.<c>');
});

test('server settings that differ from the topology; fewer standbys streaming than declared', () => {
  const p = primary({ serverSettings: { pod_text: { ...settings, 'hnsw.ef_search': '40' }, pod_img: settings } });
  assert.match(lines(buildReport(t, raw({ primary: { ok: true, value: p } })))[0]!, /hnsw\.ef_search 40 \(wanted 100\).*\| vecscale apply sets them/);
  const withReplica = topology({ secondaries: t.secondaries.map((s, i) => (i === 0 ? { ...s, replicas: ['postgres://x@10.0.0.9:5433/vectors'] } : s)) });
  assert.match(lines(buildReport(withReplica, raw()))[0]!, /^pod_text \| replicas \| 1 standby declared, 0 streaming/);
});

test('libpq options as vecscale writes them', () => {
  assert.deepEqual(libpqSettings('-c cursor_tuple_fraction=1 -c hnsw.ef_search=40'), { cursor_tuple_fraction: '1', 'hnsw.ef_search': '40' });
  assert.deepEqual(libpqSettings(undefined), {});
});

test('a vecs table vecscale made that the topology no longer places there: named, with what apply does and what it needs', () => {
  const orphans = [
    { table: 'old', rows: 1200, rowsExact: false, protected: false },
    { table: 'kept', rows: 5, rowsExact: true, protected: true },
    { table: 'blank', rows: 0, rowsExact: true, protected: false },
    { table: 'kept_empty', rows: 0, rowsExact: true, protected: true },
    { table: 'docs_p0of2', rows: null, rowsExact: false, protected: false },
  ];
  const r = buildReport(t, raw({ img: pod('images', ivf, { orphans }) }));
  assert.equal(r.healthy, false, 'an orphaned table needs attention');
  assert.deepEqual(lines(r), [
    'pod_img | table vecs.old | vecs.old (made by vecscale; about 1200 rows) belongs to collection old, which is not in the topology: apply drops it | to keep it, put collection old back in the topology; to drop it, vecscale apply --allow-destructive old (without it, a table that holds rows blocks every plan)',
    'pod_img | table vecs.kept | vecs.kept (made by vecscale, protected; 5 rows) belongs to collection kept, which is not in the topology: apply would drop it, and refuses (it is protected), so every plan is blocked | to keep it, put collection kept back in the topology; to drop it, put it back with protect: false, apply, then remove it',
    'pod_img | table vecs.blank | vecs.blank (made by vecscale; empty) belongs to collection blank, which is not in the topology: apply drops it | to keep it, put collection blank back in the topology; otherwise vecscale apply drops it (it is empty: no flag needed)',
    'pod_img | table vecs.kept_empty | vecs.kept_empty (made by vecscale, protected; empty) belongs to collection kept_empty, which is not in the topology: apply drops it | to keep it, put collection kept_empty back in the topology; otherwise vecscale apply drops it (it is empty: no flag needed)',
    'pod_img | collection docs | vecs.docs_p0of2 (made by vecscale; rows unknown) is still on pod_img; the topology places collection docs on pod_text | vecscale plan shows what apply does with it (a move of its rows, or a drop)',
  ]);
});

test('foreign tables vecscale made that the topology no longer implies: named per collection, never "creates it again"', () => {
  const ft = (schema: string, name: string, error: string | null, managed = true) =>
    ({ schema, name, server: 'pod_img', remote: `${schema === 'vecscale_write' ? 'vecs' : 'vecscale'}.${name}`, remoteColumns: ['id'], secondary: 'pod_img', managed, error });
  const gone = 'relation "vecscale.old" does not exist';
  const p = primary({
    foreignTables: [
      ...primary().foreignTables,
      // A collection taken out whose pod table was dropped by hand: its wrappers fail.
      ft('vecscale_remote', 'old', gone),
      ft('vecscale_write', 'old', gone),
      // An earlier layout of docs (sharded in two, now placed on pod_text).
      ft('vecscale_remote', 'docs_p1of2', null),
      // Not vecscale's: left alone, as plan leaves it.
      ft('vecscale_remote', 'mine', null, false),
    ],
  });
  const img = pod('images', ivf, { relations: { ...pod('images', ivf).relations, 'vecscale.docs_p1of2': ['id'], 'vecscale.mine': ['id'] } });
  const r = buildReport(t, raw({ primary: { ok: true, value: p }, img }));
  assert.deepEqual(lines(r), [
    'primary | collection old | the foreign tables vecscale_remote.old and vecscale_write.old on the primary belong to collection old, which is not in the topology | to keep it, put collection old back in the topology; otherwise vecscale apply drops them, with what else collection old left (vecscale plan lists it)',
    'primary | collection docs | the foreign table vecscale_remote.docs_p1of2 on the primary is from an earlier layout of collection docs; the topology places it on pod_text | vecscale plan shows what apply does with it (a move of its rows, then a drop)',
  ]);
});

test('settings that break the wrappers\' sessions: the wrapper role\'s own (apply resets them), database defaults that lose upserts or refuse writes', () => {
  const fdwUser = t.secondaries[0]!.fdwUser;
  const text = pod('docs', hnsw, {
    wrapperRoleOwn: { statement_timeout: '50ms', default_transaction_read_only: 'on', 'app.token': 's3cr3t' },
    databaseHazards: { session_replication_role: 'replica', default_transaction_read_only: 'off' },
  });
  const l = lines(buildReport(t, raw({ text })));
  assert.deepEqual(l, [
    `pod_text | role ${fdwUser} | the wrapper role ${fdwUser} has settings of its own (statement_timeout=50ms, default_transaction_read_only=on, app.token), in force in every session the wrappers open on pod_text: statement_timeout = 50ms: a query through the primary that runs longer fails; default_transaction_read_only = on: every write through the primary fails | vecscale apply resets them (ALTER ROLE ${fdwUser} … RESET ALL)`,
    "pod_text | setting session_replication_role | pod_text's database default session_replication_role = replica: triggers do not fire, so upserts through the primary (upsert_<c>, through the secondary's vecscale.<c> view and its triggers) are lost without an error | on pod_text: ALTER DATABASE … RESET session_replication_role (a database default is its owner's: vecscale does not change it)",
  ]);
  assert.ok(!l.join('\n').includes('s3cr3t'), 'the value of a setting whose effect is not named is not shown');
  const fine = pod('docs', hnsw, { databaseHazards: { session_replication_role: 'origin', default_transaction_read_only: 'off' } });
  assert.deepEqual(lines(buildReport(t, raw({ text: fine }))), [], 'harmless values are not problems');
});

test('session_replication_role read in the wrappers\' sessions: named when neither a database default nor the wrapper role explains it', () => {
  const p = primary({ replicationRoles: { pod_text: 'replica', pod_img: 'origin' } });
  assert.deepEqual(lines(buildReport(t, raw({ primary: { ok: true, value: p } }))), [
    "primary | server pod_text | the wrappers' sessions through server pod_text on pod_text run with session_replication_role = replica: triggers do not fire, so upserts through the primary (upsert_<c>, through the secondary's vecscale.<c> view and its triggers) are lost without an error | set it back to origin where it is set on pod_text (postgresql.conf or ALTER SYSTEM: neither the database's defaults nor the wrapper role's set it)",
  ]);
  const text = pod('docs', hnsw, { databaseHazards: { session_replication_role: 'replica' } });
  const l = lines(buildReport(t, raw({ primary: { ok: true, value: p }, text })));
  assert.equal(l.length, 1, l.join('\n'));
  assert.match(l[0]!, /^pod_text \| setting session_replication_role \|/, 'named once, where it is set');
});
