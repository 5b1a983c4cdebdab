import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RawCatalog } from '../../src/introspect/catalog.js';
import { toState } from '../../src/introspect/map.js';

const noPartition = { partition_key: null, partition_bound: null, partition_parent: null, partitions: null, reltuples: -1, relation_bytes: 0 };

const raw: RawCatalog = {
  facts: { current_user: 'postgres', server_version_num: '150018', superuser: true, can_quiet_log: true, owns_database: true, maintenance_work_mem: 67108864,
    max_parallel_maintenance_workers: 2, max_parallel_workers: 8, max_worker_processes: 8, shared_buffers: 134217728 },
  // Supabase's default privileges: everything postgres creates in public is granted to the API roles.
  defaultAcls: [
    { objtype: 'r', schema: 'public', acl: [['anon', 'SELECT', false], ['anon', 'INSERT', false], ['service_role', 'SELECT', true]] },
    { objtype: 'f', schema: null, acl: [['public', 'EXECUTE', false], ['authenticated', 'EXECUTE', false]] },
    { objtype: 'T', schema: null, acl: [['public', 'USAGE', false]] },
  ],
  grantees: [{ rolname: 'anon', uses_vector_schema: true }, { rolname: 'authenticated', uses_vector_schema: false }],
  extensions: [{ extname: 'vector', nspname: 'extensions', grants: [] }],
  schemas: [{ nspname: 'vecs', comment: null, owner: 'postgres', acl: [['vecscale_fdw', 'USAGE', false]] }],
  relations: [
    { oid: 1, nspname: 'vecs', relname: 'docs', relkind: 'r', comment: 'managed by vecscale', viewdef_md5: null, reloptions: null, owner: 'postgres', acl: [], write_trigger: null, ...noPartition, main_bytes: 8192 },
    { oid: 2, nspname: 'public', relname: 'docs', relkind: 'v', comment: 'managed by vecscale; definition md5 abc', viewdef_md5: 'def', reloptions: ['security_invoker=true'], owner: 'postgres', acl: [['anon', 'SELECT', false], ['service_role', 'UPDATE', true]], write_trigger: 'vecscale.write_docs', ...noPartition },
    { oid: 3, nspname: 'vecscale_remote', relname: 'docs', relkind: 'f', comment: null, viewdef_md5: null, reloptions: null, owner: 'postgres', acl: [], write_trigger: null, ...noPartition },
    { oid: 4, nspname: 'vecscale_remote', relname: 'img', relkind: 'p', comment: null, viewdef_md5: null, reloptions: null, owner: 'postgres', acl: [], write_trigger: null, ...noPartition, partition_key: 'HASH (id)', partitions: ['vecscale_remote.img_p1of2', 'vecscale_remote.img_p0of2'] },
    {
      oid: 5, nspname: 'vecscale_remote', relname: 'img_p1of2', relkind: 'f', comment: null, viewdef_md5: null, reloptions: null, owner: 'postgres', acl: [], write_trigger: null,
      partition_key: null, partition_bound: 'FOR VALUES WITH (modulus 2, remainder 1)', partition_parent: 'vecscale_remote.img', partitions: null, reltuples: -1, relation_bytes: 0,
    },
  ],
  functions: [
    { nspname: 'public', proname: 'match_docs', signature: 'public.match_docs(extensions.vector,integer,jsonb)', body_md5: 'b1', comment: 'managed by vecscale; definition md5 d1', acl: [['anon', 'EXECUTE', false]], prosecdef: false, proconfig: ['search_path=pg_catalog, pg_temp'], owner: 'postgres' },
    { nspname: 'public', proname: 'upsert_docs', signature: 'public.upsert_docs(jsonb)', body_md5: 'b2', comment: null, acl: [['public', 'EXECUTE', false]], prosecdef: true, proconfig: [], owner: 'app' },
  ],
  columns: [
    { attrelid: 1, attname: 'id', type: 'character varying', attnotnull: true, default: null, attfdwoptions: null, acl: [] },
    { attrelid: 1, attname: 'vec', type: 'extensions.vector(3)', attnotnull: true, default: null, attfdwoptions: null, acl: [] },
    { attrelid: 3, attname: 'embedding', type: 'extensions.vector(3)', attnotnull: false, default: null, attfdwoptions: ['column_name=vec'], acl: [['anon', 'UPDATE', false]] },
  ],
  primaryKeys: [{ conrelid: 1, columns: ['id'] }],
  indexes: [
    { indrelid: 1, relname: 'ix_vector_cosine_ops_hnsw_m16_efc64_zzzzzzz', amname: 'hnsw', opcname: 'vector_cosine_ops', column: 'vec', reloptions: ['m=16', 'ef_construction=64'], indisvalid: true, comment: null },
    { indrelid: 1, relname: 'ix_vector_cosine_ops_hnsw_m8_efc32_aaaaaaa', amname: 'hnsw', opcname: 'vector_cosine_ops', column: 'vec', reloptions: ['m=8', 'ef_construction=32'], indisvalid: false, comment: 'managed by vecscale' },
  ],
  foreignTables: [
    { ftrelid: 3, srvname: 'pod_a', ftoptions: ['schema_name=public', 'table_name=docs'] },
    { ftrelid: 5, srvname: 'pod_b', ftoptions: ['schema_name=vecs', 'table_name=img_p1of2'] },
  ],
  servers: [{ srvname: 'pod_a', fdwname: 'postgres_fdw', srvoptions: ['host=h', 'options=-c a=b'], comment: 'managed by vecscale', owner: 'postgres', acl: [] }],
  userMappings: [{ srvname: 'pod_a', usename: 'postgres', umoptions: ['user=app', 'password=hunter2=x', 'sslpassword=s3cret'] }],
  roles: [],
  privileges: [],
  dependants: [],
  databaseSettings: [],
  probes: [],
};

