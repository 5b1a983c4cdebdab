/**
 * match_<c> on real clusters. Ground truth is vecs itself: each filter is also turned into the SQL vecs 0.4
 * (`build_filters`) generates, run directly on the secondary with exact search; the ids must be identical.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { explainMatch, queryDirect, queryPrimary } from '../../src/query/run.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('match');
const podA = Object.values(dbs.secondaries)[0]!;
// A role the topology lets read (roles are cluster-wide: made once, kept).
await sql(dbs.primary, `DO $$ BEGIN CREATE ROLE vs_api; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`);
const file = topologyFile(dbs, `  exact:
    secondary: pod_a
    dimension: 4
    index: { method: none }
    columns: { lang: text, year: integer }
  big:
    secondary: pod_a
    dimension: 4
    index: { method: hnsw, m: 16, ef_construction: 64 }
    columns: { lang: text }
`, 'api_roles: [vs_api]\n');
await apply(file.load(), { approve: async () => true });

// Deterministic pseudo-random data with every shape of metadata vecs users write.
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const LANGS = ['de', 'en', 'fr', 'es', 'it', 'nl', 'pl', 'pt', 'sv', 'da'];
function metadata(i: number): Record<string, unknown> {
  const m: Record<string, unknown> = { lang: LANGS[i % 10], year: 2000 + (i % 25) };
  if (i % 3 === 0) m.tags = ['a', 'b', 'c'].filter((_, j) => (i >> j) & 1);
  if (i % 7 === 0) m.year = String(2000 + (i % 25)); // a string where others have numbers
  if (i % 11 === 0) m.score = i % 2 === 0 ? 1.5 : null;
  if (i % 13 === 0) m.flag = i % 2 === 0;
  if (i % 17 === 0) m["it's \"odd\""] = 'yes';
  if (i % 19 === 0) m.nested = { x: 1 };
  if (i % 23 === 0) delete m.lang;
  return m;
}
const vec = () => `[${Array.from({ length: 4 }, () => (rand() * 2 - 1).toFixed(6)).join(',')}]`;
async function load(table: string, n: number): Promise<void> {
  const rows = Array.from({ length: n }, (_, i) => [`${table}-${i}`, vec(), JSON.stringify(metadata(i))]);
  const client = new pg.Client({ connectionString: podA });
  await client.connect();
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    await client.query(`INSERT INTO vecs.${table} (id, vec, metadata) SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])`,
      [chunk.map((r) => r[0]), chunk.map((r) => r[1]), chunk.map((r) => r[2])]);
  }
  await client.query(`ANALYZE vecs.${table}`);
  await client.end();
}
await load('exact', 400);
await load('big', 3000);

/** vecs 0.4 build_filters, as SQL on the secondary (metadata->'key' and all). */
function vecsSql(f: Record<string, unknown>): string {
  const lit = (v: unknown) => `'${JSON.stringify(v).replace(/'/g, "''")}'::jsonb`;
  const [key, value] = Object.entries(f)[0]!;
  if (key === '$and' || key === '$or') {
    // SQLAlchemy: an empty and_()/or_() renders nothing and drops out of its parent; build_filters({}) is None → NULL.
    const parts = (value as Record<string, unknown>[])
      .map((x) => (Object.keys(x).length === 0 ? 'NULL' : vecsSql(x)))
      .filter((x) => x !== '')
      .map((x) => `(${x})`);
    return parts.join(key === '$and' ? ' AND ' : ' OR ');
  }
  const [op, arg] = Object.entries(value as Record<string, unknown>)[0]!;
  const target = `(metadata -> '${key.replace(/'/g, "''")}')`;
  const hasLen = typeof arg === 'string' || Array.isArray(arg) || (typeof arg === 'object' && arg !== null);
  switch (op) {
    case '$eq':
      return hasLen ? `${target} = ${lit(arg)}` : `metadata @> ${lit({ [key]: arg })}`;
    case '$ne': return `${target} != ${lit(arg)}`;
    case '$lt': return `${target} < ${lit(arg)}`;
    case '$lte': return `${target} <= ${lit(arg)}`;
    case '$gt': return `${target} > ${lit(arg)}`;
    case '$gte': return `${target} >= ${lit(arg)}`;
    case '$in': return (arg as unknown[]).length ? `${target} IN (${(arg as unknown[]).map(lit).join(', ')})` : 'false';
    case '$contains': return `(${target} @> ${lit(arg)} AND jsonb_typeof(${target}) = 'array')`;
  }
  throw new Error(op);
}

