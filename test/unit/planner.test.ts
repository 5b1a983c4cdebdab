import assert from 'node:assert/strict';
import { test } from 'node:test';
import { md5 } from '../../src/util/fingerprint.js';
import { buildDesired } from '../../src/desired/index.js';
import { keys, type DatabaseState, type DbObject, type LiveFacts } from '../../src/model/state.js';
import type { IndexBuild, IndexSpec } from '../../src/config/types.js';
import { hnswBuildBytes } from '../../src/plan/index-build.js';
import { buildPlan } from '../../src/plan/planner.js';
import { planToJson, renderPlan } from '../../src/render/plan.js';
import { Chalk } from 'chalk';
import { converged, emptyLive, facts, logicalReplication } from '../live-states.js';
import { collection, SECRET_A, SECRET_B, secondary, sharded, topology } from '../topologies.js';

const plain = new Chalk({ level: 0 });

test('from empty databases: every object, secondaries first, in phase order', () => {
  const plan = buildPlan(topology(), emptyLive());
  assert.deepEqual(plan.databases.map((d) => d.database), ['pod_text', 'pod_img', 'primary']);
  const text = plan.databases.find((d) => d.database === 'pod_text')!;
  assert.deepEqual(text.steps.map((s) => `${s.action} ${s.object}`), [
    'create role vecscale_fdw',
    'create schema vecs',
    'create schema vecscale',
    'create extension vector',
    'create table vecs.docs',
    `create index vecs.${(text.steps[5] as { object: string }).object.split(' ')[1]!.split('.')[1]} on docs`,
    // The INSTEAD OF INSERT trigger of the view the primary upserts through (INSERT … ON CONFLICT).
    'create function vecscale.upsert_row',
    'create view vecscale.docs',
    // hnsw.iterative_scan as the database's default, for clients that connect directly (the vecs client).
    'create database defaults',
    'create privileges of vecscale_fdw',
  ]);
  // The wrapper views live in vecscale's private schema on the secondary, not in an API schema.
  assert.ok(text.steps.some((s) => s.object === 'schema vecscale'));
  const primary = plan.databases.find((d) => d.database === 'primary')!;
  assert.deepEqual(primary.steps.map((s) => s.kind), [
    'schema', 'schema', 'schema', 'extension', 'extension', 'extension', 'server', 'server', 'user_mapping', 'user_mapping',
    'foreign_table', 'foreign_table', 'foreign_table', 'foreign_table',
    'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function', 'function',
    'view', 'view',
  ]);
  assert.deepEqual(plan.summary, { create: 49, change: 0, replace: 0, drop: 0 });
  assert.equal(plan.blockers.length, 0);
});

test('exact SQL on a secondary: the vecs table, its index named for vecs, the view with cast columns, every ACL exact', () => {
  const plan = buildPlan(topology(), emptyLive());
  const all = plan.databases.find((d) => d.database === 'pod_text')!.steps.flatMap((s) => s.sql);
  assert.deepEqual(all.slice(0, 2), [
    // The role's password travels as the SCRAM verifier vecscale computes, never as the password.
    `CREATE ROLE "vecscale_fdw" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD {{verifier:pod_text.fdw_password}}`,
    'COMMENT ON ROLE "vecscale_fdw" IS \'managed by vecscale; wrapper role of 127.0.0.1:5432/app\'',
  ]);
  assert.deepEqual(all.slice(-2), [
    'GRANT USAGE ON SCHEMA "public" TO "vecscale_fdw"',
    'GRANT USAGE ON SCHEMA "vecs" TO "vecscale_fdw"',
  ]);
  const sql = all.slice(2, -2);
  assert.deepEqual(sql, [
    'CREATE SCHEMA IF NOT EXISTS "vecs"',
    'CREATE SCHEMA IF NOT EXISTS "vecscale"',
    'COMMENT ON SCHEMA "vecscale" IS \'managed by vecscale\'',
    'GRANT USAGE ON SCHEMA "vecscale" TO "vecscale_fdw"',
    'CREATE EXTENSION IF NOT EXISTS "vector" WITH SCHEMA "public"',
    'CREATE TABLE "vecs"."docs" ("id" character varying NOT NULL, "vec" "public".vector(384) NOT NULL, "metadata" jsonb NOT NULL DEFAULT \'{}\'::jsonb, PRIMARY KEY ("id"))',
    'COMMENT ON TABLE "vecs"."docs" IS \'managed by vecscale\'',
    'GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "vecs"."docs" TO "vecscale_fdw"',
    sql[8]!,
    sql[9]!,
    sql[10]!,
    `COMMENT ON FUNCTION "vecscale"."upsert_row"() IS 'managed by vecscale; definition md5 af0b90d71727de7d7a3e0e220c83947d'`,
    'REVOKE ALL ON FUNCTION "vecscale"."upsert_row"() FROM PUBLIC',
    // The NULL-safe casts (src/sql/metadata-cast.ts): a value of the wrong JSON kind or range reads NULL.
    'CREATE VIEW "vecscale"."docs" WITH ("security_invoker" = true) AS SELECT id, vec AS embedding, metadata, ' +
      `CASE WHEN pg_catalog.jsonb_typeof((metadata -> 'url')) = 'string' THEN (metadata ->> 'url') END AS "url", ` +
      `CASE WHEN pg_catalog.jsonb_typeof((metadata -> 'year')) = 'number' THEN CASE ` +
      `WHEN pg_catalog.strpos((metadata ->> 'year'), '.') = 0 AND pg_catalog.length((metadata ->> 'year')) <= 9 THEN (metadata ->> 'year')::pg_catalog.int4 ` +
      `WHEN (metadata -> 'year')::pg_catalog.numeric BETWEEN -2147483648 AND 2147483647 ` +
      `AND (metadata -> 'year')::pg_catalog.numeric = pg_catalog.trunc((metadata -> 'year')::pg_catalog.numeric) THEN (metadata -> 'year')::pg_catalog.numeric::pg_catalog.int4 END END AS "year" FROM "vecs"."docs"`,
    // The primary's upserts insert into the view; its triggers buffer a statement's rows and run one INSERT … ON
    // CONFLICT on the table.
    'CREATE TRIGGER "vecscale_write" INSTEAD OF INSERT OR UPDATE OR DELETE ON "vecscale"."docs" FOR EACH ROW EXECUTE FUNCTION "vecscale"."upsert_row"()',
    'CREATE TRIGGER "vecscale_write_begin" BEFORE INSERT ON "vecscale"."docs" FOR EACH STATEMENT EXECUTE FUNCTION "vecscale"."upsert_row"()',
    'CREATE TRIGGER "vecscale_write_flush" AFTER INSERT ON "vecscale"."docs" FOR EACH STATEMENT EXECUTE FUNCTION "vecscale"."upsert_row"()',
    sql[17]!,
    'GRANT INSERT, SELECT ON TABLE "vecscale"."docs" TO "vecscale_fdw"',
    "DO $vecscale$ BEGIN EXECUTE pg_catalog.format('SELECT %L::%I.vector', '[1]', (SELECT n.nspname FROM pg_catalog.pg_extension e " +
      "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector')); " +
      "EXECUTE pg_catalog.format('ALTER DATABASE %I SET hnsw.iterative_scan = %L', pg_catalog.current_database(), 'relaxed_order'); END $vecscale$",
  ]);
  assert.match(sql[10]!, /^CREATE FUNCTION "vecscale"\."upsert_row"\(\) RETURNS pg_catalog\.trigger LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS \$vecscale\$.*ON CONFLICT \(id\) DO UPDATE/s);
  assert.equal(
    sql[17],
    `DO $vecscale$ DECLARE saved text := pg_catalog.current_setting('search_path'); digest text; BEGIN ` +
      `PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true); ` +
      `digest := pg_catalog.md5(pg_catalog.pg_get_viewdef('"vecscale"."docs"'::pg_catalog.regclass)); ` +
      `PERFORM pg_catalog.set_config('search_path', saved, true); ` +
      `EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', '"vecscale"."docs"', 'managed by vecscale; definition md5 ' || digest || '; query md5 ${md5(sql[13]!.slice(sql[13]!.indexOf(' AS SELECT ') + 4))}'); END $vecscale$`,
  );
  assert.match(sql[8]!, /^CREATE INDEX "ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}" ON "vecs"\."docs" USING hnsw \("vec" "public"\."vector_cosine_ops"\) WITH \(ef_construction = 64, m = 16\)$/);
  assert.match(sql[9]!, /^COMMENT ON INDEX "vecs"\."ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}" IS 'managed by vecscale'$/);
  const img = plan.databases.find((d) => d.database === 'pod_img')!.steps.flatMap((s) => s.sql);
  assert.ok(img.some((s) => /^CREATE INDEX "ix_vector_l2_ops_ivfflat_nl100_[0-9a-f]{7}" .* USING ivfflat \("vec" "public"\."vector_l2_ops"\) WITH \(lists = 100\)$/.test(s)));
});

