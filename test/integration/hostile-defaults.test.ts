/**
 * Server-side session defaults a DBA or a platform may set (ALTER DATABASE … SET), against vecscale's own sessions:
 * - a search_path that puts a schema before pg_catalog, holding a look-alike `=` for text: it must never run in a
 *   vecscale session (it did, thousands of times per apply, as the applying superuser — found by a hostile review);
 * - idle_in_transaction_session_timeout: a vecscale transaction that waits (a move's cutover waits on the pods) is
 *   not ended by the server;
 * - a COMMIT that the server answers ROLLBACK (an earlier statement of the transaction failed and was caught) is an
 *   error, never taken as committed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { connect, close } from '../../src/db/connect.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('hostile_defaults');
const urls = [dbs.primary, ...Object.values(dbs.secondaries)];
const dbName = (url: string) => new URL(url).pathname.slice(1);
const file = topologyFile(dbs, '  docs:\n    secondary: pod_a\n    dimension: 3\n    columns: { lang: text }\n');

test('a look-alike operator first on the database default search_path never runs in a vecscale session', async () => {
  for (const url of urls) {
    await sql(url, `CREATE SCHEMA evil`);
    await sql(url, `CREATE SEQUENCE evil.hits`);
    await sql(url, `GRANT USAGE ON SCHEMA evil TO PUBLIC; GRANT USAGE ON SEQUENCE evil.hits TO PUBLIC`);
    await sql(url, `CREATE FUNCTION evil.teq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('evil.hits'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$`);
    await sql(url, `CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.teq)`);
    await sql(url, `ALTER DATABASE "${dbName(url)}" SET search_path = evil, pg_catalog, public`);
  }
  try {
    await apply(file.load(), { approve: async () => true });
    await apply(file.load(), { approve: async () => true, rotateFdwPasswords: true });
    const again = await plan(file.load());
    assert.equal(again.databases.flatMap((d) => d.steps).length, 0, 'converged');
    // The query path: the wrappers' sessions on the pod (postgres_fdw's and match_<c>'s dblink) under the same default.
    await sql(dbs.primary, `INSERT INTO public.docs (id, embedding, metadata) VALUES ('a', '[1,0,0]', '{"lang": "en"}'), ('b', '[0,1,0]', '{"lang": "de"}')`);
    const got = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_docs('[1,0,0]', 10, '{"lang": {"$eq": "de"}}')`);
    assert.deepEqual(got.map((r) => r.id), ['b'], 'the filter compares with pg_catalog.=');
    const [n] = await sql<{ n: number }>(dbs.primary, `SELECT count(*)::int AS n FROM public.docs WHERE lang OPERATOR(pg_catalog.=) 'en'`);
    assert.equal(n?.n, 1, 'a read through the view');
    for (const url of urls) {
      const [h] = await sql<{ n: string }>(url, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM evil.hits`);
      assert.equal(Number(h?.n), 0, `the look-alike never ran on the database at port ${new URL(url).port}`);
    }
  } finally {
    for (const url of urls) await sql(url, `ALTER DATABASE "${dbName(url)}" RESET search_path`);
  }
});

test('idle_in_transaction_session_timeout does not end a vecscale transaction that waits', async () => {
  await sql(dbs.primary, `ALTER DATABASE "${dbName(dbs.primary)}" SET idle_in_transaction_session_timeout = '100ms'`);
  const db = await connect({ database: 'primary', url: dbs.primary });
  try {
    await db.query('BEGIN');
    await new Promise((r) => setTimeout(r, 600));
    const r = await db.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(r.rows[0]?.one, 1, 'the session survived its idle transaction');
    await db.query('COMMIT');
  } finally {
    await close(db);
    await sql(dbs.primary, `ALTER DATABASE "${dbName(dbs.primary)}" RESET idle_in_transaction_session_timeout`);
  }
});

test('a COMMIT answered ROLLBACK is an error', async () => {
  const db = await connect({ database: 'primary', url: dbs.primary });
  try {
    await db.query('BEGIN');
    await db.query('SELECT 1/0').catch(() => undefined);
    await assert.rejects(db.query('COMMIT'), /rolled back at COMMIT/);
  } finally {
    await close(db);
  }
});