const FILTERS: Record<string, unknown>[] = [
  { lang: { $eq: 'de' } },
  { year: { $eq: 2010 } },
  { year: { $eq: '2007' } },
  { score: { $eq: null } },
  { score: { $eq: 1.5 } },
  { flag: { $eq: true } },
  { tags: { $eq: ['a', 'b'] } },
  { nested: { $eq: { x: 1 } } },
  { lang: { $ne: 'de' } },
  { year: { $ne: 2010 } },
  { year: { $lt: 2005 } },
  { year: { $lte: 2005 } },
  { year: { $gt: 2020 } },
  { year: { $gte: '2020' } },
  { lang: { $gt: 'm' } },
  { lang: { $in: ['de', 'fr', 1] } },
  { year: { $in: [2001, 2002, '2014'] } },
  { lang: { $in: [] } },
  { tags: { $contains: 'a' } },
  { lang: { $contains: 'de' } },
  { missing: { $eq: 'x' } },
  { missing: { $ne: 'x' } },
  { "it's \"odd\"": { $eq: 'yes' } },
  { $and: [{ lang: { $eq: 'de' } }, { year: { $gte: 2010 } }] },
  { $or: [{ lang: { $eq: 'sv' } }, { tags: { $contains: 'c' } }, { $and: [{ year: { $lt: 2003 } }, { flag: { $eq: false } }] }] },
  { $and: [] },
  { $or: [] },
  { $and: [{ $or: [] }, { lang: { $eq: 'de' } }] },
  { $or: [{ lang: { $eq: 'de' } }, { $and: [] }] },
  { $and: [{}] },
  { $or: [{}, { lang: { $eq: 'fr' } }] },
  { $dollar: { $eq: 1 } },
  { year: { $eq: 1e3 } },
];

const query = '[0.3,-0.2,0.5,0.1]';
const client = async () => {
  const c = new pg.Client({ connectionString: dbs.primary });
  await c.connect();
  return c;
};

test('match_exact returns exactly what vecs returns, filter by filter (no index: exact search on both sides)', async () => {
  for (const f of FILTERS) {
    const where = vecsSql(f);
    const expected = await sql<{ id: string }>(podA, `SELECT id FROM vecs.exact ${where ? `WHERE ${where}` : ''} ORDER BY vec <=> '${query}' LIMIT 10`);
    const got = await sql<{ id: string }>(dbs.primary, `SELECT id FROM public.match_exact($1, 10, $2::jsonb)`, [query, JSON.stringify(f)]);
    assert.deepEqual(got.map((r) => r.id), expected.map((r) => r.id), JSON.stringify(f));
  }
});

test('unfiltered, with extracted columns and distances, ordered by distance', async () => {
  const rows = await sql<{ id: string; lang: string | null; year: number | null; distance: number }>(
    dbs.primary, `SELECT * FROM public.match_exact($1)`, [query]);
  assert.equal(rows.length, 10);
  const expected = await sql<{ id: string; d: number }>(podA, `SELECT id, vec <=> '${query}' AS d FROM vecs.exact ORDER BY 2 LIMIT 10`);
  assert.deepEqual(rows.map((r) => r.id), expected.map((r) => r.id));
  rows.forEach((r, i) => assert.ok(Math.abs(r.distance - expected[i]!.d) < 1e-9));
  assert.deepEqual(Object.keys(rows[0]!), ['id', 'metadata', 'distance', 'lang', 'year']);
});

test('an invalid filter is an error naming the operator or key', async () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ lang: { $regex: 'd.*' } }, /unknown operator "\$regex" for key "lang"/],
    [{ $not: [] }, /key "\$not" needs an operator object/],
    [{ lang: 'de' }, /key "lang" needs an operator object/],
    [{ lang: { $eq: 'de', $ne: 'fr' } }, /key "lang" needs exactly one operator/],
    [{ a: { $eq: 1 }, b: { $eq: 2 } }, /max 1 entry per filter/],
    [{ tags: { $contains: ['a'] } }, /argument to \$contains filter must be a scalar \(key "tags"\)/],
    [{ lang: { $in: 'de' } }, /argument to \$in filter must be a list/],
    [{ $and: { lang: { $eq: 'de' } } }, /\$and needs a list of conditions/],
    [[1], /filters must be a JSON object/],
  ];
  for (const [f, message] of bad) {
    await assert.rejects(sql(dbs.primary, `SELECT * FROM public.match_exact($1, 10, $2::jsonb)`, [query, JSON.stringify(f)]), message, JSON.stringify(f));
  }
  await assert.rejects(sql(dbs.primary, `SELECT * FROM public.match_exact($1, 0)`, [query]), /match_count must be between 1 and 1000/);
});

test('a role that may only call match_*: gets results, but cannot use dblink or the session connection match_* keeps', async () => {
  const c = await client();
  try {
    await c.query('SET ROLE vs_api');
    const rows = await c.query(`SELECT id FROM public.match_exact($1, 3)`, [query]);
    assert.equal(rows.rowCount, 3);
    await assert.rejects(c.query(`SELECT vecscale.dblink_get_connections()`), /permission denied for (schema vecscale|function dblink_get_connections)/);
    await assert.rejects(c.query(`SELECT * FROM vecscale.dblink('x', 'select 1') AS t(x int)`), /permission denied/);
    // The session's connection is open (match_exact used it): no dblink function reaches it.
    await assert.rejects(c.query(`SELECT vecscale.dblink_exec('vecscale:pod_a', 'select 1')`), /permission denied/);
  } finally {
    await c.end();
  }
  await assert.rejects(
    sql(dbs.primary, `SELECT * FROM public.match_exact('[1,2]')`),
    /query_embedding has 2 dimensions; collection exact has 4/,
  );
});