test('exact SQL on the primary: server with extensions vector, mapping FOR PUBLIC with a secret placeholder, foreign tables, API view, functions', () => {
  const t = topology({ apiRoles: ['anon', 'authenticated'], writeRoles: ['service_role'] });
  const plan = buildPlan(t, emptyLive());
  const sql = plan.databases.find((d) => d.database === 'primary')!.steps.flatMap((s) => s.sql);
  const session = '-c cursor_tuple_fraction=1 -c hnsw.ef_search=100 -c hnsw.iterative_scan=relaxed_order -c ivfflat.probes=10';
  assert.ok(sql.includes(`CREATE SERVER "pod_text" FOREIGN DATA WRAPPER "postgres_fdw" OPTIONS ("async_capable" 'true', "batch_size" '1000', "connect_timeout" '10', "dbname" 'vectors', "extensions" 'vector', "host" '10.0.0.2', "keepalives" '1', "keepalives_count" '3', "keepalives_idle" '30', "keepalives_interval" '10', "options" '${session}', "port" '5433', "tcp_user_timeout" '60000')`));
  assert.ok(sql.includes(`CREATE SERVER "pod_img" FOREIGN DATA WRAPPER "postgres_fdw" OPTIONS ("async_capable" 'true', "batch_size" '1000', "connect_timeout" '10', "dbname" 'postgres', "extensions" 'vector', "host" '10.0.0.3', "keepalives" '1', "keepalives_count" '3', "keepalives_idle" '30', "keepalives_interval" '10', "options" '${session}', "port" '5432', "sslmode" 'require', "tcp_user_timeout" '60000')`));
  assert.ok(sql.includes('CREATE FOREIGN TABLE "vecscale_write"."docs" ("id" character varying, "embedding" "public".vector(384) OPTIONS ("column_name" \'vec\'), "metadata" jsonb DEFAULT \'{}\'::jsonb) SERVER "pod_text" OPTIONS ("schema_name" \'vecs\', "table_name" \'docs\')'));
  // The API function runs as its caller; only its private half, search_docs, is SECURITY DEFINER.
  assert.ok(sql.some((s) => s.startsWith('CREATE FUNCTION "public"."match_docs"("query_embedding" "public".vector(384), "match_count" pg_catalog.int4 DEFAULT 10, "filter" pg_catalog.jsonb DEFAULT \'{}\'::pg_catalog.jsonb, "ef_search" pg_catalog.int4 DEFAULT NULL, "probes" pg_catalog.int4 DEFAULT NULL, "iterative_scan" pg_catalog.text DEFAULT NULL) RETURNS TABLE(id pg_catalog.varchar, metadata pg_catalog.jsonb, distance pg_catalog.float8, "url" pg_catalog.text, "year" pg_catalog.int4) LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $vecscale$')));
  assert.ok(sql.some((s) => s.startsWith('CREATE FUNCTION "vecscale"."search_docs"("query_embedding" "public".vector(384), "match_count" pg_catalog.int4, "filter" pg_catalog.jsonb, "ef_search" pg_catalog.int4 DEFAULT NULL, "probes" pg_catalog.int4 DEFAULT NULL, "iterative_scan" pg_catalog.text DEFAULT NULL) RETURNS TABLE(') && s.includes(' SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $vecscale$')));
  assert.ok(sql.includes('CREATE EXTENSION IF NOT EXISTS "dblink" WITH SCHEMA "vecscale"'));
  assert.ok(sql.includes('CREATE EXTENSION IF NOT EXISTS "postgres_fdw" WITH SCHEMA "vecscale"'), 'never an API schema');
  // Nobody but the owner may call dblink's or postgres_fdw's functions: whatever anyone was granted as they were created goes.
  const ownerOnly = sql.filter((s) => s.startsWith('DO $vecscale$ DECLARE stmt pg_catalog.text; BEGIN FOR stmt IN SELECT pg_catalog.format(\'REVOKE ALL ON FUNCTION'));
  assert.deepEqual(ownerOnly.map((s) => /extname = '(\w+)'/.exec(s)?.[1]), ['dblink', 'postgres_fdw']);
  // Every function's whole ACL: PUBLIC's default EXECUTE revoked, then exactly the declared roles.
  assert.ok(sql.includes('REVOKE ALL ON FUNCTION "public"."match_docs"("public".vector, pg_catalog.int4, pg_catalog.jsonb, pg_catalog.int4, pg_catalog.int4, pg_catalog.text) FROM PUBLIC'));
  assert.ok(sql.includes('GRANT EXECUTE ON FUNCTION "public"."match_docs"("public".vector, pg_catalog.int4, pg_catalog.jsonb, pg_catalog.int4, pg_catalog.int4, pg_catalog.text) TO "anon", "authenticated", "service_role"'));
  assert.ok(sql.includes('GRANT EXECUTE ON FUNCTION "public"."upsert_docs"(pg_catalog.text, "public".vector, pg_catalog.jsonb) TO "service_role"'));
  assert.ok(sql.includes('REVOKE ALL ON FUNCTION "vecscale"."write_docs"() FROM PUBLIC'));
  assert.ok(!sql.some((s) => /^GRANT .* ON FUNCTION "vecscale"."(write_docs|match_sql_docs|filter_sql)"/.test(s)), 'what only search_ or a trigger calls is granted to nobody');
  // The wrapper role, never the secondary's admin from the URL, for every caller.
  assert.ok(sql.includes('CREATE USER MAPPING FOR PUBLIC SERVER "pod_text" OPTIONS ("password" {{secret:pod_text.fdw_password}}, "user" \'vecscale_fdw\')'));
  assert.ok(sql.includes('CREATE FOREIGN TABLE "vecscale_remote"."docs" ("id" character varying, "embedding" "public".vector(384), "metadata" jsonb, "url" text, "year" integer) SERVER "pod_text" OPTIONS ("schema_name" \'vecscale\', "table_name" \'docs\')'));
  assert.ok(sql.includes('GRANT SELECT ON TABLE "vecscale_remote"."docs" TO "anon", "authenticated"'), 'readers');
  assert.ok(sql.includes('GRANT INSERT, SELECT ON TABLE "vecscale_remote"."docs" TO "service_role"'), 'upsert_docs inserts through it');
  assert.ok(sql.includes('GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "vecscale_write"."docs" TO "service_role"'));
  assert.ok(sql.includes('CREATE VIEW "public"."docs" WITH ("security_invoker" = true) AS SELECT "id", "embedding", "metadata", "url", "year" FROM "vecscale_remote"."docs"'));
  assert.ok(sql.includes('GRANT SELECT ON TABLE "public"."docs" TO "anon", "authenticated"'));
  assert.ok(sql.includes('GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "public"."docs" TO "service_role"'));
  assert.ok(sql.includes('CREATE SCHEMA IF NOT EXISTS "vecscale_remote"'));
  assert.ok(sql.includes('GRANT USAGE ON SCHEMA "vecscale_remote" TO "anon", "authenticated", "service_role"'));
  assert.ok(sql.includes('GRANT USAGE ON SCHEMA "vecscale_write" TO "service_role"'));
  assert.ok(!sql.some((s) => /ON FOREIGN SERVER/.test(s)), 'no role gets USAGE on a wrapper server');
});

