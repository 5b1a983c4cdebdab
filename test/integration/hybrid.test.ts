/**
 * Hybrid search (hybrid_<c>) and owned rows in match_<c>/hybrid_<c>, on a Supabase-shaped primary, as PostgREST calls.
 *
 * The reference is Supabase's hybrid_search guide function run on one database holding the same rows (a plain table
 * with the guide's generated `fts` column), with two changes stated in the README: the collection's distance operator
 * (cosine `<=>`; the guide uses `<#>`), and `, id COLLATE "C"` as the last key of each ordering — the guide's `row_number()` has no
 * tie-break, so tied rows come in any order there, and no two runs need agree. The filter is applied to both legs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply } from '../../src/api.js';
import { sql } from '../harness.js';
import { Rest, supabaseDatabases } from '../supabase.js';
import { topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('hybrid');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const DIM = 8;
const file = topologyFile(
  dbs,
  `  notes:
    secondary: pod_a
    dimension: ${DIM}
    index: { method: none }
    columns: { lang: text }
    text: { source: content, language: english }
  snotes:
    shards: [pod_a, pod_b]
    partitions: 4
    dimension: ${DIM}
    index: { method: none }
    text: { source: content }
  owned:
    secondary: pod_b
    dimension: ${DIM}
    index: { method: hnsw, m: 8, ef_construction: 32 }
    text: { source: content }
    access: { owner_key: owner_id, claim: sub }
  sowned:
    shards: [pod_a, pod_b]
    dimension: ${DIM}
    index: { method: hnsw, m: 8, ef_construction: 32 }
    text: { source: content }
    access: { owner_key: owner_id, claim: sub }
`,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n',
);
await apply(file.load(), { approve: async () => true });

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const WORDS = ['quick', 'brown', 'fox', 'jumps', 'lazy', 'dog', 'dogs', 'running', 'runs', 'sleep', 'vector', 'search', 'database', 'postgres', 'index',
  'shard', 'merge', 'rank', 'fusion', 'text', 'the', 'a', 'of', 'and', 'cat', 'cats', 'hybrid', 'semantic', 'query', 'engine'];
const vec = (): number[] => Array.from({ length: DIM }, () => Number((rand() * 2 - 1).toFixed(5)));
const doc = (): string => Array.from({ length: 3 + Math.floor(rand() * 10) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');

interface Row { id: string; embedding: number[]; metadata: Record<string, unknown> }
const corpus: Row[] = Array.from({ length: 600 }, (_, i) => ({
  id: `n${String(i).padStart(4, '0')}`,
  embedding: vec(),
  metadata: { content: doc(), lang: i % 3 === 0 ? 'de' : 'en', ...(i % 50 === 0 ? {} : { n: i }) },
}));
// A few rows without text, and one whose text is not a string: neither matches any query text.
corpus[5]!.metadata = { lang: 'en' };
corpus[6]!.metadata = { content: 42, lang: 'en' };

async function upsert(collection: string, rows: readonly Row[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await sql(dbs.primary, `SELECT public.upsert_${collection}($1::jsonb)`, [JSON.stringify(rows.slice(i, i + 500))]);
  }
}
await upsert('notes', corpus);
await upsert('snotes', corpus);

// The reference: Supabase's guide, on one database.
await sql(dbs.primary, `CREATE SCHEMA ref`);
await sql(dbs.primary, `CREATE TABLE ref.documents (id text PRIMARY KEY, content text, embedding extensions.vector(${DIM}), metadata jsonb,
  fts tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED)`);
await sql(dbs.primary, `INSERT INTO ref.documents (id, content, embedding, metadata)
  SELECT r->>'id', r->'metadata'->>'content', (r->>'embedding')::extensions.vector, r->'metadata' FROM jsonb_array_elements($1::jsonb) r`, [JSON.stringify(corpus)]);
await sql(dbs.primary, `CREATE FUNCTION ref.hybrid_search(query_text text, query_embedding extensions.vector(${DIM}), match_count int, contains jsonb,
    full_text_weight float = 1, semantic_weight float = 1, rrf_k int = 50)
  RETURNS TABLE (id text, score float8, full_text_rank bigint, semantic_rank bigint) LANGUAGE sql AS $$
  with full_text as (
    select id, row_number() over(order by ts_rank_cd(fts, websearch_to_tsquery('english', query_text)) desc, id COLLATE "C") as rank_ix
    from ref.documents
    where fts @@ websearch_to_tsquery('english', query_text) and metadata @> contains
    order by rank_ix
    limit least(match_count, 30) * 2
  ),
  semantic as (
    select id, row_number() over (order by embedding OPERATOR(extensions.<=>) query_embedding, id COLLATE "C") as rank_ix
    from ref.documents
    where metadata @> contains
    order by rank_ix
    limit least(match_count, 30) * 2
  )
  select documents.id,
    (coalesce(1.0 / (rrf_k + full_text.rank_ix), 0.0) * full_text_weight + coalesce(1.0 / (rrf_k + semantic.rank_ix), 0.0) * semantic_weight)::float8,
    full_text.rank_ix, semantic.rank_ix
  from full_text
    full outer join semantic on full_text.id = semantic.id
    join ref.documents on coalesce(full_text.id, semantic.id) = documents.id
  order by 2 desc, documents.id COLLATE "C"
  limit least(match_count, 30)
$$`);

type Hit = { id: string; score: number; full_text_rank: string | null; semantic_rank: string | null };
const shown = (rows: readonly Hit[]) => rows.map((r) => `${r.id}:${r.score.toFixed(12)}:${r.full_text_rank ?? '-'}:${r.semantic_rank ?? '-'}`);

interface Case { text: string; k: number; filter?: Record<string, unknown>; contains?: Record<string, unknown>; weights?: [number, number, number] }
const CASES: Case[] = [
  { text: 'quick fox', k: 10 },
  { text: 'dogs', k: 5 },
  { text: '"lazy dog"', k: 10 },
  { text: 'cat or search -postgres', k: 20 },
  { text: 'running', k: 50 }, // capped at 30, as Supabase's
  { text: 'hybrid fusion', k: 10, filter: { lang: { $eq: 'de' } }, contains: { lang: 'de' } },
  { text: 'index', k: 15, weights: [2, 0.5, 10] },
  { text: 'nothingmatchesthis', k: 10 }, // the semantic leg alone
  { text: 'the', k: 10 }, // a stop word: an empty tsquery matches nothing
];

async function ours(fn: string, c: Case, q: number[]): Promise<Hit[]> {
  const [w1, w2, k] = c.weights ?? [1, 1, 50];
  return sql<Hit>(dbs.primary, `SELECT id, score, full_text_rank::text, semantic_rank::text FROM public.${fn}($1, $2::extensions.vector, $3, $4::jsonb, $5, $6, $7)`,
    [c.text, JSON.stringify(q), c.k, JSON.stringify(c.filter ?? {}), w1, w2, k]);
}

test('hybrid_<c> equals Supabase\'s hybrid_search on one database with the same rows, on one secondary and sharded', async () => {
  for (const c of CASES) {
    for (let i = 0; i < 3; i++) {
      const q = vec();
      const [w1, w2, k] = c.weights ?? [1, 1, 50];
      const reference = await sql<Hit>(dbs.primary, `SELECT id, score, full_text_rank::text, semantic_rank::text FROM ref.hybrid_search($1, $2::extensions.vector, $3, $4::jsonb, $5, $6, $7)`,
        [c.text, JSON.stringify(q), c.k, JSON.stringify(c.contains ?? {}), w1, w2, k]);
      assert.ok(reference.length > 0, `the reference finds rows for ${c.text}`);
      const single = await ours('hybrid_notes', c, q);
      assert.deepEqual(shown(single), shown(reference), `hybrid_notes for ${JSON.stringify(c)}`);
      const sharded = await ours('hybrid_snotes', c, q);
      assert.deepEqual(shown(sharded), shown(reference), `hybrid_snotes for ${JSON.stringify(c)}`);
    }
  }
  // The filter holds in both legs: every row of the filtered case is 'de'.
  const rows = await sql<{ lang: string }>(dbs.primary, `SELECT metadata->>'lang' AS lang FROM public.hybrid_notes('hybrid fusion', $1::extensions.vector, 30, '{"lang": {"$eq": "de"}}')`, [JSON.stringify(vec())]);
  assert.ok(rows.length > 0 && rows.every((r) => r.lang === 'de'), `every filtered row is de: ${JSON.stringify(rows)}`);
});

test('hybrid_<c> says plainly what is wrong with its input', async () => {
  const q = JSON.stringify(vec());
  const bad: Array<[string, unknown[], RegExp]> = [
    [`SELECT * FROM public.hybrid_notes(NULL, $1::extensions.vector, 10)`, [q], /query_text must not be null/],
    [`SELECT * FROM public.hybrid_notes('fox', $1::extensions.vector, 0)`, [q], /match_count must be between 1 and 1000/],
    [`SELECT * FROM public.hybrid_notes('fox', '[1,2,3]'::extensions.vector, 10)`, [], /3 dimensions; collection notes has 8/],
    [`SELECT * FROM public.hybrid_notes('fox', $1::extensions.vector, 10, '{}', 1, 1, -1)`, [q], /rrf_k must be 0 or more/],
    [`SELECT * FROM public.hybrid_notes('fox', $1::extensions.vector, 10, '{"lang": {"$bogus": 1}}')`, [q], /./],
  ];
  for (const [text, values, message] of bad) {
    await assert.rejects(sql(dbs.primary, text, values), (e: Error) => message.test(e.message), text);
  }
  // Text that looks like SQL is only text.
  const odd = await sql(dbs.primary, `SELECT * FROM public.hybrid_notes($2, $1::extensions.vector, 5)`, [q, "fox') OR true --'"]);
  assert.ok(odd.length <= 5, 'a hostile query_text is searched for, nothing more');
});

// Owned rows: 1% of `owned` is u1's, 49% u2's, the rest other users' (and a few rows without an owner or with a
// number or an array for one).
const OWNED = 4000;
function ownedRows(prefix: string): Row[] {
  return Array.from({ length: OWNED }, (_, i) => {
    const owner = i % 100 === 0 ? 'u1' : i % 2 === 0 ? 'u2' : `u${3 + (i % 7)}`;
    const metadata: Record<string, unknown> = { content: doc(), owner_id: owner };
    if (i % 97 === 1) delete metadata.owner_id;
    if (i % 89 === 3) metadata.owner_id = ['u1'];
    if (i % 83 === 5) metadata.owner_id = 1;
    return { id: `${prefix}${i}`, embedding: vec(), metadata };
  });
}
await upsert('owned', ownedRows('o'));
await upsert('sowned', ownedRows('s'));
for (const url of [podA, podB]) await sql(url, `ANALYZE`);

const rest = await Rest.connect(dbs.primary);
test.after(() => rest.end());

async function rpc(role: 'anon' | 'authenticated' | 'service_role', claims: Record<string, unknown>, fn: string, args: ReadonlyArray<readonly [string, string, unknown]>): Promise<Array<{ id: string; metadata: Record<string, unknown> }>> {
  return (await rest.request(role, true, (q) => q.rpc(fn, args), claims)) as Array<{ id: string; metadata: Record<string, unknown> }>;
}

test('owned rows: match_<c> and hybrid_<c> through PostgREST return k rows of the caller\'s own, also when they are 1% of the collection', async () => {
  for (const c of ['owned', 'sowned']) {
    for (const [sub, share] of [['u1', '1%'], ['u2', '49%']] as const) {
      for (let i = 0; i < 5; i++) {
        const q = vec();
        const rows = await rpc('authenticated', { role: 'authenticated', sub }, `match_${c}`, [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 10]]);
        assert.equal(rows.length, 10, `${c}: ${sub} (${share}) gets k rows: ${JSON.stringify(rows.map((r) => r.id))}`);
        assert.ok(rows.every((r) => r.metadata.owner_id === sub), `${c}: every row is ${sub}'s: ${JSON.stringify(rows.map((r) => r.metadata.owner_id))}`);
        // The top 10 of the caller's own rows, not a post-filter of a global top 10: the exact answer over its rows.
        const exact = await sql<{ id: string }>(dbs.primary,
          `SELECT id FROM public.${c} WHERE metadata @> $2::jsonb ORDER BY embedding OPERATOR(extensions.<=>) $1::extensions.vector, id LIMIT 10`,
          [JSON.stringify(q), JSON.stringify({ owner_id: sub })]);
        const overlap = rows.filter((r) => exact.some((e) => e.id === r.id)).length;
        assert.ok(overlap >= 7, `${c}: ${sub}'s rows are its nearest (${overlap} of 10 of the exact answer)`);
        const hybrid = await rpc('authenticated', { role: 'authenticated', sub }, `hybrid_${c}`,
          [['query_text', 'text', 'quick dogs'], ['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 10]]);
        assert.equal(hybrid.length, 10, `${c}: hybrid gives ${sub} k rows`);
        assert.ok(hybrid.every((r) => r.metadata.owner_id === sub), `${c}: hybrid rows are all ${sub}'s`);
      }
    }
    const q = vec();
    const noClaim = await rpc('anon', { role: 'anon' }, `match_${c}`, [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 10]]);
    assert.deepEqual(noClaim, [], `${c}: anon without a sub claim gets no rows`);
    const noClaimHybrid = await rpc('anon', { role: 'anon' }, `hybrid_${c}`, [['query_text', 'text', 'dogs'], ['query_embedding', 'extensions.vector', q]]);
    assert.deepEqual(noClaimHybrid, [], `${c}: anon without a sub claim gets no hybrid rows`);
    const anonWithSub = await rpc('anon', { role: 'anon', sub: 'u1' }, `match_${c}`, [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 5]]);
    assert.ok(anonWithSub.length === 5 && anonWithSub.every((r) => r.metadata.owner_id === 'u1'), `${c}: anon restricted like any API role`);
    const all = await rpc('service_role', { role: 'service_role' }, `match_${c}`, [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 50]]);
    assert.ok(new Set(all.map((r) => JSON.stringify(r.metadata.owner_id ?? null))).size > 2, `${c}: service_role sees every owner's rows`);
  }
});

test('owned rows: no filter, claim or direct call widens what a caller sees', async () => {
  const q = vec();
  const hostile = [
    { owner_id: { $eq: 'u2' } },
    { $or: [{ owner_id: { $eq: 'u2' } }, { owner_id: { $ne: 'nobody' } }] },
    { $or: [{ owner_id: { $in: ['u2', 'u3', 'u4'] } }, { content: { $ne: 'x' } }] },
  ];
  for (const c of ['owned', 'sowned']) {
    for (const filter of hostile) {
      const rows = await rpc('authenticated', { role: 'authenticated', sub: 'u1' }, `match_${c}`,
        [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 50], ['filter', 'jsonb', filter]]);
      assert.ok(rows.every((r) => r.metadata.owner_id === 'u1'), `${c}: ${JSON.stringify(filter)} reaches only u1's rows: ${JSON.stringify(rows.map((r) => r.metadata.owner_id))}`);
    }
    // A claim that looks like SQL, a number, an object: only rows whose owner is exactly that string (none).
    for (const sub of ["u1' OR true --", 1, { x: 1 }, ['u1']]) {
      const rows = await rpc('authenticated', { role: 'authenticated', sub }, `match_${c}`, [['query_embedding', 'extensions.vector', q], ['match_count', 'integer', 10]]);
      assert.deepEqual(rows, [], `${c}: claim ${JSON.stringify(sub)} owns nothing`);
    }
  }
  // The SECURITY DEFINER halves called directly apply the same rule (their caller is the role, not their owner).
  const direct = await rest.request('authenticated', false, () =>
    rest.raw.query(`SELECT id FROM vecscale.search_owned($1::extensions.vector, 10, '{}')`, [JSON.stringify(q)]), { role: 'authenticated' });
  assert.equal(direct.rows.length, 0, 'search_owned called directly without a claim returns nothing');
});