test('a 10%-selective filter returns k matching rows through the HNSW index (iterative scan reaches the secondary)', async () => {
  const rows = await sql<{ id: string; lang: string }>(dbs.primary, `SELECT id, lang FROM public.match_big($1, 10, '{"lang": {"$eq": "pl"}}')`, [query]);
  assert.equal(rows.length, 10);
  assert.ok(rows.every((r) => r.lang === 'pl'));
});

test('EXPLAIN of the API relation ships ORDER BY and LIMIT; a filter on an extracted column is shipped', async () => {
  const text = async (q: string) => (await sql(dbs.primary, `EXPLAIN (VERBOSE, COSTS OFF) ${q}`)).map((r) => r['QUERY PLAN'] as string).join('\n');
  const knn = await text(`SELECT id FROM public.big ORDER BY embedding <=> '${query}' LIMIT 10`);
  assert.match(knn, /Remote SQL: .* ORDER BY .* LIMIT 10/);
  const col = await text(`SELECT id FROM public.big WHERE lang = 'de'`);
  assert.match(col, /Remote SQL: SELECT id FROM vecscale.big WHERE \(\(lang = 'de'\)\)/);
});

test('vecscale explain: match_big sends the whole query to the secondary; plain SQL on public.big ships ORDER BY and LIMIT', async () => {
  const t = file.load();
  const plain = await explainMatch(t, { collection: 'big' });
  assert.deepEqual(plain.ships, { where: true, orderBy: true, limit: true });
  assert.match(plain.match.sql, /^SELECT t\.id, t\.metadata, .* FROM "vecscale"\."big" t ORDER BY .* LIMIT 10$/);
  assert.match(plain.match.plan, /^Limit/, 'the secondary plans the LIMIT itself');
  assert.match(plain.view.remoteSql.join('\n'), /ORDER BY .* LIMIT 10::bigint/);
  const filtered = await explainMatch(t, { collection: 'big', filter: { lang: { $eq: 'de' } } });
  assert.equal(filtered.filtered, true);
  assert.deepEqual(filtered.ships, { where: true, orderBy: true, limit: true });
  assert.match(filtered.match.sql, /WHERE pg_catalog\.jsonb_path_query_first\(metadata, 'strict \$\."lang"'::pg_catalog\.jsonpath, '\{\}'::pg_catalog\.jsonb, true\) OPERATOR\(pg_catalog\.=\) '"de"'::pg_catalog\.jsonb ORDER BY/);
});

test('ten calls in one session: each sends its own statement, LIMIT and filter shipped (as the secondary ran it)', async () => {
  const c = await client();
  const fdw = fdwUserFor(dbs);
  const ran: string[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const filter = i % 2 === 0 ? '{}' : '{"lang": {"$eq": "de"}}';
      await c.query(`SELECT * FROM public.match_big($1, 10, $2::jsonb)`, [query, filter]);
      // The session keeps its dblink connection: the secondary's backend shows what it ran last.
      const last = await sql<{ query: string }>(podA, `SELECT query FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND datname = current_database()`, [fdw]);
      assert.equal(last.length, 1, JSON.stringify(last));
      ran.push(last[0]!.query);
    }
  } finally {
    await c.end();
  }
  // Each carries its own remote statement_timeout (the caller has none here: the 60 s cap) and connection check.
  for (const [i, q] of ran.entries()) {
    assert.match(q, /^SELECT pg_catalog\.concat\(pg_catalog\.set_config\('statement_timeout', '60000', true\), pg_catalog\.set_config\('client_connection_check_interval', '250', true\)\); SELECT .* ORDER BY t\.embedding OPERATOR\("public"\.<=>\) '\[[^\]]+\]'::"public"\.vector LIMIT 10$/);
    assert.equal(q.includes(`'"de"'`), i % 2 === 1, q);
  }
});

test('vecscale query through the primary and --direct on the secondary agree', async () => {
  const t = file.load();
  const input = { collection: 'exact', vector: [0.3, -0.2, 0.5, 0.1], limit: 5, filter: { year: { $gte: 2010 } } };
  const viaPrimary = await queryPrimary(t, input);
  const direct = await queryDirect(t, input);
  assert.equal(viaPrimary.via, 'primary');
  assert.equal(direct.via, 'pod_a');
  assert.deepEqual(direct.rows.map((r) => r.id), viaPrimary.rows.map((r) => r.id));
  assert.deepEqual(direct.columns, viaPrimary.columns);
});