test('default privileges (a Supabase-shaped database) are revoked in the transaction that creates each object', () => {
  const t = topology({ apiRoles: ['anon', 'authenticated'], writeRoles: ['service_role'] });
  const live = emptyLive();
  const all = ['anon', 'authenticated', 'service_role'];
  const allOf = (ps: string[]) => Object.fromEntries(all.map((r) => [r, ps]));
  const primary = live.get('primary')!;
  live.set('primary', {
    ...primary,
    facts: {
      ...primary.facts,
      defaultAcl: {
        global: {},
        inSchema: { public: { r: allOf(['DELETE', 'INSERT', 'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE']), f: allOf(['EXECUTE']) } },
      },
    },
  });
  const steps = buildPlan(t, live).databases.find((d) => d.database === 'primary')!.steps;
  const view = steps.find((s) => s.object === 'view public.docs')!;
  assert.deepEqual(view.sql.slice(-2), [
    'REVOKE DELETE, INSERT, REFERENCES, TRIGGER, TRUNCATE, UPDATE ON TABLE "public"."docs" FROM "anon", "authenticated"',
    'REVOKE REFERENCES, TRIGGER, TRUNCATE ON TABLE "public"."docs" FROM "service_role"',
  ]);
  const upsert = steps.find((s) => s.object === 'function public.upsert_docs')!;
  assert.deepEqual(upsert.sql.slice(2), [
    'REVOKE ALL ON FUNCTION "public"."upsert_docs"(pg_catalog.text, "public".vector, pg_catalog.jsonb) FROM PUBLIC, "anon", "authenticated"',
  ]);
  // Objects outside public get no default grants here: nothing to revoke but PUBLIC's EXECUTE.
  const ft = steps.find((s) => s.object === 'foreign table vecscale_remote.docs')!;
  // The write role inserts through it (upsert_docs: INSERT … SELECT, the pod's view upserts each row).
  assert.deepEqual(ft.sql.slice(2), [
    'GRANT INSERT, SELECT ON TABLE "vecscale_remote"."docs" TO "service_role"',
    'GRANT SELECT ON TABLE "vecscale_remote"."docs" TO "anon", "authenticated"',
  ]);
});

test('the plan and its renderings are deterministic and hold no secret', () => {
  const a = buildPlan(topology(), emptyLive());
  const b = buildPlan(topology(), emptyLive());
  assert.equal(JSON.stringify(planToJson(a)), JSON.stringify(planToJson(b)));
  assert.equal(renderPlan(a, plain), renderPlan(b, plain));
  for (const text of [JSON.stringify(planToJson(a)), renderPlan(a, plain), JSON.stringify(a)]) {
    for (const s of [SECRET_A, SECRET_B, encodeURIComponent(SECRET_A), 'primary-pw']) assert.ok(!text.includes(s), `leaked ${s}`);
  }
  assert.match(renderPlan(a, plain), /"password" '<redacted>'/);
  assert.match(renderPlan(a, plain), /Plan: 49 to create, 0 to change, 0 to replace, 0 to drop\./);
});

test('a blocked plan says so in text and JSON, also when it has no steps (never "No changes")', () => {
  const plan = buildPlan(topology(), converged());
  const blocked = { ...plan, blockers: [{ database: 'pod_text', object: 'table vecs.docs', reason: 'in the way' }] };
  const text = renderPlan(blocked, plain);
  assert.doesNotMatch(text, /No changes/);
  assert.match(text, /^Blocked: 1 problem above; apply changes nothing until it is resolved\.$/m);
  assert.deepEqual([(planToJson(blocked) as { status: string }).status, (planToJson(blocked) as { blocked: boolean }).blocked], ['blocked', true]);
  assert.deepEqual([(planToJson(plan) as { status: string }).status, (planToJson(plan) as { blocked: boolean }).blocked], ['no-changes', false]);
});

test("a role that does not own a secondary's database leaves its defaults, with a warning, and plans the rest", () => {
  const live = emptyLive();
  const pod = live.get('pod_text')!;
  live.set('pod_text', { ...pod, facts: { ...pod.facts, ownsDatabase: false } });
  const plan = buildPlan(topology(), live);
  const steps = (db: string) => plan.databases.find((d) => d.database === db)!.steps.map((s) => s.object);
  assert.ok(!steps('pod_text').includes('database defaults'));
  assert.ok(steps('pod_img').includes('database defaults'));
  assert.ok(steps('pod_text').includes('view vecscale.docs'));
  const note = plan.notes.find((n) => n.database === 'pod_text' && n.object === 'database defaults');
  assert.match(note?.message ?? '', /does not own this database.*ALTER DATABASE … SET hnsw\.iterative_scan = relaxed_order/);
});

test('a converged state plans no changes', () => {
  const plan = buildPlan(topology(), converged());
  assert.deepEqual(plan.databases.map((d) => d.steps.length), [0, 0, 0]);
  assert.match(renderPlan(plan, plain), /^No changes\./m);
});

