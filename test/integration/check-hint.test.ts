/**
 * `vecscale check` on real PostgreSQL: a misplaced row whose id also lives on its right partition is compared with
 * that copy (identical, or what differs), and the advice never overwrites it blindly — a duplicate is safe to delete,
 * a different copy gets two options, each exact SQL. Each advised statement is then run on the primary and does what
 * it says; the CLI prints the same advice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adviceLines, check, type MisplacedRow } from '../../src/check.js';
import { vecscale } from '../cli.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('check_hint');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const file = topologyFile(dbs, `  images:
    shards: [pod_a, pod_b]
    dimension: 3
`);

/** The partition (0 or 1 of 2) an id belongs to, by PostgreSQL's own test on the primary. */
async function homeOf(id: string): Promise<number> {
  const r = await sql<{ r: number }>(dbs.primary, `SELECT r FROM generate_series(0, 1) r WHERE satisfies_hash_partition('vecscale_remote.images'::regclass, 2, r, $1::varchar)`, [id]);
  return r[0]!.r;
}

/** Writes a row straight into the partition the id does not belong to, on its shard (as vecs on the shard would). */
async function stray(id: string, vec: string, metadata: object): Promise<string> {
  const wrong = 1 - (await homeOf(id));
  await sql(wrong === 0 ? podA : podB, `INSERT INTO vecs.images_p${wrong}of2 (id, vec, metadata) VALUES ($1, $2, $3)`, [id, vec, JSON.stringify(metadata)]);
  return `images_p${wrong}of2`;
}

const byId = async (): Promise<Map<string, MisplacedRow & { partition: string }>> => {
  const report = await check(file.load());
  return new Map(report.partitions.flatMap((p) => p.rows.map((r) => [r.id, { ...r, partition: p.partition }] as const)));
};

const wrongOf: Record<string, string> = {};
const EVIL = 'e\u001b[2Jvil';

test('setup: apply, rows through the primary, then stray copies written straight into the wrong partitions', async () => {
  const r = await vecscale(['apply', file.path, '--auto-approve'], { env: file.env });
  assert.equal(r.code, 0, r.stderr);
  await sql(dbs.primary, `INSERT INTO public.images (id, embedding, metadata) SELECT 'i' || g, ('[' || g || ',1,0]')::vector, jsonb_build_object('g', g, 'tag', 'x') FROM generate_series(1, 20) g`);
  wrongOf.i1 = await stray('i1', '[1,1,0]', { g: 1, tag: 'x' }); // the same row
  wrongOf.i2 = await stray('i2', '[9,9,9]', { g: 999, tag: 'x', extra: true }); // vector and metadata differ
  wrongOf.i3 = await stray('i3', '[3,1,0.5]', { tag: 'x', g: 3 }); // the vector only
  wrongOf.lone = await stray('lone', '[0,0,1]', { g: 0 }); // no row with this id where it belongs
  wrongOf.evil = await stray(EVIL, '[0,1,1]', {}); // an id a terminal would run
});

test('a misplaced copy identical to the row on its partition is a duplicate, safe to delete: one option, a DELETE', async () => {
  const row = (await byId()).get('i1')!;
  assert.equal(row.home, 'identical');
  assert.deepEqual(row.fixes, [{ keep: 'home', sql: `DELETE FROM "vecscale_write"."${wrongOf.i1}" WHERE id = 'i1';` }]);
  const lines = adviceLines(row);
  assert.match(lines[0]!, /^id "i1" belongs to images_p\dof2, which holds the same row \(same vector and metadata\): this copy is a duplicate, safe to delete/);
  assert.doesNotMatch(lines.join('\n'), /upsert/);
});

