/** The metadata indexes of `text:` and `access:` on the secondary: desired objects, names, SQL, diff and plan. Pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccessSpec, TextSearchSpec } from '../../src/config/types.js';
import { ownerIndexName, textIndexName } from '../../src/desired/collection.js';
import { buildDesired } from '../../src/desired/index.js';
import { diff } from '../../src/diff.js';
import { toState } from '../../src/introspect/map.js';
import type { RawCatalog } from '../../src/introspect/catalog.js';
import { type DbObject, type IndexObject, keys, type LiveDatabase } from '../../src/model/state.js';
import { documentExpression, ownerExpression } from '../../src/model/text-search.js';
import { buildPlan } from '../../src/plan/planner.js';
import { converged, ownersOf } from '../live-states.js';
import { collection, sharded, topology } from '../topologies.js';

const text: TextSearchSpec = { source: 'content', language: 'english' };
const access: AccessSpec = { ownerKey: 'owner_id', claim: 'sub' };

/** docs placed on pod_text, images sharded over both pods in 4 partitions; both with text: and access:. */
const withIndexes = (over: { text?: TextSearchSpec | undefined; access?: AccessSpec | undefined } = { text, access }) =>
  topology({
    apiRoles: ['anon'],
    collections: [
      collection('docs', 'pod_text', { dimension: 384, ...over }),
      sharded('images', ['pod_text', 'pod_img'], 4, { dimension: 512, ...over }),
    ],
  });

const desiredOf = (t = withIndexes()) => buildDesired(t, { vectorSchema: 'public', dblinkSchema: 'vecscale', owners: ownersOf(t) });
const indexesOf = (objects: Iterable<DbObject>): IndexObject[] => [...objects].filter((o): o is IndexObject => o.kind === 'index');

test('every vecs table of a collection with text: and access: gets a GIN and a btree index over the query path’s expressions', () => {
  const desired = desiredOf();
  const tables = new Map([
    ['pod_text', ['docs', 'images_p0of4', 'images_p2of4']],
    ['pod_img', ['images_p1of4', 'images_p3of4']],
  ]);
  const names = new Set<string>();
  for (const [db, ts] of tables) {
    const objects = desired.find((d) => d.database === db)!.objects;
    for (const t of ts) {
      const gin = objects.get(keys.index('vecs', t, 'text'));
      const btree = objects.get(keys.index('vecs', t, 'owner'));
      assert.ok(gin?.kind === 'index' && btree?.kind === 'index', `both metadata indexes of ${db}/vecs.${t}`);
      assert.equal(gin.method, 'gin');
      assert.equal(gin.expression, documentExpression(text), 'exactly the expression full-text search uses');
      assert.equal(btree.method, 'btree');
      assert.equal(btree.expression, ownerExpression(access), 'exactly the expression owned-row reads use');
      assert.deepEqual(gin.dependsOn, [keys.relation('vecs', t)]);
      assert.ok(objects.get(keys.index('vecs', t))?.kind === 'index', `the vector index of ${t} is still there`);
      for (const i of [gin, btree]) {
        assert.ok(!i.name.startsWith('ix_vector'), `${i.name}: vecs must not take it for its vector index`);
        assert.ok(Buffer.byteLength(i.name) <= 63, `${i.name} fits NAMEDATALEN`);
        assert.ok(!names.has(i.name), `${i.name} is unique in vecs`);
        names.add(i.name);
      }
      assert.match(gin.name, /^ix_text_english_[0-9a-f]{7}$/);
      assert.match(btree.name, /^ix_owner_[0-9a-f]{7}$/);
    }
  }
  // The table itself is unchanged: vecs' three columns.
  const table = desired.find((d) => d.database === 'pod_text')!.objects.get(keys.relation('vecs', 'docs'));
  assert.deepEqual(table?.kind === 'table' && table.columns.map((c) => c.name), ['id', 'vec', 'metadata']);
});

test('metadata index names are stable, and change with what defines them', () => {
  assert.equal(textIndexName('docs', text), textIndexName('docs', { ...text }), 'stable');
  assert.notEqual(textIndexName('docs', text), textIndexName('docs', { ...text, language: 'german' }));
  assert.notEqual(textIndexName('docs', text), textIndexName('docs', { ...text, source: 'body' }));
  assert.notEqual(textIndexName('docs', text), textIndexName('docs2', text));
  assert.notEqual(ownerIndexName('docs', access), ownerIndexName('docs', { ...access, ownerKey: 'tenant' }));
  assert.equal(ownerIndexName('docs', access), ownerIndexName('docs', { ...access, claim: 'email' }), 'the claim is not indexed');
  assert.ok(Buffer.byteLength(textIndexName('docs', { ...text, language: 'portuguese' })) <= 63, 'the longest language fits');
});