test('index parameters changed on an existing table: replaced concurrently, outside the transaction, new before old', () => {
  const t2 = topology({
    collections: [collection('docs', 'pod_text', { dimension: 384, index: { method: 'hnsw', m: 32, efConstruction: 128 }, columns: [{ name: 'url', type: 'text' }, { name: 'year', type: 'integer' }] }), topology().collections[1]!],
  });
  const plan = buildPlan(t2, converged());
  const steps = plan.databases.flatMap((d) => d.steps);
  assert.equal(steps.length, 1);
  const step = steps[0]!;
  assert.equal(step.action, 'replace');
  assert.equal(step.transactional, false);
  assert.equal(step.risk, 'disruptive');
  assert.match(step.reason, /ef_construction: 64 → 128; m: 16 → 32/);
  assert.match(step.sql[0]!, /^DROP INDEX CONCURRENTLY IF EXISTS "vecs"\."ix_vector_cosine_ops_hnsw_m32_efc128_[0-9a-f]{7}"$/, 'clears a leftover of an interrupted build');
  assert.match(step.sql[1]!, /^CREATE INDEX CONCURRENTLY "ix_vector_cosine_ops_hnsw_m32_efc128_/);
  assert.match(step.sql[3]!, /^DROP INDEX CONCURRENTLY "vecs"\."ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}" RESTRICT$/);
});

test('a new extracted column changes both views and the foreign table in place (grants survive)', () => {
  const base = topology();
  const t2 = topology({
    collections: [collection('docs', 'pod_text', { dimension: 384, columns: [...base.collections[0]!.columns, { name: 'lang', type: 'text' }] }), base.collections[1]!],
  });
  const plan = buildPlan(t2, converged(base));
  const byDb = Object.fromEntries(plan.databases.map((d) => [d.database, d.steps.map((s) => `${s.action} ${s.object}`)]));
  assert.deepEqual(byDb.pod_text, ['alter view vecscale.docs']);
  assert.deepEqual(byDb.primary, [
    'alter foreign table vecscale_remote.docs',
    'replace function public.match_docs',
    'replace function vecscale.match_sql_docs',
    'replace function vecscale.search_docs',
    'alter view public.docs',
  ]);
  const primary = plan.databases.find((d) => d.database === 'primary')!;
  assert.equal(primary.steps[4]!.reason, 'column lang added');
  assert.equal(primary.steps[1]!.reason, 'definition changed');
  assert.deepEqual(primary.steps[0]!.sql, ['ALTER FOREIGN TABLE "vecscale_remote"."docs" ADD COLUMN "lang" text']);
  assert.match(primary.steps[4]!.sql[0]!, /^CREATE OR REPLACE VIEW "public"\."docs" WITH \("security_invoker" = true\) AS SELECT "id", "embedding", "metadata", "url", "year", "lang" FROM/);
  assert.deepEqual(primary.steps[4]!.drop, []);
});

test('a column type change replaces the foreign table and, with it, the API view built on it', () => {
  const base = topology();
  const t2 = topology({
    collections: [collection('docs', 'pod_text', { dimension: 384, columns: [{ name: 'url', type: 'text' }, { name: 'year', type: 'bigint' }] }), base.collections[1]!],
  });
  const primary = buildPlan(t2, converged(base)).databases.find((d) => d.database === 'primary')!;
  assert.deepEqual(primary.steps.map((s) => `${s.action} ${s.object}`), [
    'replace foreign table vecscale_remote.docs',
    'replace function public.match_docs',
    'replace function vecscale.search_docs',
    'replace view public.docs',
  ]);
  assert.equal(primary.steps[0]!.reason, 'column year: integer → bigint');
  assert.deepEqual(primary.steps[3]!.drop, ['DROP VIEW "public"."docs" RESTRICT']);
  // A rebuilt relation gets its whole ACL again, in the statements that create it.
  assert.ok(primary.steps[0]!.sql.some((s) => s.startsWith('COMMENT ON FOREIGN TABLE')));
});

test('a dimension change on a collection holding rows is destructive: refused unless allowed, never if protected; on an empty one a replace', () => {
  const base = topology();
  const t2 = topology({ collections: [{ ...base.collections[0]!, dimension: 768 }, base.collections[1]!] });
  const live = converged(base);
  const pod = live.get('pod_text')!;
  live.set('pod_text', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([keys.relation('vecs', 'docs')]), rowCounts: new Map([[keys.relation('vecs', 'docs'), 3]]) } });
  const blocked = buildPlan(t2, live);
  const table = blocked.databases.find((d) => d.database === 'pod_text')!.steps.find((s) => s.kind === 'table')!;
  assert.equal(table.risk, 'destructive');
  assert.equal(table.collection, 'docs');
  assert.equal(table.rows, 3);
  assert.match(table.reason, /column vec: vector\(384\) → vector\(768\): the table is recreated and its rows are lost — 3 rows lost/);
  assert.equal(blocked.blockers.length, 1);
  assert.match(blocked.blockers[0]!.reason, /destructive: recreating it loses its 3 rows \(collection docs\); run again with --allow-destructive docs/);
  assert.deepEqual(buildPlan(t2, live, { allowDestructive: ['docs'] }).blockers, []);
  assert.deepEqual(buildPlan(t2, live, { allowDestructive: 'all' }).blockers, []);
  assert.equal(buildPlan(t2, live, { allowDestructive: ['images'] }).blockers.length, 1);
  const guarded = topology({ collections: [{ ...base.collections[0]!, dimension: 768, protect: true }, base.collections[1]!] });
  const refused = buildPlan(guarded, live, { allowDestructive: 'all' });
  assert.equal(refused.blockers.length, 1);
  assert.match(refused.blockers[0]!.reason, /collection docs is protected .*--allow-destructive does not override protection/);
  assert.deepEqual(table.drop, ['DROP TABLE "vecs"."docs" RESTRICT'], 'no TRUNCATE, no CASCADE');
  const emptyOk = buildPlan(t2, converged(base));
  assert.equal(emptyOk.blockers.length, 0);
  const pt = emptyOk.databases.find((d) => d.database === 'pod_text')!.steps.map((s) => `${s.action} ${s.kind}`);
  assert.deepEqual(pt, ['replace table', 'replace index', 'replace view']);
  // The wrapper role's privileges on a rebuilt table and view come back with them (their ACLs).
  const rebuilt = emptyOk.databases.find((d) => d.database === 'pod_text')!.steps;
  assert.ok(rebuilt[0]!.sql.includes('GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "vecs"."docs" TO "vecscale_fdw"'));
  assert.ok(rebuilt[2]!.sql.includes('GRANT INSERT, SELECT ON TABLE "vecscale"."docs" TO "vecscale_fdw"'), 'the upsert view is granted again');
  const idx = emptyOk.databases.find((d) => d.database === 'pod_text')!.steps[1]!;
  assert.equal(idx.transactional, true, 'an index on a rebuilt table is built inside the transaction');
});

test('an object vecscale did not create: adopted when it matches, blocking when it differs', () => {
  const base = topology();
  const live = converged(base);
  const pod = live.get('pod_text')!;
  const objects = new Map(pod.state.objects);
  const table = objects.get(keys.relation('vecs', 'docs'))!;
  objects.set(table.key, { ...table, managed: false });
  const view = objects.get(keys.relation('vecscale', 'docs'))!;
  objects.set(view.key, { ...view, managed: false, kind: 'view', columns: [] } as DbObject);
  live.set('pod_text', { ...pod, state: { ...pod.state, objects } as DatabaseState });
  const plan = buildPlan(base, live);
  const steps = plan.databases.find((d) => d.database === 'pod_text')!.steps;
  assert.deepEqual(steps.map((s) => `${s.action} ${s.object}`), ['adopt table vecs.docs']);
  assert.deepEqual(steps[0]!.sql, ['COMMENT ON TABLE "vecs"."docs" IS \'managed by vecscale\'']);
  assert.equal(plan.blockers.length, 1);
  assert.match(plan.blockers[0]!.reason, /was not created by vecscale/);
});

test('a collection removed from the file: its wrappers and empty table dropped (RESTRICT); with rows, refused unless allowed', () => {
  const base = topology();
  const t2 = topology({ collections: [base.collections[0]!] });
  const plan = buildPlan(t2, converged(base));
  const steps = (db: string) => plan.databases.find((d) => d.database === db)!.steps.map((s) => `${s.action} ${s.object} [${s.risk}]`);
  // Privileges on the dropped relations go with them: nothing to revoke.
  // The upsert views' trigger goes with the last collection here (dropped after the view: drops run in reverse phase order).
  assert.deepEqual(steps('pod_img'), ['drop table vecs.images [disruptive]', 'drop function vecscale.upsert_row [disruptive]', 'drop view vecscale.images [disruptive]', 'drop database defaults [safe]']);
  assert.ok(steps('primary').includes('drop view public.images [disruptive]'));
  assert.ok(steps('primary').includes('drop foreign table vecscale_remote.images [disruptive]'));
  assert.ok(steps('primary').includes('drop function public.match_images [disruptive]'));
  assert.equal(plan.blockers.length, 0);
  const table = plan.databases.find((d) => d.database === 'pod_img')!.steps.find((s) => s.kind === 'table')!;
  assert.match(table.drop.join('\n'), /LOCK TABLE "vecs"."images" IN ACCESS EXCLUSIVE MODE\n.*gained rows since it was planned.*\nDROP TABLE "vecs"."images" RESTRICT$/s);
  for (const sql of plan.databases.flatMap((d) => d.steps.flatMap((s) => [...s.drop, ...s.sql]))) {
    assert.doesNotMatch(sql, /TRUNCATE|CASCADE|DELETE FROM/);
  }
  const live = converged(base);
  const pod = live.get('pod_img')!;
  live.set('pod_img', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([keys.relation('vecs', 'images')]) } });
  const refused = buildPlan(t2, live);
  assert.deepEqual(refused.blockers.map((b) => [b.database, b.object]), [['pod_img', 'table vecs.images']]);
  assert.match(refused.blockers[0]!.reason, /--allow-destructive images/);
  const allowed = buildPlan(t2, live, { allowDestructive: ['images'] });
  assert.deepEqual(allowed.blockers, []);
  const drop = allowed.databases.find((d) => d.database === 'pod_img')!.steps.find((s) => s.kind === 'table')!;
  assert.deepEqual(drop.drop, ['DROP TABLE "vecs"."images" RESTRICT']);
  // protect recorded on the table outlives the topology entry
  const objects = new Map(pod.state.objects);
  const t = objects.get(keys.relation('vecs', 'images'))!;
  objects.set(t.key, { ...t, protected: true } as DbObject);
  live.set('pod_img', { ...live.get('pod_img')!, state: { ...pod.state, objects } });
  assert.match(buildPlan(t2, live, { allowDestructive: 'all' }).blockers[0]!.reason, /protected \(protect: true, recorded on the table\)/);
});