test('a different copy: what differs is named, no timestamp says which is newer, two options each as exact SQL', async () => {
  const rows = await byId();
  const i2 = rows.get('i2')!;
  assert.equal(i2.home, 'different');
  assert.deepEqual(i2.differs, ['vector', 'metadata']);
  assert.deepEqual(i2.differingKeys, ['extra', 'g']);
  const remove = `DELETE FROM "vecscale_write"."${wrongOf.i2}" WHERE id = 'i2';`;
  const move = `BEGIN; SELECT "public"."upsert_images"(id, embedding, metadata) FROM "vecscale_remote"."${wrongOf.i2}" WHERE id = 'i2'; ${remove} COMMIT;`;
  assert.deepEqual(i2.fixes, [{ keep: 'home', sql: remove }, { keep: 'misplaced', sql: move }]);
  const text = adviceLines(i2).join('\n');
  assert.match(text, /which holds a different row with this id: vector and metadata \(keys extra, g\) differ\./);
  assert.match(text, /vecs tables carry no timestamp: which copy is newer cannot be told/);
  assert.ok(text.includes(`keep the row on ${i2.belongs}, delete this copy:  ${remove}`), text);
  assert.ok(text.includes(`keep this copy, replacing the row on ${i2.belongs}:  ${move}`), text);

  const i3 = rows.get('i3')!;
  assert.equal(i3.home, 'different');
  assert.deepEqual(i3.differs, ['vector']);
  assert.deepEqual(i3.differingKeys, [], 'the same metadata, keys in another order');
  assert.match(adviceLines(i3)[0]!, /: vector differs\.$/);
});

test('a misplaced row with no copy where it belongs: move it, one option', async () => {
  const row = (await byId()).get('lone')!;
  assert.equal(row.home, 'absent');
  assert.deepEqual(row.fixes.map((f) => f.keep), ['misplaced']);
  assert.match(adviceLines(row)[0]!, /^id "lone" belongs to images_p\dof2, which has no row with this id: move it there \(on the primary\):$/);
});

test('an id holding control characters is written as hex in the advice: nothing a terminal would run', async () => {
  const row = (await byId()).get(EVIL)!;
  const text = adviceLines(row).join('\n');
  assert.doesNotMatch(text, /\u001b/);
  assert.ok(text.startsWith('id "e\\u001b[2Jvil" belongs to'), text);
  assert.ok(text.includes(`WHERE id = pg_catalog.convert_from(pg_catalog.decode('${Buffer.from(EVIL).toString('hex')}', 'hex'), 'UTF8')`), text);
});

test('the CLI prints the same advice, and no blind "upsert it through the primary"', async () => {
  const r = await vecscale(['check', file.path], { env: file.env });
  assert.equal(r.code, 2, r.stderr);
  for (const row of (await byId()).values()) {
    for (const line of adviceLines(row)) assert.ok(r.stderr.includes(`    ${line}\n`), `missing: ${line}\n${r.stderr}`);
  }
  assert.doesNotMatch(r.stderr, /then insert or upsert it through the primary/);
  assert.doesNotMatch(r.stderr, /\u001b/);
});

test('each advised statement, run on the primary, does what it says; then every row is home', async () => {
  const rows = await byId();
  const fix = (id: string, keep: 'home' | 'misplaced') => rows.get(id)!.fixes.find((f) => f.keep === keep)!.sql;
  await sql(dbs.primary, fix('i1', 'home'));
  await sql(dbs.primary, fix('i2', 'home'));
  await sql(dbs.primary, fix('i3', 'misplaced'));
  await sql(dbs.primary, fix('lone', 'misplaced'));
  await sql(dbs.primary, fix(EVIL, 'misplaced'));
  const report = await check(file.load());
  assert.equal(report.healthy, true, JSON.stringify(report.partitions));
  const got = await sql<{ id: string; embedding: string; metadata: object }>(dbs.primary, `SELECT id, embedding::text, metadata FROM public.images WHERE id IN ('i1', 'i2', 'i3', 'lone') ORDER BY id`);
  assert.deepEqual(got, [
    { id: 'i1', embedding: '[1,1,0]', metadata: { g: 1, tag: 'x' } },
    { id: 'i2', embedding: '[2,1,0]', metadata: { g: 2, tag: 'x' } }, // the good row, kept
    { id: 'i3', embedding: '[3,1,0.5]', metadata: { g: 3, tag: 'x' } }, // the stray copy, chosen, replaced it
    { id: 'lone', embedding: '[0,0,1]', metadata: { g: 0 } },
  ]);
  assert.equal((await sql<{ n: number }>(dbs.primary, `SELECT count(*)::int AS n FROM public.images WHERE id = $1`, [EVIL]))[0]!.n, 1);
  assert.equal((await sql<{ n: number }>(dbs.primary, `SELECT count(*)::int AS n FROM public.images`))[0]!.n, 22);
});
