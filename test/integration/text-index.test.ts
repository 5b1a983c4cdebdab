/**
 * The metadata indexes of `text:` and `access:` on real clusters: a GIN index over the document and a btree index
 * over the owner key on every vecs table (placed and sharded), with the very expressions the query path uses — so
 * PostgreSQL's planner picks them — kept converged: a language change replaces, removal drops, a hand-dropped or
 * INVALID index is built again; a user's own index and vecs' index detection are left alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import type { AccessSpec, TextSearchSpec } from '../../src/config/types.js';
import { ownerIndexName, textIndexName } from '../../src/desired/collection.js';
import { documentExpression, ownerExpression, tsqueryExpression } from '../../src/model/text-search.js';
import type { Plan } from '../../src/plan/types.js';
import type { ProgressEvent } from '../../src/model/progress.js';
import { sql } from '../harness.js';
import { moveDatabases } from '../move-writer.js';
import { status } from '../../src/status/index.js';
import { topologyFile } from '../topology-files.js';

const text: TextSearchSpec = { source: 'content', language: 'english' };
const access: AccessSpec = { ownerKey: 'owner_id', claim: 'sub' };

const collections = (docsText = '    text: { source: content, language: english }\n', docsOn = 'pod_a') => `  docs:
    secondary: ${docsOn}
    dimension: 3
${docsText}    access: { owner_key: owner_id, claim: sub }
  img:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: 3
    text: { source: content, language: english }
    access: { owner_key: owner_id, claim: sub }
`;

// moveDatabases: fresh databases, and whatever replication objects a failed move left are removed with them.
const { dbs } = await moveDatabases('text_index');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
// Roles are cluster-wide: the API role access: needs exists before the first apply.
await sql(dbs.primary, `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vs_reader') THEN CREATE ROLE vs_reader; END IF; END $$`);
const file = topologyFile(dbs, collections(), 'api_roles: [vs_reader]\n');
const approve = async () => true;

const TABLES: ReadonlyArray<readonly [string, string]> = [
  [podA, 'docs'], [podA, 'img_p0of4'], [podB, 'img_p1of4'], [podA, 'img_p2of4'], [podB, 'img_p3of4'],
];

const stepsOf = (p: Plan) => p.databases.flatMap((d) => d.steps.map((s) => ({ ...s, line: `${d.database}: ${s.action} ${s.object}` })));
const steps = async () => stepsOf(await plan(file.load())).map((s) => s.line.replace(/fdw_\w+/, 'vecscale_fdw'));

/** Indexes of vecs.<table> other than its primary key: name, access method, expression, validity, comment. */
const indexesOf = async (url: string, table: string) =>
  sql<{ name: string; am: string; expr: string; valid: boolean; comment: string | null }>(
    url,
    `SELECT c.relname::text AS name, am.amname::text AS am, pg_get_indexdef(c.oid, 1, false) AS expr, i.indisvalid AS valid,
            obj_description(c.oid, 'pg_class') AS comment
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
      WHERE i.indrelid = $1::regclass AND NOT i.indisprimary ORDER BY 1`,
    [`vecs.${table}`],
  );

/** How PostgreSQL prints an expression as an index column, from a scratch index over it (same session, same search path). */
async function printed(url: string, expression: string, method: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TEMP TABLE scratch (metadata jsonb)');
    const r = await client.query<{ expr: string }>(`CREATE INDEX scratch_ix ON pg_temp.scratch USING ${method} (${expression}); SELECT pg_get_indexdef('pg_temp.scratch_ix'::regclass, 1, false) AS expr`);
    return (r as unknown as pg.QueryResult<{ expr: string }>[])[1]!.rows[0]!.expr;
  } finally {
    await client.end();
  }
}

/** The vecs client's view: the indexes of the table named like its vector index (`ix_vector…`). */
const vecsIndexes = async (url: string, table: string) =>
  (await sql<{ name: string }>(url, `SELECT c.relname::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = $1::regclass AND c.relname ILIKE 'ix_vector%'`, [`vecs.${table}`])).map((r) => r.name);

const explain = async (url: string, query: string) =>
  (await sql<{ 'QUERY PLAN': string }>(url, `EXPLAIN (COSTS OFF) ${query}`)).map((r) => r['QUERY PLAN']).join('\n');

