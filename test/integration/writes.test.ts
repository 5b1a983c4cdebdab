/** Writes through the primary on real clusters: INSERT/UPDATE/DELETE on the API view, upsert_<c>. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, plan } from '../../src/api.js';
import { freshDatabases, sql } from '../harness.js';
import { topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('writes');
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, '  docs:\n    secondary: pod_a\n    dimension: 3\n    columns: { lang: text }\n');
await apply(file.load(), { approve: async () => true });

test('INSERT, UPDATE and DELETE on public.<c> on the primary reach vecs.<c> on the secondary', async () => {
  await sql(dbs.primary, `INSERT INTO public.docs (id, embedding, metadata) VALUES ('a', '[1,0,0]', '{"lang": "de"}'), ('b', '[0,1,0]', '{"lang": "en"}')`);
  await sql(dbs.primary, `INSERT INTO public.docs (id, embedding) VALUES ('c', '[0,0,1]')`);
  assert.deepEqual(await sql(podA, `SELECT id, vec::text AS vec, metadata FROM vecs.docs ORDER BY id`), [
    { id: 'a', vec: '[1,0,0]', metadata: { lang: 'de' } },
    { id: 'b', vec: '[0,1,0]', metadata: { lang: 'en' } },
    { id: 'c', vec: '[0,0,1]', metadata: {} },
  ]);
  await sql(dbs.primary, `UPDATE public.docs SET metadata = '{"lang": "fr"}' WHERE id = 'b'`);
  await sql(dbs.primary, `DELETE FROM public.docs WHERE id = 'c'`);
  assert.deepEqual(await sql(dbs.primary, `SELECT id, lang FROM public.docs ORDER BY id`), [
    { id: 'a', lang: 'de' },
    { id: 'b', lang: 'fr' },
  ]);
});

test('INSERT … SELECT of many rows in one statement', async () => {
  await sql(dbs.primary, `INSERT INTO public.docs (id, embedding, metadata)
    SELECT 'bulk-' || g, ('[' || g || ',1,1]')::vector, jsonb_build_object('n', g) FROM generate_series(1, 300) g`);
  assert.equal((await sql(podA, `SELECT count(*)::int AS n FROM vecs.docs WHERE id LIKE 'bulk-%'`))[0]!.n, 300);
});

test('upsert_<c> inserts a new id and updates an existing one: one row, the newer metadata', async () => {
  await sql(dbs.primary, `SELECT public.upsert_docs('u1', '[1,1,0]', '{"v": 1}')`);
  await sql(dbs.primary, `SELECT public.upsert_docs('u1', '[1,1,1]', '{"v": 2}')`);
  assert.deepEqual(await sql(podA, `SELECT id, vec::text AS vec, metadata FROM vecs.docs WHERE id = 'u1'`), [
    { id: 'u1', vec: '[1,1,1]', metadata: { v: 2 } },
  ]);
  // The batch form: a JSON array, in order (the later duplicate wins); untyped literals still pick the row form.
  await sql(dbs.primary, `SELECT public.upsert_docs('[{"id": "u1", "embedding": [2,2,2]}, {"id": "u3", "embedding": [3,3,3], "metadata": {"v": 3}}, {"id": "u3", "embedding": [4,4,4], "metadata": {"v": 4}}]')`);
  assert.deepEqual(await sql(podA, `SELECT id, vec::text AS vec, metadata FROM vecs.docs WHERE id IN ('u1', 'u3') ORDER BY id`), [
    { id: 'u1', vec: '[2,2,2]', metadata: {} },
    { id: 'u3', vec: '[4,4,4]', metadata: { v: 4 } },
  ]);
  await assert.rejects(sql(dbs.primary, `SELECT public.upsert_docs('[{"id": "u4"}]')`), /every row needs an id and an embedding/);
  await sql(dbs.primary, `SELECT public.upsert_docs('u2', '[0,1,1]')`);
  assert.deepEqual((await sql(podA, `SELECT metadata FROM vecs.docs WHERE id = 'u2'`))[0]!.metadata, {});
});

test('writes change no plan; a dropped write trigger is planned back', async () => {
  const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`.replace(/fdw_\w+/, 'vecscale_fdw')));
  assert.deepEqual(await steps(), []);
  await sql(dbs.primary, 'DROP TRIGGER vecscale_write ON public.docs');
  assert.deepEqual(await steps(), ['primary: alter view public.docs']);
  await apply(file.load(), { approve: async () => true });
  assert.deepEqual(await steps(), []);
  await sql(dbs.primary, `INSERT INTO public.docs (id, embedding) VALUES ('after', '[1,2,3]')`);
  assert.equal((await sql(podA, `SELECT count(*)::int AS n FROM vecs.docs WHERE id = 'after'`))[0]!.n, 1);
});
