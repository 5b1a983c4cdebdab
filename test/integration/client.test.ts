/**
 * Typed clients on a real primary. `vecscale/client`: match_<c> through a `pg` pool and through Kysely, filters and
 * per-call settings as parameters, the typed matcher (compiled with the generated types), and input that must not
 * become SQL. `vecscale types`: a Kysely program typed by the generated file, compiled with tsc --strict, selects,
 * filters on an extracted column, inserts and calls match_<c> against the primary and gets its rows.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { apply } from '../../src/api.js';
import { createMatcher, match, matchQuery } from '../../src/client/index.js';
import { generateTypes } from '../../src/types/generate.js';
import { freshDatabases, ROOT, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';
import { scratchDir, typecheck } from '../tsc.js';

const dbs = await freshDatabases('client');
const file = topologyFile(dbs, `  docs:
    secondary: pod_a
    dimension: 3
    index: { method: none }
    columns: { url: text, year: integer }
  shards:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
    columns: { url: text }
`);
await apply(file.load(), { approve: async () => true });
for (const c of ['docs', 'shards']) {
  await sql(dbs.primary, `INSERT INTO public.${c} (id, embedding, metadata) SELECT 'r' || g, ('[1,' || g || ',0]')::vector, jsonb_build_object('url', '/p/' || g, 'year', 2000 + g) FROM generate_series(1, 20) g`);
}
// The file's databases are dropped when it ends, idle connections and all: their errors then are expected.
const pool = new pg.Pool({ connectionString: dbs.primary, max: 2 }).on('error', () => undefined);
const kyselyPool = new pg.Pool({ connectionString: dbs.primary, max: 1 }).on('error', () => undefined);
const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: kyselyPool }) });
after(async () => {
  await pool.end();
  await db.destroy();
});

test('the same call through a pg pool and through Kysely: rows nearest first, filter and settings applied', async () => {
  const opts = { limit: 3, filter: { $and: [{ year: { $gte: 2005 } }, { year: { $lte: 2015 } }] }, efSearch: 200, iterativeScan: 'strict_order' as const };
  const viaPg = await match<{ id: string; url: string; year: number; distance: number }>(pool, 'docs', [1, 20, 0], opts);
  assert.deepEqual(viaPg.map((r) => [r.id, r.url, r.year]), [['r15', '/p/15', 2015], ['r14', '/p/14', 2014], ['r13', '/p/13', 2013]]);
  assert.deepEqual(await match(db, 'docs', [1, 20, 0], opts), viaPg);
  const sharded = await match<{ id: string }>(pool, 'shards', '[1,7,0]', { limit: 2 });
  assert.deepEqual(sharded.map((r) => r.id), ['r7', 'r8']);
  // Every value is a parameter; the collection name alone is in the text.
  assert.deepEqual(matchQuery('docs', [1, 2, 3], { limit: 5 }), {
    sql: 'SELECT * FROM public.match_docs(query_embedding => $1, match_count => $2, filter => $3::pg_catalog.jsonb, ef_search => $4, probes => $5, iterative_scan => $6)',
    parameters: ['[1,2,3]', 5, '{}', null, null, null],
  });
});

test('bad input is refused before or by the database, never turned into SQL', async () => {
  assert.throws(() => matchQuery('docs; DROP TABLE x', [1, 2, 3]), /not a collection name/);
  assert.throws(() => matchQuery('Docs', [1, 2, 3]), /not a collection name/);
  // Something that is a name when checked and SQL when used: only a string is taken.
  let calls = 0;
  const shifty = { toString: () => (calls++ === 0 ? 'docs' : 'docs(NULL) x; DROP TABLE t; --') };
  assert.throws(() => matchQuery(shifty as unknown as string, [1, 2, 3]), /not a collection name: object/);
  assert.throws(() => matchQuery('docs', [1, Number.NaN, 3]), /vector\[1\] is not a finite number/);
  await assert.rejects(match(pool, 'docs', [1, 2, 3], { efSearch: 1e9 }), /ef_search must be between 1 and 1000/);
  await assert.rejects(match(pool, 'docs', "[1,2,3]'); SELECT 1; --", {}), /invalid input syntax for type vector|malformed vector/);
  await assert.rejects(match(pool, 'docs', [1, 2, 3], { filter: { year: { $regex: 'x' } } as never }), /unknown operator "\$regex"/);
  await assert.rejects(match(pool, 'nope', [1, 2, 3]), /function public\.match_nope.* does not exist/);
});

test('createMatcher typed by the generated VecscaleMatches: compiles with tsc --strict; a wrong collection does not', () => {
  const dir = scratchDir('client-types');
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(file.load(), 'kysely'));
  const client = join(ROOT, 'src', 'client', 'index.js');
  writeFileSync(join(dir, 'app.ts'), `import pg from 'pg';
import { createMatcher, type FieldFilter as ClientField, type Filter as ClientFilter } from ${JSON.stringify(client)};
import type { FieldFilter, Filter, VecscaleMatches } from './vecscale.js';
// The client's filter types and the generated file's are one language, written twice (the file imports nothing):
// each must be assignable to the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const sameFilter: Same<Filter, ClientFilter> = true;
export const sameField: Same<FieldFilter, ClientField> = true;
const match = createMatcher<VecscaleMatches>(new pg.Pool());
export async function run(): Promise<string> {
  const rows = await match('docs', [1, 2, 3], { limit: 5, filter: { year: { $gt: 2010 } }, efSearch: 100 });
  const url: string | null = rows[0]!.url;
  const year: number | null = rows[0]!.year;
  // @ts-expect-error not a collection of the topology
  await match('doc', [1, 2, 3]);
  // @ts-expect-error an unknown filter operator
  await match('docs', [1, 2, 3], { filter: { year: { $between: [1, 2] } } });
  // @ts-expect-error shards has no column year (docs has)
  void (await match('shards', [1, 2, 3]))[0]!.year;
  return \`\${url} \${year}\`;
}
`);
  assert.equal(typecheck(dir, ['vecscale.ts', 'app.ts']).output, '');
  void createMatcher;
});

const PROGRAM = `import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { formatVector, type VecscaleDB, type VecscaleMatches } from './vecscale.js';

const db = new Kysely<VecscaleDB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: process.env.PRIMARY_URL, max: 1 }) }) });
const recent = await db.selectFrom('docs').select(['id', 'url', 'year']).where('year', '>', 2015).orderBy('id').execute();
const sharded = await db.selectFrom('shards').select(['id', 'url']).where('url', '=', '/p/7').execute();
await db.insertInto('shards').values({ id: 'new', embedding: formatVector([1, 99, 0]), metadata: { url: '/new' } }).execute();
const inserted = await db.selectFrom('shards').select('url').where('id', '=', 'new').executeTakeFirstOrThrow();
const q = formatVector([1, 20, 0]);
const near = await sql<VecscaleMatches['docs']>\`SELECT * FROM public.match_docs(\${q}::vector, 3, \${JSON.stringify({ year: { $gte: 2010 } })}::jsonb)\`.execute(db);
console.log(JSON.stringify({ recent, sharded, inserted, near: near.rows.map((r) => [r.id, r.url, r.year]) }));
await db.destroy();
`;

test('the generated Kysely types compile with a program that queries the primary, and the program gets the rows', () => {
  const dir = scratchDir('types-kysely');
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(file.load(), 'kysely'));
  writeFileSync(join(dir, 'app.ts'), PROGRAM);
  assert.equal(typecheck(dir, ['vecscale.ts', 'app.ts']).output, '');
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, 'app.ts')], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, PRIMARY_URL: dbs.primary } });
  const r = JSON.parse(out) as { recent: Array<{ id: string; url: string; year: number }>; sharded: unknown[]; inserted: { url: string }; near: unknown[] };
  assert.deepEqual(r.recent.map((x) => x.id), ['r16', 'r17', 'r18', 'r19', 'r20']);
  assert.deepEqual(r.recent[0], { id: 'r16', url: '/p/16', year: 2016 });
  assert.deepEqual(r.sharded, [{ id: 'r7', url: '/p/7' }]);
  assert.deepEqual(r.inserted, { url: '/new' });
  assert.deepEqual(r.near, [['r20', '/p/20', 2020], ['r19', '/p/19', 2019], ['r18', '/p/18', 2018]]);
});

test("the package exports it as 'vecscale/client' (built)", async () => {
  const m = (await import('vecscale/client')) as typeof import('../../src/client/index.js');
  assert.equal(typeof m.createMatcher, 'function');
  assert.equal(m.formatVector([1, 2]), '[1,2]');
});