test('apply: every vecs table gets both indexes, with the exact expressions, marked; vecs still sees only its vector index', async () => {
  assert.equal((await apply(file.load(), { approve })).status, 'applied');
  const documentPrinted = await printed(podA, documentExpression(text), 'gin');
  const ownerPrinted = await printed(podA, ownerExpression(access), 'btree');
  assert.equal(documentPrinted, `to_tsvector('english'::regconfig, (metadata ->> 'content'::text))`, 'how PostgreSQL prints documentExpression');
  for (const [url, table] of TABLES) {
    const found = await indexesOf(url, table);
    const byName = new Map(found.map((i) => [i.name, i]));
    const gin = byName.get(textIndexName(table, text));
    const btree = byName.get(ownerIndexName(table, access));
    assert.deepEqual(gin && { am: gin.am, expr: gin.expr, valid: gin.valid, comment: gin.comment },
      { am: 'gin', expr: documentPrinted, valid: true, comment: 'managed by vecscale' }, `full-text index of ${table}: ${JSON.stringify(found)}`);
    assert.deepEqual(btree && { am: btree.am, expr: btree.expr, valid: btree.valid, comment: btree.comment },
      { am: 'btree', expr: ownerPrinted, valid: true, comment: 'managed by vecscale' }, `owner index of ${table}: ${JSON.stringify(found)}`);
    assert.equal(found.length, 3, `the vector index and the two metadata indexes of ${table}: ${found.map((i) => i.name).join(', ')}`);
    const vecs = await vecsIndexes(url, table);
    assert.equal(vecs.length, 1, `vecs finds one index of ${table}: ${vecs.join(', ')}`);
    assert.match(vecs[0]!, /^ix_vector_cosine_ops_hnsw_m16_efc64_[0-9a-f]{7}$/);
    const cols = await sql<{ attname: string }>(url, `SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [`vecs.${table}`]);
    assert.deepEqual(cols.map((c) => c.attname), ['id', 'vec', 'metadata'], `vecs' columns of ${table} only`);
  }
  assert.deepEqual(await steps(), [], 'converged');
  // status shows the vector index as each part's index; the metadata indexes, present and valid, are no problem.
  const r = await status(file.load());
  const parts = r.collections.flatMap((c) => c.parts);
  assert.equal(parts.length, 5);
  assert.ok(parts.every((p) => p.index?.name.startsWith('ix_vector_') && p.index.name === p.wantedIndex?.name), `each part's index is its vector index: ${JSON.stringify(parts.map((p) => p.index?.name))}`);
  assert.deepEqual(r.problems.filter((p) => /ix_text_|ix_owner_|docs|img/.test(`${p.object} ${p.message}`)), [], 'no problem about these collections');
});

test('the secondary’s planner uses them for the query path’s expressions (after ANALYZE, enough rows)', async () => {
  for (const [url, table] of [[podA, 'docs'], [podB, 'img_p1of4']] as const) {
    await sql(url, `INSERT INTO vecs.${table} (id, vec, metadata)
      SELECT 'r' || g, ('[' || sin(g) || ',' || cos(g) || ',1]')::vector,
             jsonb_build_object('content', CASE WHEN g = 77 THEN 'a zebra crossing' ELSE 'plain words number ' || g END, 'owner_id', 'u' || (g % 500))
        FROM generate_series(1, 20000) g`);
    await sql(url, `ANALYZE vecs.${table}`);
    const fts = await explain(url, `SELECT id FROM vecs.${table} t WHERE ${documentExpression(text, 't')} @@ ${tsqueryExpression(text, "'zebra'")}`);
    assert.ok(fts.includes(textIndexName(table, text)), `full-text search on ${table} uses the GIN index:\n${fts}`);
    const owned = await explain(url, `SELECT id FROM vecs.${table} t WHERE ${ownerExpression(access, 't')} = 'u7'`);
    assert.ok(owned.includes(ownerIndexName(table, access)), `the owner filter on ${table} uses the btree index:\n${owned}`);
    const hits = await sql<{ id: string }>(url, `SELECT id FROM vecs.${table} t WHERE ${documentExpression(text, 't')} @@ ${tsqueryExpression(text, "'zebras'")}`);
    assert.deepEqual(hits, [{ id: 'r77' }], 'stemmed as english');
  }
  assert.deepEqual(await steps(), [], 'rows change nothing');
});

test("a hand-dropped index is built again (CONCURRENTLY, the table holds rows); an INVALID one rebuilt; a user's own is left alone", async () => {
  await sql(podB, `DROP INDEX vecs.${ownerIndexName('img_p1of4', access)}`);
  // A user's own full-text index, under a name of theirs: not vecscale's, not in the plan.
  await sql(podA, `CREATE INDEX docs_user_fts ON vecs.docs USING gin (to_tsvector('simple', metadata->>'content'))`);
  // What an interrupted CREATE INDEX CONCURRENTLY leaves (the sandbox's role is a superuser).
  await sql(podA, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = $1::regclass`, [`vecs.${textIndexName('docs', text)}`]);
  // status names both, as plan repairs both; the user's own index is not a problem.
  const problems = (await status(file.load())).problems.map((x) => `${x.database} | ${x.object} | ${x.message} | ${x.fix}`);
  assert.deepEqual(problems.filter((x) => /ix_text_|ix_owner_|docs_user_fts/.test(x)), [
    `pod_a | collection docs | the full-text index vecs.${textIndexName('docs', text)} is INVALID (an interrupted build): queries do not use it, so hybrid search's text leg scans the whole table | vecscale plan shows its rebuild (or by hand: DROP INDEX CONCURRENTLY "vecs"."${textIndexName('docs', text)}", then vecscale apply)`,
    `pod_b | collection img (vecs.img_p1of4) | the owner index vecs.${ownerIndexName('img_p1of4', access)} of vecs.img_p1of4 is missing: every restricted caller's read and search filters the whole table | vecscale apply builds it (CREATE INDEX CONCURRENTLY)`,
  ], problems.join('\n'));
  const p = stepsOf(await plan(file.load()));
  assert.deepEqual(p.map((s) => s.line), [
    `pod_a: replace index vecs.${textIndexName('docs', text)} on docs`,
    `pod_b: create index vecs.${ownerIndexName('img_p1of4', access)} on img_p1of4`,
  ]);
  assert.match(p[0]!.reason, /index is invalid/);
  assert.ok(p.every((s) => !s.transactional && s.sql.some((x) => x.startsWith('CREATE INDEX CONCURRENTLY'))), 'built CONCURRENTLY');
  assert.equal((await apply(file.load(), { approve })).status, 'applied');
  assert.ok((await indexesOf(podB, 'img_p1of4')).some((i) => i.name === ownerIndexName('img_p1of4', access) && i.valid), 'the owner index is back');
  assert.ok((await indexesOf(podA, 'docs')).some((i) => i.name === textIndexName('docs', text) && i.valid), 'the full-text index is valid again');
  assert.ok((await indexesOf(podA, 'docs')).some((i) => i.name === 'docs_user_fts'), "the user's index stays");
  assert.deepEqual(await steps(), [], 'converged');
  assert.deepEqual((await status(file.load())).problems.filter((x) => /ix_text_|ix_owner_/.test(x.message)), [], 'status: healthy again');
});