test('a drop that would need CASCADE (a dependant vecscale does not manage) is a blocker, not cascaded', () => {
  const base = topology();
  const live = converged(base);
  const primary = live.get('primary')!;
  live.set('primary', { ...primary, facts: { ...primary.facts, dependants: new Map([[keys.relation('public', 'images'), ['view reports.image_stats']]]) } });
  const plan = buildPlan(topology({ collections: [base.collections[0]!] }), live);
  assert.deepEqual(plan.blockers.map((b) => [b.database, b.object]), [['primary', 'view public.images']]);
  assert.match(plan.blockers[0]!.reason, /DROP … CASCADE: view reports.image_stats depends on it/);
});

test("the secondary's admin password is vecscale's own: changing it changes no wrapper", () => {
  const base = topology();
  const t2 = topology({ secondaries: [secondary('pod_text', 'postgres://postgres:another-canary@10.0.0.2:5433/vectors'), base.secondaries[1]!] });
  assert.deepEqual(buildPlan(t2, converged(base)).databases.flatMap((d) => d.steps), []);
});

test('a configured fdw_password that differs from the mappings sets it on the role and every mapping, shown as "password changed" only', () => {
  const base = topology();
  const t2 = topology({ secondaries: [secondary('pod_text', base.secondaries[0]!.url, { fdwPassword: 'canary-fdw-Pw' }), base.secondaries[1]!] });
  const plan = buildPlan(t2, converged(base));
  const steps = plan.databases.flatMap((d) => d.steps);
  assert.deepEqual(steps.map((s) => `${s.database}: ${s.action} ${s.object}: ${s.reason}`), [
    'pod_text: alter role vecscale_fdw: password set',
    'primary: alter user mapping for public on server pod_text: password changed',
  ]);
  assert.deepEqual(steps[0]!.sql, [`ALTER ROLE "vecscale_fdw" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD {{verifier:pod_text.fdw_password}}`]);
  assert.deepEqual(steps[1]!.sql, ['ALTER USER MAPPING FOR PUBLIC SERVER "pod_text" OPTIONS (SET "password" {{secret:pod_text.fdw_password}})']);
  assert.ok(!JSON.stringify(plan).includes('canary-fdw-Pw'));
});

test('a generated wrapper password is kept while the role and all its mappings agree, and set anew when they do not', () => {
  const live = converged();
  assert.deepEqual(buildPlan(topology(), live).databases.flatMap((d) => d.steps), []);
  const primary = live.get('primary')!;
  const objects = new Map(primary.state.objects);
  const m = objects.get(keys.userMapping('pod_text', 'public'))!;
  objects.set(m.key, { ...m, options: { user: 'postgres', password: 'hmac:admin' } } as DbObject);
  live.set('primary', { ...primary, state: { ...primary.state, objects } });
  const steps = buildPlan(topology(), live).databases.flatMap((d) => d.steps);
  assert.deepEqual(steps.map((s) => `${s.database}: ${s.action} ${s.object}`), [
    'pod_text: alter role vecscale_fdw',
    'primary: alter user mapping for public on server pod_text',
  ]);
  assert.match(steps[1]!.reason, /password changed; user: postgres → vecscale_fdw/);
});

test('two secondaries in one cluster share one role: created once, privileges in each database', () => {
  const t = topology({
    secondaries: [secondary('pod_text', 'postgres://postgres:x@10.0.0.2:5433/vectors'), secondary('pod_img', 'postgres://postgres:x@10.0.0.2:5433/images')],
  });
  const plan = buildPlan(t, emptyLive());
  const kinds = (db: string) => plan.databases.find((d) => d.database === db)!.steps.filter((s) => s.kind === 'role' || s.kind === 'grants').map((s) => s.object);
  assert.deepEqual(kinds('pod_text'), ['role vecscale_fdw', 'privileges of vecscale_fdw']);
  assert.deepEqual(kinds('pod_img'), ['privileges of vecscale_fdw']);
});

test('pgvector in different schemas on two databases is a precondition error naming both', () => {
  const live = emptyLive();
  live.set('primary', { ...live.get('primary')!, facts: facts('primary', { vectorSchema: 'extensions' }) });
  live.set('pod_text', { ...live.get('pod_text')!, facts: facts('pod_text', { vectorSchema: 'public' }) });
  assert.throws(() => buildPlan(topology(), live), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'precondition');
    assert.match(e.message, /primary: extensions, pod_text: public/);
    return true;
  });
});

test('options compare by value, whatever order their keys were built or read in', () => {
  const live = converged();
  const primary = live.get('primary')!;
  const objects = new Map(primary.state.objects);
  const m = objects.get(keys.userMapping('pod_text', 'public'))!;
  assert.equal(m.kind, 'user_mapping');
  if (m.kind === 'user_mapping') {
    objects.set(m.key, { ...m, options: Object.fromEntries(Object.entries(m.options).reverse()) });
  }
  live.set('primary', { ...primary, state: { ...primary.state, objects } });
  assert.deepEqual(buildPlan(topology(), live).databases.flatMap((d) => d.steps), []);
});

