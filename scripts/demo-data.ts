/**
 * Demo data: 778 real passages with all-MiniLM-L6-v2 embeddings (@sap-ux/fiori-docs-embeddings, Apache-2.0),
 * written as JSON lines that scripts/demo.sh loads with `vecscale load docs … --upsert` (straight to pod_text); then
 * a top-5 similarity query answered by the primary through the wrapper (public.docs), with the remote SQL
 * postgres_fdw shipped, the same question through match_docs, and hybrid_docs (full text and vectors).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { table } from '../src/cli/output.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through scripts/demo.sh)`);
  return v;
};
const url = (port: string) => `postgresql://postgres:${env('SANDBOX_PASSWORD')}@127.0.0.1:${port}/postgres`;

const dataDir = join(dirname(createRequire(import.meta.url).resolve('@sap-ux/fiori-docs-embeddings/package.json')), 'data', 'embeddings');
const records = readFileSync(join(dataDir, 'records.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { id: string; title: string; category: string; content: string });
const bin = readFileSync(join(dataDir, 'embeddings.bin'));
const DIM = 384;
const vector = (i: number): string => {
  const out: string[] = [];
  for (let d = 0; d < DIM; d++) out.push(bin.readFloatLE((i * DIM + d) * 4).toPrecision(7));
  return `[${out.join(',')}]`;
};

// `demo-data.ts rows <file>`: the passages as JSON lines for `vecscale load`; `demo-data.ts query`: ask the primary.
const [mode, file] = process.argv.slice(2);
if (mode === 'rows') {
  const lines = records.map((r, i) => JSON.stringify({ id: r.id, embedding: JSON.parse(vector(i)) as number[], metadata: { title: r.title, category: r.category, content: r.content } }));
  writeFileSync(file!, `${lines.join('\n')}\n`);
  console.log(`wrote ${records.length} passages to ${file}`);
  process.exit(0);
}

const primary = new pg.Client({ connectionString: url(env('PRIMARY_PORT')) });
await primary.connect();
try {
  const probe = records.findIndex((r) => /deploy/i.test(r.title));
  const q = vector(probe);
  console.log(`\nquery: the 5 passages nearest to "${records[probe]!.title}", asked of the primary (public.docs):\n`);
  const sql = `SELECT id, title, category, embedding <=> $1 AS distance FROM public.docs ORDER BY embedding <=> $1 LIMIT 5`;
  const rows = (await primary.query<{ id: string; title: string; category: string; distance: number }>(sql, [q])).rows;
  console.log(table(['id', 'title', 'category', 'distance'], rows.map((r) => [r.id, r.title.slice(0, 60), r.category, r.distance.toFixed(4)])));
  const plan = (await primary.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE, COSTS OFF) ${sql}`, [q])).rows;
  const remote = plan.map((r) => r['QUERY PLAN']).find((l) => l.includes('Remote SQL')) ?? '';
  console.log(`\npostgres_fdw shipped to pod_text:${remote.replace(/'\[[^\]]*\]'/g, "'[…384 floats…]'").replace(/^\s*Remote SQL:/, '')}`);

  // The same question through the RPC function, with vecs' filter language (what supabase-js rpc() calls).
  const filter = { category: { $eq: 'Sapui5' } };
  console.log(`\nmatch_docs(query, 5, '${JSON.stringify(filter)}') on the primary:\n`);
  const matches = (await primary.query<{ id: string; title: string; distance: number }>(
    'SELECT id, title, distance FROM public.match_docs($1, 5, $2::jsonb)', [q, JSON.stringify(filter)])).rows;
  console.log(table(['id', 'title', 'distance'], matches.map((r) => [r.id, r.title.slice(0, 60), r.distance.toFixed(4)])));

  // Hybrid search (docs has text: { source: content }): full text and the same vector, fused by RRF.
  const words = 'deploy application';
  console.log(`\nhybrid_docs('${words}', query, 5) on the primary (full text over metadata->>'content' and vectors, Reciprocal Rank Fusion):\n`);
  const hybrid = (await primary.query<{ id: string; title: string; score: number; full_text_rank: number | null; semantic_rank: number | null }>(
    `SELECT id, metadata->>'title' AS title, score, full_text_rank, semantic_rank FROM public.hybrid_docs($1, $2, 5)`, [words, q])).rows;
  console.log(table(['id', 'title', 'score', 'text rank', 'vector rank'],
    hybrid.map((r) => [r.id, r.title.slice(0, 50), r.score.toFixed(5), String(r.full_text_rank ?? '-'), String(r.semantic_rank ?? '-')])));
} finally {
  await primary.end();
}
