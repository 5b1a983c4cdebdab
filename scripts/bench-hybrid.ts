/**
 * `npm run bench:hybrid` — hybrid_<c> against match_<c> and against the same hybrid search run on the pod itself, on
 * the demo's real data (run `npm run demo` first: docs holds 778 SAP Fiori passages with all-MiniLM-L6-v2 vectors,
 * `text: { source: content }`). Interleaved calls, each with another passage's vector and title words as the query;
 * p50 and p95 in ms. `--calls N` (default 300).
 *
 * "on the pod" is text_sql_docs's own statement run directly on pod_text (both legs, no fan-out), with the RRF merge
 * of the same rows done there: what one database would take.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';

const at = process.argv.indexOf('--calls');
const calls = at > 0 ? Number(process.argv[at + 1]) : 300;
if (!Number.isInteger(calls) || calls < 1) throw new Error('--calls takes a whole number of calls');
const sandbox = JSON.parse(readFileSync('.vecscale/demo-sandbox.json', 'utf8')) as { primary: string; secondaries: Record<string, string> };
const primary = new pg.Client({ connectionString: sandbox.primary });
const pod = new pg.Client({ connectionString: sandbox.secondaries.pod_1! });
await primary.connect();
await pod.connect();
try {
  const rows = (await pod.query<{ id: string; vec: string; title: string }>(`SELECT id, vec::text AS vec, metadata->>'title' AS title FROM vecs.docs ORDER BY id`)).rows;
  if (rows.length === 0) throw new Error('vecs.docs on pod_1 is empty: run `npm run demo` first');
  const words = (t: string) => t.split(/\W+/).filter((w) => w.length > 3).slice(0, 3).join(' ') || 'deploy';
  const times: Record<string, number[]> = { match: [], hybrid: [], 'hybrid, statement on the pod': [] };
  const time = async (name: string, run: () => Promise<unknown>) => {
    const t0 = performance.now();
    await run();
    times[name]!.push(performance.now() - t0);
  };
  for (let i = 0; i < calls + 20; i++) {
    const r = rows[(i * 37) % rows.length]!;
    const text = words(r.title);
    const warm = i < 20;
    const sql = (await primary.query<{ s: string[] }>(`SELECT vecscale.text_sql_docs($1, $2::public.vector, 10, '{}') AS s`, [text, r.vec])).rows[0]!.s[0]!;
    const runs: Array<[string, () => Promise<unknown>]> = [
      ['match', () => primary.query(`SELECT id FROM public.match_docs($1::public.vector, 10)`, [r.vec])],
      ['hybrid', () => primary.query(`SELECT id FROM public.hybrid_docs($1, $2::public.vector, 10)`, [text, r.vec])],
      ['hybrid, statement on the pod', () => pod.query(sql)],
    ];
    for (const [name, run] of i % 2 === 0 ? runs : [...runs].reverse()) {
      if (warm) await run();
      else await time(name, run);
    }
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  console.log(`${calls} calls each, interleaved, on ${rows.length} rows (demo docs, 384 dims, HNSW m16 efc64):`);
  for (const [name, xs] of Object.entries(times)) console.log(`  ${name.padEnd(30)} p50 ${pct(xs, 0.5).toFixed(2)} ms   p95 ${pct(xs, 0.95).toFixed(2)} ms`);
} finally {
  await primary.end();
  await pod.end();
}
