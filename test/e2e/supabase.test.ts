/**
 * vecscale on Supabase-shaped databases (primary and secondaries), the way its main users run it: the API roles, the
 * default privileges that grant everything `postgres` creates in `public` to them, and PostgREST's own request shapes
 * replayed as anon, authenticated and service_role. One apply converges; anon reads and cannot write; service_role
 * (write_roles) writes; nothing of vecscale's is reachable on the secondaries; Supabase's linter finds nothing of
 * vecscale's; an ACL or a function changed by hand is planned back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { vecscale } from '../cli.js';
import { sql } from '../harness.js';
import { type ApiRole, API_ROLES, authenticatorUrl, Rest, supabaseDatabases } from '../supabase.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('supabase');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(
  dbs,
  `  docs:
    secondary: pod_a
    dimension: 3
    columns: { url: text, year: integer }
  images:
    shards: [pod_a, pod_b]
    dimension: 3
    columns: { n: integer }
`,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n',
);
const run = (args: string[]) => vecscale([...args, file.path], { env: file.env });
const wrapper = fdwUserFor(dbs);

let rest: Rest;
before(async () => {
  rest = await Rest.connect(dbs.primary);
});
after(async () => {
  await rest?.end();
});

const denied = (e: { code?: string }) => {
  assert.equal(e.code, '42501', `permission denied expected, got ${JSON.stringify(e)}`);
  return true;
};
const vector = (v: readonly number[]) => `[${v.join(',')}]`;

test('one apply converges on Supabase-shaped databases: the next plan has nothing to do', async () => {
  const applied = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(applied.code, 0, applied.stderr);
  // Default privileges granted the API roles everything on public.docs, match_docs, upsert_docs…; the same
  // transaction revoked it: no second apply needed.
  const again = await run(['plan', '--detailed-exitcode']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /No changes\./);
});

test('as service_role (write_roles), PostgREST inserts, updates, deletes and upserts reach the secondaries', async () => {
  const inserted = await rest.request('service_role', true, (q) =>
    q.insert('docs', [
      { id: 'a', embedding: vector([1, 0, 0]), metadata: { url: '/a', year: 2020 } },
      { id: 'b', embedding: vector([0, 1, 0]), metadata: { url: '/b', year: 2021 } },
      { id: 'gone', embedding: vector([0, 0, 1]), metadata: {} },
    ]),
  );
  assert.equal(inserted, 3);
  assert.equal(await rest.request('service_role', true, (q) => q.update('docs', { metadata: { url: '/b2', year: 2022 } }, ['id', 'b'])), 1);
  assert.equal(await rest.request('service_role', true, (q) => q.delete('docs', ['id', 'gone'])), 1);
  await rest.request('service_role', true, (q) =>
    q.rpc('upsert_docs', [['id', 'text', 'c'], ['embedding', 'extensions.vector', vector([1, 1, 0])], ['metadata', 'jsonb', { url: '/c' }]], false),
  );
  await rest.request('service_role', true, (q) =>
    q.rpc('upsert_images', [['rows', 'jsonb', [0, 1, 2, 3].map((i) => ({ id: `i${i}`, embedding: [i, 1, 0], metadata: { n: i } }))]], false),
  );
  assert.equal(await rest.request('service_role', true, (q) => q.insert('images', [{ id: 'i9', embedding: vector([9, 1, 0]), metadata: {} }])), 1);
  // A sharded collection: UPDATE and DELETE by id reach the owning shard, as service_role through PostgREST.
  assert.equal(await rest.request('service_role', true, (q) => q.insert('images', [{ id: 'i8', embedding: vector([8, 1, 0]), metadata: {} }])), 1);
  assert.equal(await rest.request('service_role', true, (q) => q.update('images', { metadata: { n: 90 } }, ['id', 'i9'])), 1);
  assert.equal(await rest.request('service_role', true, (q) => q.delete('images', ['id', 'i8'])), 1);
  // Where the rows are: on the secondaries, as the vecs client sees them.
  assert.deepEqual((await sql(podA, 'SELECT id, metadata FROM vecs.docs ORDER BY id')).map((r) => [r.id, r.metadata]), [
    ['a', { url: '/a', year: 2020 }],
    ['b', { url: '/b2', year: 2022 }],
    ['c', { url: '/c' }],
  ]);
  const shardRows = async (url: string) => (await sql(url, `SELECT string_agg(id, ',' ORDER BY id) AS ids FROM vecscale.images`))[0]!.ids as string;
  assert.deepEqual([...`${await shardRows(podA)},${await shardRows(podB)}`.split(',')].sort(), ['i0', 'i1', 'i2', 'i3', 'i9']);
});

for (const role of ['anon', 'authenticated'] as const) {
  test(`as ${role}: PostgREST's select and rpc(match_*) work; insert, update, delete and upsert are denied`, async () => {
    const rows = (await rest.request(role, false, (q) => q.select('docs', ['id', 'url', 'year'], ['url', '/a']))) as Array<Record<string, unknown>>;
    assert.deepEqual(rows, [{ id: 'a', url: '/a', year: 2020 }]);
    const matches = (await rest.request(role, true, (q) =>
      q.rpc('match_docs', [['query_embedding', 'extensions.vector', [1, 0, 0]], ['match_count', 'integer', 2], ['filter', 'jsonb', { year: { $gte: 2020 } }]]),
    )) as Array<{ id: string }>;
    // c has no year: the filter leaves it out.
    assert.deepEqual(matches.map((m) => m.id), ['a', 'b']);
    const sharded = (await rest.request(role, true, (q) =>
      q.rpc('match_images', [['query_embedding', 'extensions.vector', [3, 1, 0]], ['match_count', 'integer', 3], ['filter', 'jsonb', {}]]),
    )) as Array<{ id: string }>;
    assert.equal(sharded.length, 3);
    assert.equal(sharded[0]!.id, 'i3');
    // The sharded collection's extracted column, filtered on every shard.
    assert.deepEqual(await rest.request(role, false, (q) => q.select('images', ['id', 'n'], ['n', '90'])), [{ id: 'i9', n: 90 }]);

    await assert.rejects(rest.request(role, true, (q) => q.insert('docs', [{ id: 'x', embedding: vector([1, 1, 1]), metadata: {} }])), denied);
    await assert.rejects(rest.request(role, true, (q) => q.update('docs', { metadata: {} }, ['id', 'a'])), denied);
    await assert.rejects(rest.request(role, true, (q) => q.delete('docs', ['id', 'a'])), denied);
    await assert.rejects(rest.request(role, true, (q) => q.insert('images', [{ id: 'x', embedding: vector([1, 1, 1]), metadata: {} }])), denied);
    await assert.rejects(
      rest.request(role, true, (q) => q.rpc('upsert_docs', [['id', 'text', 'x'], ['embedding', 'extensions.vector', vector([1, 1, 1])], ['metadata', 'jsonb', {}]], false)),
      denied,
    );
    await assert.rejects(rest.request(role, true, (q) => q.rpc('upsert_images', [['rows', 'jsonb', [{ id: 'x', embedding: [1, 1, 1] }]]], false)), denied);
    // Nothing changed on the secondary.
    assert.equal((await sql(podA, `SELECT count(*)::int AS n FROM vecs.docs WHERE id = 'x' OR metadata = '{}'`))[0]!.n, 0);
  });
}

test('as an API role, nothing behind the API objects is usable directly: foreign tables only read, no dblink, no server, no mapping secret', async () => {
  const c = new pg.Client({ connectionString: authenticatorUrl(dbs.primary) });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('role', 'anon', true)`);
    // Readable, because the API view runs as its caller; but not writable.
    assert.equal((await c.query('SELECT count(*)::int AS n FROM vecscale_remote.docs')).rows[0].n, 3);
    await c.query('SAVEPOINT s');
    await assert.rejects(c.query(`INSERT INTO vecscale_write.docs (id, embedding) VALUES ('x', '[1,1,1]')`), denied);
    await c.query('ROLLBACK TO SAVEPOINT s');
    await assert.rejects(c.query(`SELECT * FROM vecscale.dblink('pod_a', 'SELECT 1') AS t(x int)`), denied);
    await c.query('ROLLBACK TO SAVEPOINT s');
    await assert.rejects(c.query(`CREATE FOREIGN TABLE public.steal (x int) SERVER pod_a OPTIONS (schema_name 'vecs', table_name 'docs')`), denied);
    await c.query('ROLLBACK TO SAVEPOINT s');
    const mappings = (await c.query('SELECT srvname, usename, umoptions FROM pg_user_mappings')).rows;
    assert.ok(mappings.length > 0);
    assert.ok(mappings.every((m) => m.umoptions === null), 'the FOR PUBLIC mappings keep their password to themselves');
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
  for (const role of API_ROLES) {
    const [usage] = await sql(dbs.primary, `SELECT bool_or(has_server_privilege($1, oid, 'USAGE')) AS any FROM pg_foreign_server`, [role]);
    assert.equal(usage!.any, false, `${role} has USAGE on no wrapper server`);
  }
});

test('on the secondaries, no API role can read or write anything vecscale created (the wrapper role can)', async () => {
  for (const url of [podA, podB]) {
    const objects = await sql<{ name: string }>(
      url,
      `SELECT c.oid::regclass::text AS name FROM pg_class c
        WHERE c.relnamespace IN ('vecs'::regnamespace, 'vecscale'::regnamespace) AND c.relkind IN ('r', 'v', 'f', 'p')`,
    );
    assert.ok(objects.length >= 2, `vecscale's objects on ${url}`);
    for (const role of [...API_ROLES, 'authenticator']) {
      const held = await sql<{ name: string; privs: string }>(
        url,
        `SELECT c.oid::regclass::text AS name,
                concat_ws(',', CASE WHEN has_table_privilege($1, c.oid, 'SELECT') THEN 'SELECT' END,
                               CASE WHEN has_table_privilege($1, c.oid, 'INSERT') THEN 'INSERT' END,
                               CASE WHEN has_table_privilege($1, c.oid, 'UPDATE') THEN 'UPDATE' END,
                               CASE WHEN has_table_privilege($1, c.oid, 'DELETE') THEN 'DELETE' END) AS privs
           FROM pg_class c
          WHERE c.relnamespace IN ('vecs'::regnamespace, 'vecscale'::regnamespace) AND c.relkind IN ('r', 'v', 'f', 'p')`,
        [role],
      );
      assert.deepEqual(held.filter((h) => h.privs !== ''), [], `${role} on ${url}`);
      const [schema] = await sql(url, `SELECT has_schema_privilege($1, 'vecscale', 'USAGE') AS usage`, [role]);
      assert.equal(schema!.usage, false, `${role}: no USAGE on vecscale's private schema`);
    }
    // The Supabase linter's complaint was about views in public: vecscale puts none there.
    const inPublic = await sql(url, `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('v', 'm', 'f', 'r')`);
    assert.deepEqual(inPublic, [], `nothing of vecscale's in public on ${url}`);
  }
  // What a PostgREST request on the secondary (a Supabase project of its own) can reach: nothing.
  const pod = await Rest.connect(podA);
  try {
    for (const role of API_ROLES) {
      await assert.rejects(pod.request(role, false, (q) => q.select('docs', ['id'])), /does not exist/);
      await assert.rejects(pod.request(role, false, () => pod.raw.query('SELECT count(*) FROM vecs.docs')), denied, `${role} cannot read vecs.docs`);
      await assert.rejects(pod.request(role, false, () => pod.raw.query('SELECT count(*) FROM vecscale.docs')), denied, `${role} cannot read vecscale.docs`);
    }
  } finally {
    await pod.end();
  }
  // The wrapper role reads and writes what the primary needs; the owner, as the vecs client connects, everything.
  const [w] = await sql(podA, `SELECT has_table_privilege($1, 'vecs.docs', 'SELECT, INSERT, UPDATE, DELETE') AS dml, has_table_privilege($1, 'vecscale.docs', 'SELECT') AS view`, [wrapper]);
  assert.deepEqual(w, { dml: true, view: true });
  assert.equal((await sql(podA, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 3);
});

/** The checks of Supabase's Security Advisor (splinter) that concern what vecscale creates, on one database. */
async function advisor(url: string): Promise<string[]> {
  const findings = await sql<{ lint: string; object: string }>(
    url,
    `-- 0010 security_definer_view: a view anon/authenticated can read that runs as its owner (any non-system schema)
     SELECT '0010 security_definer_view' AS lint, c.oid::regclass::text AS object
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'extensions')
        AND (has_table_privilege('anon', c.oid, 'SELECT') OR has_table_privilege('authenticated', c.oid, 'SELECT'))
        AND NOT (lower(coalesce(c.reloptions::text, '{}'))::text[] && ARRAY['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'])
     UNION ALL
     -- 0028/0029: a SECURITY DEFINER function anon/authenticated may execute, in the API schema
     SELECT '0028/0029 security_definer_function_executable', p.oid::regprocedure::text
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.nspname = 'public'
        AND (has_function_privilege('anon', p.oid, 'EXECUTE') OR has_function_privilege('authenticated', p.oid, 'EXECUTE'))
     UNION ALL
     -- 0011 function_search_path_mutable
     SELECT '0011 function_search_path_mutable', p.oid::regprocedure::text
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'extensions') AND d.objid IS NULL
        AND NOT EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) cfg WHERE cfg LIKE 'search_path=%')
     UNION ALL
     -- 0014 extension_in_public
     SELECT '0014 extension_in_public', e.extname::text FROM pg_extension e
      WHERE e.extnamespace = 'public'::regnamespace AND e.extname <> 'plpgsql'
     UNION ALL
     -- 0016/0017: materialized views and foreign tables in the API schema readable by the API roles
     SELECT '0016/0017 relation_in_api', c.oid::regclass::text
       FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('m', 'f')
        AND (has_table_privilege('anon', c.oid, 'SELECT') OR has_table_privilege('authenticated', c.oid, 'SELECT'))
     ORDER BY 1, 2`,
  );
  return findings.map((f) => `${f.lint}: ${f.object}`);
}