test("dblink elsewhere that any role but its owner may execute blocks the plan; in vecscale's schema, the grants are revoked", () => {
  const withDblink = (schema: string, grants: string[]) => {
    const live = converged();
    const primary = live.get('primary')!;
    const objects = new Map(primary.state.objects);
    objects.set('extension:dblink', { kind: 'extension', key: 'extension:dblink', managed: false, name: 'dblink', schema, grants });
    live.set('primary', { ...primary, state: { ...primary.state, objects }, facts: { ...primary.facts, dblinkSchema: schema } });
    return buildPlan(topology(), live);
  };
  // Not only PUBLIC: a default privilege or a hand grant to one role is as bad (search_<c>'s connection is reachable).
  const blocked = withDblink('extensions', ['anon EXECUTE extensions.dblink(text,text)', 'anon EXECUTE extensions.dblink_exec(text,text)', 'PUBLIC EXECUTE extensions.dblink_connect(text)']);
  assert.equal(blocked.blockers.length, 1);
  assert.match(blocked.blockers[0]!.reason, /^anon, PUBLIC may execute dblink's functions.*ALTER EXTENSION dblink SET SCHEMA vecscale/);
  assert.deepEqual(withDblink('extensions', ['anon USAGE foreign-data wrapper dblink_fdw']).blockers, []);
  // In vecscale's own schema: no blocker, the plan revokes every grant to anyone but the owner.
  const fixed = withDblink('vecscale', ['authenticated EXECUTE vecscale.dblink(text,text)']);
  assert.deepEqual(fixed.blockers, []);
  const step = fixed.databases.flatMap((d) => d.steps).find((s) => s.object === 'extension dblink')!;
  assert.equal(step.action, 'alter');
  assert.match(step.reason, /its functions are its owner's only: revoke authenticated EXECUTE vecscale\.dblink\(text,text\)/);
  assert.match(step.sql[0]!, /^DO \$vecscale\$ .*REVOKE ALL ON FUNCTION %s FROM %s%s.*extname = 'dblink'.*REVOKE ALL ON FOREIGN DATA WRAPPER/);
});

test('changed query settings give match_* a new connection name (dblink keeps an open connection as it was)', () => {
  const base = topology();
  const tuned = topology({ collections: [{ ...base.collections[0]!, query: { efSearch: 300, iterativeScan: 'off', probes: 1 } }, base.collections[1]!] });
  const name = (t: typeof base): string | undefined => {
    const fn = buildDesired(t, { vectorSchema: 'public', dblinkSchema: 'vecscale', owners: new Map() })
      .flatMap((d) => [...d.objects.values()])
      .find((o) => o.kind === 'function' && o.name === 'search_docs');
    return /'(vecscale:[^']+)'/.exec(fn?.kind === 'function' ? (fn.create ?? '') : '')?.[1];
  };
  assert.match(name(base)!, /^vecscale:pod_text#0:[0-9a-f]{7}$/);
  assert.match(name(tuned)!, /^vecscale:pod_text_q[0-9a-f]{7}#0:[0-9a-f]{7}$/);
});

test("the wrapper role of another primary is not taken over", () => {
  const live = converged();
  const pod = live.get('pod_text')!;
  const objects = new Map(pod.state.objects);
  const r = objects.get(keys.role('vecscale_fdw'))!;
  objects.set(r.key, { ...r, owner: '10.9.9.9:5432/other' } as DbObject);
  live.set('pod_text', { ...pod, state: { ...pod.state, objects } });
  const plan = buildPlan(topology(), live);
  assert.match(plan.blockers.map((b) => b.reason).join('\n'), /wrapper role of another primary \(10.9.9.9:5432\/other\).*set fdw_user/);
});

test('the plan warns when the role may not turn statement logging off around password-carrying statements', () => {
  const live = emptyLive();
  const primary = live.get('primary')!;
  live.set('primary', { ...primary, facts: { ...primary.facts, canQuietLog: false } });
  const notes = buildPlan(topology(), live).notes.filter((n) => n.object === 'statement logging');
  assert.equal(notes.length, 1);
  assert.match(notes[0]!.message, /postgres may not SET log_statement.*GRANT SET ON PARAMETER/);
  assert.equal(buildPlan(topology(), emptyLive()).notes.filter((n) => n.object === 'statement logging').length, 0);
});

test('a sharded collection: partitions round-robin over the shards, the primary partitioned by hash over foreign partitions', () => {
  const t = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 4)] });
  const plan = buildPlan(t, emptyLive());
  const objects = (db: string) => plan.databases.find((d) => d.database === db)!.steps.map((s) => s.object);
  assert.deepEqual(objects('pod_text').filter((o) => o.startsWith('table ')), ['table vecs.img_p0of4', 'table vecs.img_p2of4']);
  assert.deepEqual(objects('pod_img').filter((o) => o.startsWith('table ')), ['table vecs.img_p1of4', 'table vecs.img_p3of4']);
  const sql = plan.databases.find((d) => d.database === 'primary')!.steps.flatMap((s) => s.sql);
  assert.ok(sql.includes(`CREATE TABLE "vecscale_remote"."img" ("id" character varying NOT NULL, "embedding" "public".vector(3) NOT NULL, "metadata" jsonb NOT NULL DEFAULT '{}'::jsonb) PARTITION BY HASH ("id")`));
  assert.ok(sql.some((x) => x.startsWith(`CREATE FOREIGN TABLE "vecscale_remote"."img_p3of4" PARTITION OF "vecscale_remote"."img" FOR VALUES WITH (MODULUS 4, REMAINDER 3) SERVER "pod_img"`)));
  // Reads (and upserts) go to the partition's view on the shard, plain writes to its table.
  assert.ok(sql.some((x) => x.startsWith(`CREATE FOREIGN TABLE "vecscale_remote"."img_p3of4" PARTITION OF`) && x.includes("'vecscale'")), 'remote partition over the view');
  assert.ok(sql.includes(`ALTER FOREIGN TABLE "vecscale_write"."img_p3of4" ALTER COLUMN "embedding" OPTIONS (ADD "column_name" 'vec')`), 'write partition over the table');
  assert.equal(plan.blockers.length, 0);
  assert.deepEqual(buildPlan(t, converged(t)).databases.map((d) => d.steps.length), [0, 0, 0]);
});

test('a sharded collection gaining an extracted column: ALTER TABLE on the partitioned parent, no table of a shard touched', () => {
  const col = (name: string, type: 'text' | 'integer') => ({ name, type });
  const before = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 2, { columns: [col('url', 'text')] })] });
  const after = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 2, { columns: [col('url', 'text'), col('year', 'integer')] })] });
  const plan = buildPlan(after, converged(before));
  assert.equal(plan.blockers.length, 0);
  const steps = plan.databases.flatMap((d) => d.steps.map((s) => ({ db: d.database, ...s })));
  assert.deepEqual(steps.filter((s) => s.action !== 'alter' && !s.object.startsWith('function ')).map((s) => `${s.db}: ${s.action} ${s.object}`), []);
  assert.ok(!steps.some((s) => s.object.startsWith('table vecs.')));
  const sql = steps.flatMap((s) => s.sql);
  assert.ok(sql.includes('ALTER TABLE "vecscale_remote"."img" ADD COLUMN "year" integer'), sql.join('\n'));
  // The partitions get the column from their parent: no ADD COLUMN of their own (PostgreSQL refuses one).
  assert.ok(!sql.some((x) => /^ALTER FOREIGN TABLE "vecscale_remote"\."img_p\dof2" ADD COLUMN/.test(x)));
  assert.ok(sql.some((x) => x.startsWith('CREATE OR REPLACE VIEW "vecscale"."img_p0of2"') && x.includes('AS "year"')));
});

const MB = 1024 * 1024;
/** pod_img's limits in the build tests: 64 MB of maintenance_work_mem, 2 workers, shared_buffers 1 GB. */
const limits = { maxParallelMaintenanceWorkers: 2, maxParallelWorkers: 8, maxWorkerProcesses: 8, sharedBuffers: 1024 * MB };

/** An HNSW index (or `index`) planned over pod_img's table `img` of 768 dimensions, holding `size`. */
function hnswOver(size: { rows: number } | { bytes: number }, over: Partial<LiveFacts> = {}, index: IndexSpec = { method: 'hnsw', m: 16, efConstruction: 64 }) {
  const before = topology({ collections: [collection('img', 'pod_img', { dimension: 768, index: { method: 'none' } })] });
  const after = topology({ collections: [collection('img', 'pod_img', { dimension: 768, index })] });
  const live = converged(before);
  const pod = live.get('pod_img')!;
  const table = keys.relation('vecs', 'img');
  const rows = 'rows' in size ? size.rows > 0 : size.bytes > 0;
  live.set('pod_img', {
    ...pod,
    facts: { ...pod.facts, nonEmpty: new Set(rows ? [table] : []), rowEstimates: new Map([[table, size]]), maintenanceWorkMem: 64 * MB, buildLimits: limits, ...over },
  });
  const plan = buildPlan(after, live);
  const step = plan.databases.flatMap((d) => d.steps).find((st) => st.kind === 'index');
  assert.ok(step, 'an index step');
  return { notes: plan.notes.filter((n) => n.object.startsWith('index vecs.ix_')).map((n) => n.message), sql: step.sql, step };
}