test('exact SQL: on a new table, built in its transaction; the marker comment; nothing without text: or access:', () => {
  const plan = buildPlan(withIndexes(), new Map([...converged(topology())].map(([k, v]) => [k, { ...v, state: { ...v.state, objects: new Map() } }])));
  const steps = plan.databases.find((d) => d.database === 'pod_text')!.steps;
  const gin = steps.find((s) => s.id === `pod_text/${keys.index('vecs', 'docs', 'text')}`);
  const btree = steps.find((s) => s.id === `pod_text/${keys.index('vecs', 'docs', 'owner')}`);
  const g = textIndexName('docs', text);
  const b = ownerIndexName('docs', access);
  assert.deepEqual(gin?.sql, [
    `CREATE INDEX "${g}" ON "vecs"."docs" USING gin (pg_catalog.to_tsvector('pg_catalog.english'::pg_catalog.regconfig, metadata OPERATOR(pg_catalog.->>) 'content'))`,
    `COMMENT ON INDEX "vecs"."${g}" IS 'managed by vecscale'`,
  ]);
  assert.equal(gin.transactional, true, 'a new table: built in the transaction that creates it');
  assert.deepEqual(btree?.sql, [
    `CREATE INDEX "${b}" ON "vecs"."docs" USING btree ((metadata OPERATOR(pg_catalog.->>) 'owner_id'))`,
    `COMMENT ON INDEX "vecs"."${b}" IS 'managed by vecscale'`,
  ]);
  assert.match(gin.reason, /^full-text index of collection docs/);
  assert.match(btree.reason, /^owner index of collection docs/);
  const none = indexesOf(desiredOf(topology()).flatMap((d) => [...d.objects.values()]));
  assert.ok(none.every((i) => i.method === 'hnsw' || i.method === 'ivfflat'), 'no metadata index without text: or access:');
});

test('converged: no changes; a live table gaining text: builds CONCURRENTLY, with no memory settings and no build note', () => {
  const t = withIndexes();
  const live = converged(t);
  assert.deepEqual(buildPlan(t, live).databases.map((d) => d.steps.length), [0, 0, 0], 'converged');
  const before = converged(withIndexes({}));
  const big: Map<string, LiveDatabase> = new Map([...before].map(([k, v]) => [k, {
    ...v,
    facts: { ...v.facts, maintenanceWorkMem: 64 * 1024 * 1024, rowEstimates: new Map([[keys.relation('vecs', 'docs'), { rows: 5_000_000 }]]),
      buildLimits: { maxParallelMaintenanceWorkers: 2, maxParallelWorkers: 8, maxWorkerProcesses: 8, sharedBuffers: 1024 ** 3 } },
  }]));
  const plan = buildPlan(t, big);
  // On the primary, the hybrid and owned-rows functions and views change too: the pods' steps are the indexes.
  const steps = plan.databases.filter((d) => d.database !== 'primary').flatMap((d) => d.steps);
  assert.equal(steps.length, 10, 'two indexes on each of the five tables, nothing else on the secondaries');
  assert.ok(steps.every((s) => s.kind === 'index' && s.action === 'create' && !s.transactional && s.risk === 'safe'), 'concurrent creates');
  const gin = steps.find((s) => s.id === `pod_text/${keys.index('vecs', 'docs', 'text')}`)!;
  assert.deepEqual(gin.sql.map((x) => x.split(' ').slice(0, 4).join(' ')), [
    `DROP INDEX CONCURRENTLY IF`,
    `CREATE INDEX CONCURRENTLY "${textIndexName('docs', text)}"`,
    'COMMENT ON INDEX "vecs"."' + textIndexName('docs', text) + '"',
  ]);
  assert.ok(!plan.notes.some((n) => n.object.includes('ix_text_') || n.object.includes('ix_owner_')), `no build note: ${JSON.stringify(plan.notes)}`);
});

test('a new language replaces the index concurrently (new before old); removing text: drops it, not destructive', () => {
  const live = converged(withIndexes());
  const german = buildPlan(withIndexes({ text: { ...text, language: 'german' }, access }), live);
  const steps = german.databases.filter((d) => d.database !== 'primary').flatMap((d) => d.steps);
  assert.equal(steps.length, 5, `one replace per table: ${steps.map((s) => s.id).join(', ')}`);
  const s = steps.find((x) => x.id === `pod_text/${keys.index('vecs', 'docs', 'text')}`)!;
  assert.equal(s.action, 'replace');
  assert.equal(s.transactional, false);
  assert.match(s.reason, /language or source key changed/);
  assert.match(s.sql[1]!, new RegExp(`^CREATE INDEX CONCURRENTLY "${textIndexName('docs', { ...text, language: 'german' })}" .*'pg_catalog\\.german'`));
  assert.equal(s.sql.at(-1), `DROP INDEX CONCURRENTLY "vecs"."${textIndexName('docs', text)}" RESTRICT`);

  const gone = buildPlan(withIndexes({ access }), live);
  const drops = gone.databases.filter((d) => d.database !== 'primary').flatMap((d) => d.steps);
  assert.equal(drops.length, 5, 'one drop per table');
  assert.ok(drops.every((d) => d.action === 'drop' && d.kind === 'index' && d.risk !== 'destructive'), 'drops lose no data');
  assert.equal(gone.blockers.length, 0, 'no --allow-destructive needed');
  assert.deepEqual(drops.find((d) => d.id.startsWith('pod_text/index:vecs.docs#'))?.drop, [`DROP INDEX "vecs"."${textIndexName('docs', text)}" RESTRICT`]);
});