test("Supabase's Security Advisor checks find nothing of vecscale's on the primary or any secondary", async () => {
  for (const url of [dbs.primary, podA, podB]) assert.deepEqual(await advisor(url), [], url);
  // The one SECURITY DEFINER function vecscale makes per collection, anywhere: the private half of match_<c>.
  const definers = await sql(dbs.primary, `SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE p.prosecdef AND obj_description(p.oid, 'pg_proc') LIKE 'managed by vecscale%' ORDER BY 1`);
  assert.deepEqual(definers.map((d) => d.f), [
    'vecscale.search_docs(extensions.vector,integer,jsonb,integer,integer,text)',
    'vecscale.search_images(extensions.vector,integer,jsonb,integer,integer,text)',
  ]);
  for (const url of [podA, podB]) {
    assert.deepEqual(await sql(url, `SELECT p.oid FROM pg_proc p WHERE p.prosecdef AND obj_description(p.oid, 'pg_proc') LIKE 'managed by vecscale%'`), []);
  }
  // vecscale's own extensions live in its private schema; pgvector where the topology says.
  const ext = await sql(dbs.primary, `SELECT extname, extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname IN ('vector', 'postgres_fdw', 'dblink') ORDER BY 1`);
  assert.deepEqual(ext.map((e) => [e.extname, e.schema]), [['dblink', 'vecscale'], ['postgres_fdw', 'vecscale'], ['vector', 'extensions']]);
});