test('an HNSW index over 50k × 768 rows: the note gives the estimate and the maintenance_work_mem it will use, raised for that build only', () => {
  // (8 + 4 × 768) × 50,000 × 1.3 = 200,200,000 bytes: 191 MB, rounded up to a whole MB for the SET.
  assert.equal(hnswBuildBytes(768, 50_000), 200_200_000);
  const { notes, sql, step } = hnswOver({ rows: 50_000 });
  assert.deepEqual(notes, [
    'the HNSW build over about 50,000 rows of vecs.img needs about 191 MB ((8 + 4 × 768) bytes a row × 1.3); it will run with maintenance_work_mem 191 MB (the session has 64 MB) and up to 2 parallel workers (the session\'s max_parallel_maintenance_workers); a parallel build holds the graph in shared memory, so /dev/shm needs that much room',
  ]);
  assert.equal(step.transactional, false, 'built CONCURRENTLY, outside the transaction');
  assert.deepEqual(sql.map((x) => x.replace(/_[0-9a-f]{7}"/g, '_…"')), [
    'DROP INDEX CONCURRENTLY IF EXISTS "vecs"."ix_vector_cosine_ops_hnsw_m16_efc64_…"',
    "SET maintenance_work_mem = '191MB'",
    'CREATE INDEX CONCURRENTLY "ix_vector_cosine_ops_hnsw_m16_efc64_…" ON "vecs"."img" USING hnsw ("vec" "public"."vector_cosine_ops") WITH (ef_construction = 64, m = 16)',
    'RESET maintenance_work_mem',
    'COMMENT ON INDEX "vecs"."ix_vector_cosine_ops_hnsw_m16_efc64_…" IS \'managed by vecscale\'',
  ]);
  // Never analyzed: the rows are estimated from the table's size.
  assert.match(hnswOver({ bytes: 3144 * 50_000 }).notes[0]!, /about 50,000 rows/);
});

test('an HNSW build that fits the session: no SET; one past what vecscale raises by itself: capped, and a warning', () => {
  const fits = hnswOver({ rows: 50_000 }, { maintenanceWorkMem: 1024 * MB });
  assert.deepEqual(fits.notes, [
    'the HNSW build over about 50,000 rows of vecs.img needs about 191 MB ((8 + 4 × 768) bytes a row × 1.3); it will run with maintenance_work_mem 1.0 GB (the session\'s) and up to 2 parallel workers (the session\'s max_parallel_maintenance_workers)',
  ]);
  assert.ok(!fits.sql.some((x) => /^(SET|RESET) /.test(x)), `no SET or RESET: ${fits.sql.join('; ')}`);
  // shared_buffers 128 MB: raised from 64 MB to 128 MB, not to the 191 MB the graph needs.
  const capped = hnswOver({ rows: 50_000 }, { buildLimits: { ...limits, sharedBuffers: 128 * MB, maxParallelMaintenanceWorkers: 0 } });
  assert.deepEqual(capped.notes, [
    'warning: the HNSW build over about 50,000 rows of vecs.img needs about 191 MB ((8 + 4 × 768) bytes a row × 1.3); it will run with maintenance_work_mem 128 MB ' +
      '(the session has 64 MB; raised only as far as vecscale goes by itself: shared_buffers, 128 MB) and no parallel workers (the session\'s max_parallel_maintenance_workers): ' +
      'the graph will not fit, and the build goes on from disk, many times slower (set index.build.maintenance_work_mem of collection img to about 191MB if the server has the memory)',
  ]);
  assert.ok(capped.sql.includes("SET maintenance_work_mem = '128MB'"), capped.sql.join('\n'));
  // A session that already has more than shared_buffers keeps its own, and is warned.
  const session = hnswOver({ rows: 50_000 }, { maintenanceWorkMem: 150 * MB, buildLimits: { ...limits, sharedBuffers: 128 * MB } });
  assert.match(session.notes[0]!, /^warning: .* it will run with maintenance_work_mem 150 MB \(the session's\) and up to 2 parallel workers .*: the graph will not fit/);
  assert.ok(!session.sql.some((x) => x.startsWith('SET ')), session.sql.join('\n'));
  // 10M rows: the 16 GB ceiling holds whatever shared_buffers is.
  const huge = hnswOver({ rows: 10_000_000 }, { buildLimits: { ...limits, sharedBuffers: 64 * 1024 * MB } });
  assert.ok(huge.sql.includes("SET maintenance_work_mem = '16GB'"), huge.sql.join('\n'));
  assert.match(huge.notes[0]!, /raised only as far as vecscale goes by itself: vecscale's ceiling, 16 GB\)/);
});

test('index.build: used as written (workers capped by the server, said in the note), set before the build and reset after', () => {
  const { notes, sql } = hnswOver({ rows: 50_000 }, {}, { method: 'hnsw', m: 16, efConstruction: 64, build: { maintenanceWorkMemKb: 4 * 1024 * 1024, parallelWorkers: 16 } });
  assert.deepEqual(notes, [
    'the HNSW build over about 50,000 rows of vecs.img needs about 191 MB ((8 + 4 × 768) bytes a row × 1.3); it will run with maintenance_work_mem 4.0 GB (index.build.maintenance_work_mem; the session has 64 MB) ' +
      'and up to 8 parallel workers (index.build.parallel_workers is 16, capped by the server\'s max_parallel_workers, 8)',
  ]);
  assert.deepEqual(sql.slice(1, 6).map((x) => x.replace(/_[0-9a-f]{7}" ON .*/, '_…" ON …')), [
    "SET maintenance_work_mem = '4GB'",
    'SET max_parallel_maintenance_workers = 8',
    'CREATE INDEX CONCURRENTLY "ix_vector_cosine_ops_hnsw_m16_efc64_…" ON …',
    'RESET maintenance_work_mem',
    'RESET max_parallel_maintenance_workers',
  ]);
  // Too little, as written: a warning that says where to raise it.
  const small = hnswOver({ rows: 50_000 }, {}, { method: 'hnsw', m: 16, efConstruction: 64, build: { maintenanceWorkMemKb: 96 * 1024 } });
  assert.match(small.notes[0]!, /^warning: .*maintenance_work_mem 96 MB \(index\.build\.maintenance_work_mem; the session has 64 MB\).*raise index\.build\.maintenance_work_mem of collection img/);
  // IVFFlat: pgvector's sample memory (fits the session here), the settings said all the same.
  const ivf = hnswOver({ rows: 50_000 }, {}, { method: 'ivfflat', lists: 100, build: { parallelWorkers: 1 } });
  assert.deepEqual(ivf.notes, ["the IVFFlat build over about 50,000 rows of vecs.img needs about 36 MB ((max(50 × 100 lists, 10000) + 100) sample vectors × (4 × 768 + 8) bytes × 1.2); it will run with maintenance_work_mem 64 MB (the session's) and up to 1 parallel worker (index.build.parallel_workers)"]);
  assert.ok(ivf.sql.includes('SET max_parallel_maintenance_workers = 1') && !ivf.sql.some((x) => x.startsWith('SET maintenance_work_mem')), ivf.sql.join('\n'));
});

test('IVFFlat with many lists: pgvector refuses to build under its sample memory, so it is raised; HNSW with a large m: the neighbour lists count', () => {
  // lists 1000 × 768: pgvector says "memory required is 171 MB" whatever the table's size (3,000 rows here).
  const ivf = hnswOver({ rows: 3_000 }, {}, { method: 'ivfflat', lists: 1000 });
  assert.match(ivf.notes[0]!, /^the IVFFlat build over about 3,000 rows of vecs\.img needs about 18\d MB .*it will run with maintenance_work_mem 18\d MB \(the session has 64 MB\)/);
  assert.ok(ivf.sql.some((x) => /^SET maintenance_work_mem = '18\dMB'$/.test(x)), ivf.sql.join('\n'));
  const short = hnswOver({ rows: 3_000 }, { buildLimits: { ...limits, sharedBuffers: 128 * MB } }, { method: 'ivfflat', lists: 1000 });
  assert.match(short.notes[0]!, /^warning: .*pgvector refuses to build with less/);
  // 45,000 × 384 at m 48 (measured 3.3 kB a row): the rule with the neighbour lists is the larger.
  const wide = topology({ collections: [collection('img', 'pod_img', { dimension: 384, index: { method: 'hnsw', m: 48, efConstruction: 96 } })] });
  const before = topology({ collections: [collection('img', 'pod_img', { dimension: 384, index: { method: 'none' } })] });
  const live = converged(before);
  const pod = live.get('pod_img')!;
  const table = keys.relation('vecs', 'img');
  live.set('pod_img', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([table]), rowEstimates: new Map([[table, { rows: 45_000 }]]), maintenanceWorkMem: 64 * MB, buildLimits: limits } });
  const note = buildPlan(wide, live).notes.find((n) => n.object.startsWith('index vecs.ix_'))!.message;
  assert.match(note, /needs about 143 MB \(\(4 × 384 \+ 268 \+ 32 × m 48\) bytes a row: the graph's neighbour lists\)/);
});

test('an empty or new table: nothing raised, nothing to say; an index built with its table gets no SET', () => {
  const empty = hnswOver({ rows: 0 });
  assert.deepEqual(empty.notes, []);
  assert.ok(!empty.sql.some((x) => /^(SET|RESET) /.test(x)), empty.sql.join('\n'));
  const after = topology({ collections: [collection('img', 'pod_img', { dimension: 768, index: { method: 'hnsw', m: 16, efConstruction: 64, build: { maintenanceWorkMemKb: 4 * 1024 * 1024 } } })] });
  const fresh = buildPlan(after, emptyLive());
  assert.deepEqual(fresh.notes.filter((n) => n.object.startsWith('index ')), []);
  const idx = fresh.databases.flatMap((d) => d.steps).find((st) => st.kind === 'index')!;
  assert.equal(idx.transactional, true, 'built with its table, in the transaction, over no rows');
  assert.ok(!idx.sql.some((x) => /^(SET|RESET) /.test(x)), idx.sql.join('\n'));
});

test('index.build is not what the index is: changing it (or writing it) plans nothing on a converged state', () => {
  const withBuild = (build: IndexBuild | undefined) =>
    topology({ collections: [collection('img', 'pod_img', { dimension: 768, index: { method: 'hnsw', m: 16, efConstruction: 64, ...(build ? { build } : {}) } })] });
  const live = converged(withBuild({ maintenanceWorkMemKb: 96 * 1024, parallelWorkers: 1 }));
  for (const build of [undefined, { maintenanceWorkMemKb: 4 * 1024 * 1024 }, { parallelWorkers: 0 }]) {
    const plan = buildPlan(withBuild(build), live);
    assert.deepEqual(plan.databases.flatMap((d) => d.steps.map((st) => st.id)), [], JSON.stringify(build));
  }
});

test('rows in a table the layout no longer uses: the collection moves (no blocker, no drop in the ordinary steps)', () => {
  const before = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 2)] });
  const live = converged(before);
  const replication = logicalReplication;
  for (const [db, l] of live) live.set(db, { ...l, facts: { ...l.facts, replication } });
  const pod = live.get('pod_img')!;
  live.set('pod_img', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([keys.relation('vecs', 'img_p1of2')]) } });
  // A source without logical replication blocks the move, naming the setting.
  const text = live.get('pod_text')!;
  const replica = new Map(live).set('pod_text', { ...text, facts: { ...text.facts, replication: { ...replication, walLevel: 'replica' } } });
  assert.ok(buildPlan(topology({ collections: [sharded('img', ['pod_img', 'pod_text'], 2)] }), replica).blockers.some((b) => b.database === 'pod_text' && /wal_level/.test(`${b.object} ${b.reason}`)));
  for (const after of [sharded('img', ['pod_text', 'pod_img'], 4), sharded('img', ['pod_img', 'pod_text'], 2), collection('img', 'pod_text')]) {
    const plan = buildPlan(topology({ collections: [after] }), live);
    assert.deepEqual(plan.blockers, []);
    // Everything else is planned against the live layout: the move owns the layout change.
    assert.deepEqual(plan.databases.flatMap((d) => d.steps), []);
    assert.equal(plan.moves?.length, 1);
    const m = plan.moves![0]!;
    assert.equal(m.kind, 'move');
    assert.deepEqual(m.from.map((p) => `${p.secondary}/${p.table}`), ['pod_text/img_p0of2', 'pod_img/img_p1of2']);
    assert.ok(m.flows.length > 0);
    const text = renderPlan(plan, plain);
    assert.match(text, /move collection img \[online\][\s\S]*cutover[\s\S]*1 to move\./);
    // Across databases the target's server connects to the source: the plan says it must reach it (it cannot try).
    if (m.flows.some((f) => f.method === 'replication')) assert.match(text, /must be reachable from the target's server/);
  }
  // The same layout with rows: nothing to do. Empty tables of an old layout are still simply re-laid-out.
  assert.deepEqual(buildPlan(before, live).moves, undefined);
  const emptyPlan = buildPlan(topology({ collections: [collection('img', 'pod_text')] }), converged(before));
  assert.equal(emptyPlan.moves, undefined);
  assert.ok(emptyPlan.databases.some((d) => d.steps.some((s) => s.object === 'table vecs.img_p1of2' && s.action === 'drop' && s.risk === 'disruptive')));
});

