/**
 * The hash predicate a move filters rows with (publication row filters, mirror triggers, checksums) is PostgreSQL's
 * own hash-partition routing: checked against the partition PostgreSQL puts each row in, for every power-of-two
 * modulus a topology can have, over ids of every shape (empty, long, non-ASCII). And the row filter is one a PG15
 * publication accepts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freshDatabases, sql } from '../harness.js';
import { changeLogSql, mirrorFunction, mirrorTriggerSql, publicationSql, remainderSql } from '../../src/move/sql.js';
import { createSql } from '../../src/plan/sql.js';

test('remainderSql agrees with PostgreSQL hash partitioning for moduli 2..64', async () => {
  const dbs = await freshDatabases('movehash');
  const url = dbs.secondaries.pod_1!;
  await sql(url, 'CREATE TABLE ids (id character varying PRIMARY KEY)');
  await sql(url, `INSERT INTO ids SELECT 'id' || g FROM pg_catalog.generate_series(1, 3000) g`);
  await sql(url, `INSERT INTO ids VALUES (''), ('ünïcødé ✓'), (repeat('x', 5000)), ('a''b'), (' ')`);
  for (const modulus of [2, 4, 8, 16, 64]) {
    await sql(url, `CREATE TABLE p${modulus} (id character varying PRIMARY KEY) PARTITION BY HASH (id)`);
    for (let r = 0; r < modulus; r++) await sql(url, `CREATE TABLE p${modulus}_${r} PARTITION OF p${modulus} FOR VALUES WITH (MODULUS ${modulus}, REMAINDER ${r})`);
    await sql(url, `INSERT INTO p${modulus} SELECT id FROM ids`);
    const wrong = await sql<{ n: string }>(
      url,
      `SELECT count(*) AS n FROM p${modulus} p WHERE ${remainderSql('p.id', modulus)} <> pg_catalog.split_part(p.tableoid::regclass::text, '_', 2)::int8`,
    );
    assert.equal(wrong[0]!.n, '0', `modulus ${modulus}`);
  }
});

test('a publication accepts the row filter (PG15: built-in immutable functions on replica-identity columns)', async () => {
  const dbs = await freshDatabases('movehashpub');
  const url = dbs.secondaries.pod_1!;
  await sql(url, 'CREATE SCHEMA vecs');
  await sql(url, 'CREATE TABLE vecs.t (id character varying PRIMARY KEY, metadata jsonb)');
  await sql(url, publicationSql('vecscale_mv_test', [{ table: 't', filters: [{ modulus: 8, remainder: 3 }, { modulus: 8, remainder: 7 }] }]));
  const rows = await sql<{ f: string }>(url, `SELECT pg_catalog.pg_get_expr(prqual, prrelid) AS f FROM pg_catalog.pg_publication_rel`);
  assert.match(rows[0]!.f, /hashtextextended/);
  await sql(url, 'DROP PUBLICATION vecscale_mv_test');
});

test("a move's change-log trigger: plpgsql_check finds nothing, its header is vecscale's, nobody may execute it", async () => {
  const dbs = await freshDatabases('movemirror');
  const url = dbs.secondaries.pod_1!;
  await sql(url, 'CREATE SCHEMA vecs');
  await sql(url, 'CREATE SCHEMA vecscale');
  await sql(url, `CREATE TABLE vecs.t (id character varying PRIMARY KEY, metadata jsonb NOT NULL DEFAULT '{}')`);
  for (const s of changeLogSql('vecscale_mv_test_log')) await sql(url, s);
  for (const s of createSql(mirrorFunction('vecscale_mv_test_log'), { vectorSchema: 'public' })) await sql(url, s);
  await sql(url, mirrorTriggerSql('vecscale_mv_test_log', 't'));
  await sql(url, 'CREATE SCHEMA IF NOT EXISTS plpgsql_check');
  await sql(url, 'CREATE EXTENSION IF NOT EXISTS plpgsql_check WITH SCHEMA plpgsql_check');
  const findings = await sql<{ level: string; message: string }>(
    url,
    `SELECT level, message FROM plpgsql_check.plpgsql_check_function_tb('vecscale.vecscale_mv_test_log()'::regprocedure, 'vecs.t'::regclass,
       fatal_errors => false, other_warnings => true, extra_warnings => true, performance_warnings => true, security_warnings => true)`,
  );
  // SECURITY DEFINER is the design here (see mirrorFunction): the one finding allowed is plpgsql_check saying so.
  assert.deepEqual(findings.filter((f) => !/security definer/i.test(f.message)), []);
  const header = await sql<{ prosecdef: boolean; proconfig: string[]; public_exec: boolean }>(
    url,
    `SELECT prosecdef, proconfig, has_function_privilege('public', oid, 'EXECUTE') AS public_exec FROM pg_proc WHERE proname = 'vecscale_mv_test_log'`,
  );
  assert.deepEqual(header[0], { prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp'], public_exec: false });
  // It records ids, nothing else: an insert, an update that changes the id, a delete.
  await sql(url, `INSERT INTO vecs.t (id) VALUES ('a')`);
  await sql(url, `UPDATE vecs.t SET id = 'b' WHERE id = 'a'`);
  await sql(url, `DELETE FROM vecs.t WHERE id = 'b'`);
  const logged = await sql<{ id: string }>(url, 'SELECT id FROM vecscale.vecscale_mv_test_log ORDER BY seq');
  assert.deepEqual(logged.map((r) => r.id), ['a', 'a', 'b', 'b']);
});

test("a move's own tables keep no grant the applying role's default privileges would give (Supabase grants everything)", async () => {
  const dbs = await freshDatabases('moveacl');
  const url = dbs.secondaries.pod_1!;
  const role = `move_acl_${Date.now()}`;
  await sql(url, `CREATE ROLE ${role} NOLOGIN`);
  try {
    await sql(url, 'CREATE SCHEMA vecscale');
    await sql(url, `ALTER DEFAULT PRIVILEGES IN SCHEMA vecscale GRANT ALL ON TABLES TO ${role}, PUBLIC`);
    await sql(url, `ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO ${role}`);
    for (const s of changeLogSql('vecscale_mv_acl_log')) await sql(url, s);
    const acl = await sql<{ grantees: string[] }>(
      url,
      `SELECT array(SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = 'vecscale.vecscale_mv_acl_log'::regclass AND a.grantee <> c.relowner) AS grantees`,
    );
    assert.deepEqual(acl[0]!.grantees, []);
  } finally {
    await sql(url, `DROP TABLE IF EXISTS vecscale.vecscale_mv_acl_log`);
    await sql(url, `ALTER DEFAULT PRIVILEGES IN SCHEMA vecscale REVOKE ALL ON TABLES FROM ${role}, PUBLIC`);
    await sql(url, `ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM ${role}`);
    await sql(url, `DROP ROLE ${role}`);
  }
});