test('an INVALID metadata index (interrupted build) is rebuilt under its name: dropped first', () => {
  const t = withIndexes();
  const live = converged(t);
  const pod = live.get('pod_text')!;
  const key = keys.index('vecs', 'docs', 'owner');
  const objects = new Map(pod.state.objects);
  objects.set(key, { ...(objects.get(key) as IndexObject), valid: false });
  live.set('pod_text', { ...pod, state: { ...pod.state, objects } });
  const steps = buildPlan(t, live).databases.flatMap((d) => d.steps);
  assert.equal(steps.length, 1);
  const name = ownerIndexName('docs', access);
  assert.equal(steps[0]!.action, 'replace');
  assert.match(steps[0]!.reason, /index is invalid/);
  assert.deepEqual(steps[0]!.sql.slice(0, 2).map((x) => x.split(' (')[0]), [`DROP INDEX CONCURRENTLY "vecs"."${name}" RESTRICT`, `CREATE INDEX CONCURRENTLY "${name}" ON "vecs"."docs" USING btree`]);
});

test('diff: a metadata index compares by name, method and validity only', () => {
  const desired = desiredOf().find((d) => d.database === 'pod_text')!;
  const key = keys.index('vecs', 'docs', 'text');
  const d = desired.objects.get(key) as IndexObject;
  const live = { ...desired, objects: new Map([[key, { ...d, expression: undefined, opclass: 'tsvector_ops' } as DbObject]]) };
  assert.deepEqual(diff(live, { ...desired, objects: new Map([[key, d]]) }), [], 'the opclass read back and the missing expression are not compared');
  const btree = { ...live, objects: new Map([[key, { ...d, method: 'btree' } as DbObject]]) };
  const changes = diff(btree, { ...desired, objects: new Map([[key, d]]) });
  assert.deepEqual(changes.map((c) => c.op === 'alter' && Object.keys(c.fields)), [['method']]);
});

test("introspection maps vecscale's marked gin/btree indexes to the metadata keys; a user's index stays out", () => {
  const none = { partition_key: null, partition_bound: null, partition_parent: null, partitions: null, reltuples: -1, relation_bytes: 0 };
  const idx = (relname: string, amname: string, comment: string | null, indisvalid = true) =>
    ({ indrelid: 1, relname, amname, opcname: amname === 'gin' ? 'tsvector_ops' : 'text_ops', column: null, reloptions: null, indisvalid, comment });
  const raw = {
    facts: { current_user: 'postgres', server_version_num: '150018', superuser: true, can_quiet_log: true, owns_database: true, maintenance_work_mem: 67108864,
      max_parallel_maintenance_workers: 2, max_parallel_workers: 8, max_worker_processes: 8, shared_buffers: 134217728 },
    defaultAcls: [], grantees: [], extensions: [], schemas: [],
    relations: [{ oid: 1, nspname: 'vecs', relname: 'docs', relkind: 'r', comment: 'managed by vecscale', viewdef_md5: null, reloptions: null, owner: 'postgres', acl: [], write_trigger: null, ...none }],
    functions: [], columns: [], primaryKeys: [],
    indexes: [
      idx('ix_text_english_1234567', 'gin', 'managed by vecscale', false),
      idx('ix_owner_7654321', 'btree', 'managed by vecscale'),
      idx('docs_body_fts', 'gin', null),
      idx('ix_text_mine', 'gin', null),
      idx('docs_pkey', 'btree', null),
    ],
    foreignTables: [], servers: [], userMappings: [], roles: [], privileges: [], dependants: [], databaseSettings: [], probes: [],
  } as unknown as RawCatalog;
  const { state } = toState('pod_text', 'secondary', raw);
  const found = indexesOf(state.objects.values()).map((i) => `${i.key} ${i.name} ${i.method} ${i.valid}`);
  assert.deepEqual(found, [
    'index:vecs.docs#owner ix_owner_7654321 btree true',
    'index:vecs.docs#text ix_text_english_1234567 gin false',
  ]);
});