test('a new language replaces the full-text index; removing text: drops it, without --allow-destructive', async () => {
  const german: TextSearchSpec = { ...text, language: 'german' };
  file.write(collections('    text: { source: content, language: german }\n'));
  const p = stepsOf(await plan(file.load()));
  // The statement hybrid_docs runs names the language too: its builder is replaced with the index.
  assert.deepEqual(p.map((s) => s.line), [`pod_a: replace index vecs.${textIndexName('docs', german)} on docs`, 'primary: replace function vecscale.text_sql_docs']);
  assert.match(p[0]!.reason, /language or source key changed/);
  assert.equal((await apply(file.load(), { approve })).status, 'applied');
  const names = (await indexesOf(podA, 'docs')).map((i) => i.name);
  assert.ok(names.includes(textIndexName('docs', german)) && !names.includes(textIndexName('docs', text)), `replaced: ${names.join(', ')}`);
  assert.deepEqual(await steps(), [], 'converged');

  file.write(collections(''));
  const gone = await plan(file.load());
  const all = stepsOf(gone);
  // On the primary, hybrid_docs and its halves go with it.
  assert.deepEqual(all.filter((s) => s.line.startsWith('primary:')).map((s) => s.line).sort(),
    ['primary: drop function public.hybrid_docs', 'primary: drop function vecscale.hybrid_docs', 'primary: drop function vecscale.text_sql_docs']);
  const drops = all.filter((s) => !s.line.startsWith('primary:'));
  assert.deepEqual(drops.map((s) => s.line), [`pod_a: drop index vecs.${textIndexName('docs', german)} on docs`]);
  assert.notEqual(drops[0]!.risk, 'destructive', 'no rows are lost');
  assert.equal(gone.blockers.length, 0);
  assert.equal((await apply(file.load(), { approve })).status, 'applied');
  const left = (await indexesOf(podA, 'docs')).map((i) => i.name);
  assert.ok(!left.some((n) => n.startsWith('ix_text_')) && left.includes(ownerIndexName('docs', access)) && left.includes('docs_user_fts'), `dropped, the rest kept: ${left.join(', ')}`);
  assert.equal((await sql<{ n: number }>(podA, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 20000, 'every row kept');
  assert.deepEqual(await steps(), [], 'converged');
});

test('a move builds the indexes on its target table before the cutover, from the layout with text: and access:', async () => {
  file.write(collections(undefined, 'pod_b'));
  const events: ProgressEvent[] = [];
  const r = await apply(file.load(), { approve, events: { onProgress: (e) => events.push(e) } });
  assert.equal(r.status, 'applied');
  assert.deepEqual(r.status === 'applied' ? (r.moves ?? []).map((m) => m.collection) : [], ['docs'], 'docs moved');
  const found = await indexesOf(podB, 'docs');
  const names = found.filter((i) => i.valid).map((i) => i.name);
  assert.ok(names.includes(textIndexName('docs', text)) && names.includes(ownerIndexName('docs', access)) && names.some((n) => n.startsWith('ix_vector_')),
    `the target has all three indexes: ${names.join(', ')}`);
  const started = events.filter((e) => e.type === 'step-started').map((e) => e.id);
  const cutover = started.indexOf('move:docs:cutover');
  for (const purpose of ['text', 'owner']) {
    const built = started.indexOf(`index:pod_b:vecs.docs#${purpose}`);
    assert.ok(built >= 0 && cutover > built, `the ${purpose} index is built on the target before the cutover: ${started.join(', ')}`);
  }
  assert.equal((await sql<{ n: number }>(podB, 'SELECT count(*)::int AS n FROM vecs.docs'))[0]!.n, 20000, 'every row moved');
  assert.deepEqual(await steps(), [], 'converged: nothing left for the next apply');
});
