/**
 * `vecscale types` against a real primary: the generated Kysely types, compiled with tsc --strict in a program that
 * selects, filters on an extracted column, inserts and calls match_<c> through Kysely, which then runs against the
 * sandbox primary and gets its rows.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { apply } from '../../src/api.js';
import { generateTypes } from '../../src/types/generate.js';
import { freshDatabases, ROOT, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('types_kysely');
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

mkdirSync(join(ROOT, '.vecscale'), { recursive: true });
const dir = mkdtempSync(join(ROOT, '.vecscale', 'types-kysely-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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
  writeFileSync(join(dir, 'vecscale.ts'), generateTypes(file.load(), 'kysely'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'app.ts'), PROGRAM);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
    files: ['vecscale.ts', 'app.ts'],
  }));
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(`${tsc.stdout}${tsc.stderr}`.trim(), '');
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, 'app.ts')], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, PRIMARY_URL: dbs.primary } });
  const r = JSON.parse(out) as { recent: Array<{ id: string; url: string; year: number }>; sharded: unknown[]; inserted: { url: string }; near: unknown[] };
  assert.deepEqual(r.recent.map((x) => x.id), ['r16', 'r17', 'r18', 'r19', 'r20']);
  assert.deepEqual(r.recent[0], { id: 'r16', url: '/p/16', year: 2016 });
  assert.deepEqual(r.sharded, [{ id: 'r7', url: '/p/7' }]);
  assert.deepEqual(r.inserted, { url: '/new' });
  assert.deepEqual(r.near, [['r20', '/p/20', 2020], ['r19', '/p/19', 2019], ['r18', '/p/18', 2018]]);
});