test('a grant added by hand to any role on anything vecscale created is planned back, and apply revokes it', async () => {
  await sql(dbs.primary, 'GRANT INSERT, DELETE ON public.docs TO anon');
  await sql(dbs.primary, 'GRANT EXECUTE ON FUNCTION public.upsert_docs(text, extensions.vector, jsonb) TO authenticated');
  await sql(dbs.primary, 'GRANT USAGE ON FOREIGN SERVER pod_a TO authenticated');
  await sql(dbs.primary, 'GRANT UPDATE (metadata) ON public.docs TO anon');
  await sql(dbs.primary, 'GRANT CREATE ON SCHEMA vecscale_remote TO anon');
  await sql(podA, 'GRANT SELECT ON vecs.docs TO anon');
  await sql(podA, 'GRANT SELECT ON vecscale.docs TO PUBLIC');
  const p = await run(['plan', '--detailed-exitcode']);
  assert.equal(p.code, 2, p.stderr);
  for (const expected of [
    /REVOKE DELETE, INSERT ON TABLE "public"\."docs" FROM "anon"/,
    /REVOKE UPDATE \("metadata"\) ON TABLE "public"\."docs" FROM "anon"/,
    /REVOKE ALL ON FUNCTION "public"\."upsert_docs"\(pg_catalog\.text, "extensions"\.vector, pg_catalog\.jsonb\) FROM "authenticated"/,
    /REVOKE ALL ON FOREIGN SERVER "pod_a" FROM "authenticated"/,
    /REVOKE CREATE ON SCHEMA "vecscale_remote" FROM "anon"/,
    /REVOKE ALL ON TABLE "vecs"\."docs" FROM "anon"/,
    /REVOKE ALL ON TABLE "vecscale"\."docs" FROM PUBLIC/,
  ]) {
    assert.match(p.stderr, expected);
  }
  const a = await run(['apply', '--auto-approve']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal((await run(['plan', '--detailed-exitcode'])).code, 0);
  await assert.rejects(rest.request('anon', true, (q) => q.delete('docs', ['id', 'a'])), denied);
  const [check] = await sql(podA, `SELECT has_table_privilege('anon', 'vecs.docs', 'SELECT') AS a, has_table_privilege('anon', 'vecscale.docs', 'SELECT') AS b`);
  assert.deepEqual(check, { a: false, b: false });
});

test("a function's SECURITY, search_path, settings or owner changed by hand is planned back (not 'No changes')", async () => {
  const changes: Array<[string, RegExp]> = [
    ['ALTER FUNCTION vecscale.search_docs(extensions.vector, integer, jsonb, integer, integer, text) RESET search_path', /function vecscale\.search_docs.*\n.*settings/],
    ['ALTER FUNCTION public.match_docs(extensions.vector, integer, jsonb, integer, integer, text) SECURITY DEFINER', /function public\.match_docs.*\n.*SECURITY INVOKER → SECURITY DEFINER|SECURITY DEFINER/],
    ['ALTER FUNCTION vecscale.search_docs(extensions.vector, integer, jsonb, integer, integer, text) RESET plan_cache_mode', /function vecscale\.search_docs/],
    ['ALTER FUNCTION public.upsert_docs(jsonb) SET search_path = public', /function public\.upsert_docs\(rows jsonb\)/],
    ['ALTER FUNCTION vecscale.search_docs(extensions.vector, integer, jsonb, integer, integer, text) OWNER TO authenticator', /function vecscale\.search_docs.*\n.*owner/],
  ];
  for (const [statement, expected] of changes) {
    await sql(dbs.primary, statement);
    const p = await run(['plan', '--detailed-exitcode']);
    assert.equal(p.code, 2, `${statement}: ${p.stderr}`);
    assert.match(p.stderr, expected, statement);
    const a = await run(['apply', '--auto-approve']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal((await run(['plan', '--detailed-exitcode'])).code, 0, `${statement}: converged`);
  }
  const [fn] = await sql(
    dbs.primary,
    `SELECT prosecdef, proconfig, pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE oid = 'vecscale.search_docs(extensions.vector, integer, jsonb, integer, integer, text)'::regprocedure`,
  );
  assert.deepEqual(fn, { prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp', 'plan_cache_mode=force_custom_plan'], owner: 'postgres' });
  // Still the right results through the repaired functions.
  const matches = (await rest.request('anon' as ApiRole, true, (q) =>
    q.rpc('match_docs', [['query_embedding', 'extensions.vector', [1, 0, 0]], ['match_count', 'integer', 1], ['filter', 'jsonb', {}]]),
  )) as Array<{ id: string }>;
  assert.deepEqual(matches.map((m) => m.id), ['a']);
});

test('an owner, a member of the wrapper role, an expiry or a grant onward set by hand is planned back (a review found them unseen)', async () => {
  const evil = `evil_${dbs.name}`;
  for (const url of [dbs.primary, podA]) {
    await sql(url, `DO $$ BEGIN CREATE ROLE ${evil} LOGIN PASSWORD 'evil'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`);
  }
  after(async () => {
    for (const url of [dbs.primary, podA, podB]) {
      await sql(url, `DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${evil}') THEN EXECUTE 'DROP OWNED BY ${evil}'; END IF; END $$`);
    }
    await sql(dbs.primary, `DROP ROLE IF EXISTS ${evil}`);
  });
  // An owner holds every privilege (a server's owner sees its mapping's password); a member holds the wrapper's.
  await sql(dbs.primary, `ALTER SERVER pod_a OWNER TO ${evil}`);
  await sql(dbs.primary, `ALTER FOREIGN TABLE vecscale_write.docs OWNER TO ${evil}`);
  await sql(dbs.primary, `ALTER VIEW public.docs OWNER TO ${evil}`);
  await sql(dbs.primary, `ALTER SCHEMA vecscale_write OWNER TO ${evil}`);
  await sql(podA, `ALTER VIEW vecscale.docs OWNER TO ${evil}`);
  await sql(podA, `GRANT ${wrapper} TO ${evil}`);
  await sql(podA, `ALTER ROLE ${wrapper} VALID UNTIL '2000-01-01' CONNECTION LIMIT 0`);
  // A grant onward: service_role may grant SELECT, and grants it to a stranger (whose grant only CASCADE removes).
  await sql(dbs.primary, 'GRANT SELECT ON public.docs TO service_role WITH GRANT OPTION');
  await sql(dbs.primary, `SET ROLE service_role; GRANT SELECT ON public.docs TO ${evil}; RESET ROLE`);
  // dblink's functions are their owner's only: a grant by hand would reach the connection search_<c> keeps.
  await sql(dbs.primary, 'GRANT EXECUTE ON FUNCTION vecscale.dblink(text, text) TO anon');
  await sql(dbs.primary, `GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO ${evil}`);

  const p = await run(['plan', '--detailed-exitcode']);
  assert.equal(p.code, 2, p.stderr);
  for (const expected of [
    /ALTER SERVER "pod_a" OWNER TO "postgres"/,
    /ALTER FOREIGN TABLE "vecscale_write"\."docs" OWNER TO "postgres"/,
    /ALTER VIEW "public"\."docs" OWNER TO "postgres"/,
    /ALTER SCHEMA "vecscale_write" OWNER TO "postgres"/,
    /ALTER VIEW "vecscale"\."docs" OWNER TO "postgres"/,
    new RegExp(`REVOKE "${wrapper}" FROM "${evil}"`),
    /CONNECTION LIMIT -1 VALID UNTIL 'infinity'/,
    /REVOKE GRANT OPTION FOR SELECT ON TABLE "public"\."docs" FROM "service_role" CASCADE/,
    /extension dblink/,
    /extension postgres_fdw/,
  ]) {
    assert.match(p.stderr, expected);
  }
  const a = await run(['apply', '--auto-approve']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal((await run(['plan', '--detailed-exitcode'])).code, 0, 'converged');
  const [primary] = await sql(
    dbs.primary,
    `SELECT (SELECT pg_get_userbyid(srvowner) FROM pg_foreign_server WHERE srvname = 'pod_a') AS server,
            has_table_privilege($1, 'public.docs', 'SELECT') AS stranger,
            has_function_privilege('anon', 'vecscale.dblink(text, text)', 'EXECUTE') AS dblink,
            has_foreign_data_wrapper_privilege($1, 'postgres_fdw', 'USAGE') AS fdw`,
    [evil],
  );
  assert.deepEqual(primary, { server: 'postgres', stranger: false, dblink: false, fdw: false });
  const [pod] = await sql(podA, `SELECT pg_has_role($1, $2, 'MEMBER') AS member, (SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $2) AS until`, [evil, wrapper]);
  assert.deepEqual(pod, { member: false, until: 'infinity' });
  // And the wrapper logs in again: match_docs works.
  const matches = (await rest.request('anon', true, (q) =>
    q.rpc('match_docs', [['query_embedding', 'extensions.vector', [1, 0, 0]], ['match_count', 'integer', 1], ['filter', 'jsonb', {}]]),
  )) as Array<{ id: string }>;
  assert.deepEqual(matches.map((m) => m.id), ['a']);
});

test('default privileges on every function of the database: dblink and postgres_fdw are still their owner\'s only, from the first apply', async () => {
  const other = await supabaseDatabases('supabase_global');
  const f = topologyFile(other, '  docs:\n    secondary: pod_a\n    dimension: 3\n', 'extension_schema: extensions\napi_roles: [anon, authenticated]\n');
  // A database-wide default: every function postgres creates, anywhere, executable by authenticated.
  await sql(other.primary, 'ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT EXECUTE ON FUNCTIONS TO authenticated');
  const applied = await vecscale(['apply', f.path, '--auto-approve'], { env: f.env });
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal((await vecscale(['plan', f.path, '--detailed-exitcode'], { env: f.env })).code, 0, 'one apply converges');
  const granted = await sql(
    other.primary,
    `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
       JOIN pg_extension e ON e.oid = d.refobjid AND e.extname IN ('dblink', 'postgres_fdw')
      WHERE has_function_privilege('authenticated', p.oid, 'EXECUTE') OR has_function_privilege('anon', p.oid, 'EXECUTE')`,
  );
  assert.deepEqual(granted, []);
  // vecscale's own functions follow the topology, whatever the default said.
  const [fns] = await sql(
    other.primary,
    `SELECT has_function_privilege('authenticated', 'vecscale.write_docs()', 'EXECUTE') AS trigger,
            has_function_privilege('authenticated', 'vecscale.search_docs(extensions.vector, integer, jsonb, integer, integer, text)', 'EXECUTE') AS search`,
  );
  assert.deepEqual(fns, { trigger: false, search: true });
});