test('toState maps catalog rows into the model, absorbing the catalog quirks', () => {
  const { state, facts } = toState('pod_a', 'secondary', raw);
  const get = (k: string) => state.objects.get(k);
  // format_type() qualifies pgvector's type when its schema is not on search_path: the model does not.
  const table = get('relation:vecs.docs');
  assert.equal(table?.kind === 'table' && table.columns[1]?.type, 'vector(3)');
  assert.equal(table?.kind === 'table' && table.ordinary, true);
  // The marker with a recorded digest: managed; the digest differs from the live one, so the view was edited.
  const view = get('relation:public.docs');
  assert.ok(view?.kind === 'view' && view.managed && !view.definitionIntact);
  // ACLs: the owner's own privileges never listed; WITH GRANT OPTION as `*`; a column's own privilege as PRIV(col).
  assert.deepEqual(view?.kind === 'view' && [view.options, view.acl, view.writeTrigger], [['security_invoker=true'], { anon: ['SELECT'], service_role: ['UPDATE*'] }, 'vecscale.write_docs']);
  const ft = get('relation:vecscale_remote.docs');
  assert.deepEqual(ft?.kind === 'foreign_table' && ft.columnOptions, { embedding: ['column_name=vec'] });
  assert.deepEqual(ft?.kind === 'foreign_table' && ft.acl, { anon: ['UPDATE(embedding)'] });
  assert.deepEqual(get('schema:vecs')?.kind === 'schema' && (get('schema:vecs') as { acl?: unknown }).acl, { vecscale_fdw: ['USAGE'] });
  // One vector index per table: vecscale's own (the marked one) wins over the other.
  const index = get('index:vecs.docs');
  assert.deepEqual(index?.kind === 'index' && [index.name, index.valid, index.params], ['ix_vector_cosine_ops_hnsw_m8_efc32_aaaaaaa', false, { ef_construction: '32', m: '8' }]);
  // Options split at the first '=': values may contain '='.
  const server = get('server:pod_a');
  assert.deepEqual(server?.kind === 'server' && server.options, { host: 'h', options: '-c a=b' });
  // Every mapping option but the user is fingerprinted: no secret leaves introspection.
  const mapping = get('user_mapping:pod_a:postgres');
  assert.ok(mapping?.kind === 'user_mapping' && mapping.managed);
  assert.equal(mapping?.kind === 'user_mapping' && mapping.options.user, 'app');
  assert.doesNotMatch(JSON.stringify([...state.objects.values()]), /hunter2|s3cret/);
  // A hash-partitioned table and a foreign partition: the key and the bound as pg_get_partkeydef/pg_get_expr print them.
  const parent = get('relation:vecscale_remote.img');
  assert.deepEqual(parent?.kind === 'table' && [parent.ordinary, parent.partitionKey, parent.partitions], [false, 'HASH (id)', ['vecscale_remote.img_p0of2', 'vecscale_remote.img_p1of2']]);
  const part = get('relation:vecscale_remote.img_p1of2');
  assert.deepEqual(part?.kind === 'foreign_table' && part.partition, { parent: 'vecscale_remote.img', modulus: 2, remainder: 1 });
  assert.equal(ft?.kind === 'foreign_table' && ft.partition, undefined);
  // upsert_<c>'s batch form upsert_<c>(rows jsonb) has a key of its own: the one overload vecscale makes.
  assert.equal(get('function:public.upsert_docs(rows)')?.kind, 'function');
  const fn = get('function:public.match_docs');
  assert.deepEqual(fn?.kind === 'function' && [fn.definitionMd5, fn.bodyMd5, fn.signature], ['d1', 'b1', 'public.match_docs(extensions.vector,integer,jsonb)']);
  // What drift of a function is judged on: its ACL, SECURITY DEFINER, settings and owner.
  assert.deepEqual(fn?.kind === 'function' && [fn.acl, fn.securityDefiner, fn.config, fn.owner], [{ anon: ['EXECUTE'] }, false, ['search_path=pg_catalog, pg_temp'], 'postgres']);
  const upsert = get('function:public.upsert_docs(rows)');
  assert.deepEqual(upsert?.kind === 'function' && [upsert.acl, upsert.securityDefiner, upsert.config, upsert.owner], [{ public: ['EXECUTE'] }, true, [], 'app']);
  const { defaultAcl, roles, ...rest } = facts;
  assert.deepEqual(rest, { database: 'pod_a', currentUser: 'postgres', serverVersion: 150018, vectorSchema: 'extensions', dblinkSchema: undefined, superuser: true, canQuietLog: true, ownsDatabase: true,
    // A table with pages may hold rows: asked only when a decision depends on it (src/introspect/rows.ts).
    nonEmpty: new Set(['relation:vecs.docs']), unprobed: new Set(['relation:vecs.docs']), uncounted: new Set(), maintenanceWorkMem: 67108864,
    buildLimits: { maxParallelMaintenanceWorkers: 2, maxParallelWorkers: 8, maxWorkerProcesses: 8, sharedBuffers: 134217728 }, rowEstimates: new Map(), moveMarks: new Map(), dependants: new Map(), readBy: new Map() });
  // Default privileges by type, global or per schema (types other than relations, functions and schemas are not vecscale's).
  assert.deepEqual(defaultAcl, {
    global: { f: { authenticated: ['EXECUTE'], public: ['EXECUTE'] } },
    inSchema: { public: { r: { anon: ['INSERT', 'SELECT'], service_role: ['SELECT*'] } } },
  });
  assert.deepEqual([...(roles ?? [])], [['anon', { usesVectorSchema: true }], ['authenticated', { usesVectorSchema: false }]]);
});