test('--rotate-fdw-passwords sets a new generated password even when the role and its mappings agree', () => {
  const steps = buildPlan(topology(), converged(), { rotateFdwPasswords: true }).databases.flatMap((d) => d.steps);
  assert.deepEqual(steps.map((s) => `${s.database}: ${s.action} ${s.object}: ${s.reason}`), [
    'pod_text: alter role vecscale_fdw: password set',
    'pod_img: alter role vecscale_fdw: password set',
    'primary: alter user mapping for public on server pod_img: password changed',
    'primary: alter user mapping for public on server pod_text: password changed',
  ]);
});

test('a settings profile no longer used: its server and mapping are dropped (RESTRICT), after the foreign tables moved off it', () => {
  const base = topology();
  const tuned = topology({ collections: [{ ...base.collections[0]!, query: { efSearch: 40, iterativeScan: 'relaxed_order', probes: 10 } }, base.collections[1]!] });
  const plan = buildPlan(base, converged(tuned));
  const primary = plan.databases.find((d) => d.database === 'primary')!.steps;
  const drops = primary.filter((s) => s.action === 'drop');
  assert.deepEqual(drops.map((s) => s.kind).sort(), ['server', 'user_mapping']);
  assert.match(drops.find((s) => s.kind === 'server')!.drop[0]!, /^DROP SERVER "pod_text_q[0-9a-f]{7}" RESTRICT$/);
  assert.match(drops.find((s) => s.kind === 'user_mapping')!.drop[0]!, /^DROP USER MAPPING FOR PUBLIC SERVER "pod_text_q[0-9a-f]{7}"$/);
  assert.ok(primary.some((s) => s.object === 'foreign table vecscale_remote.docs' && s.action === 'replace'));
});
