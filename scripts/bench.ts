/**
 * `npm run bench`: top-10 kNN latency and recall, (a) directly on the secondary, (b) through match_* on the primary,
 * (c) through a naive foreign table (the guide's SQL: no `extensions 'vector'` on the server; measured on a sample,
 * it pulls the whole collection). Unfiltered and with a 10%-selective filter. Real data: @sap-ux/fiori-docs-embeddings
 * (778 × 384, all-MiniLM-L6-v2) and Debian's dataset-fashion-mnist (20,000 × 784). Runs in the local sandbox, in
 * databases of its own (vecscale_bench), which it recreates each run. Then (d): the same data as a collection sharded
 * over both secondaries — match_* p50/p95 against (b), recall, and calls 6–10 of a session against calls 1–5.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { apply } from '../src/api.js';
import { parseTopology } from '../src/config/index.js';
import { sessionSettings } from '../src/desired/index.js';
import { fillTemplate, matchQueryTemplate } from '../src/query/match-function.js';
import { sandboxUp, sandboxUrls } from '../src/sandbox/sandbox.js';

const DB = 'vecscale_bench';
const K = 10;
const QUERIES = Number(process.env.BENCH_QUERIES ?? 100);
const FASHION_N = Number(process.env.BENCH_FASHION_N ?? 20000);
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

interface Dataset {
  name: string;
  dimension: number;
  metric: 'cosine' | 'l2';
  rows: Array<{ id: string; vec: number[]; filterValue: number; extra: Record<string, unknown> }>;
  queries: number[][];
  /** Metadata key whose value selects ~10%. */
  filterKey: string;
  naiveSample: number;
}

const vectorText = (v: readonly number[]) => `[${v.map((x) => Number(x.toPrecision(7))).join(',')}]`;

function fiori(): Dataset {
  const dir = join(dirname(createRequire(import.meta.url).resolve('@sap-ux/fiori-docs-embeddings/package.json')), 'data', 'embeddings');
  const records = readFileSync(join(dir, 'records.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; title: string });
  const bin = readFileSync(join(dir, 'embeddings.bin'));
  const vec = (i: number) => Array.from({ length: 384 }, (_, d) => bin.readFloatLE((i * 384 + d) * 4));
  const rows = records.map((r, i) => ({ id: r.id, vec: vec(i), filterValue: i % 10, extra: { title: r.title } }));
  // Queries: passages perturbed slightly, so none is its own exact answer.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.02;
  const queries = Array.from({ length: Math.min(QUERIES, rows.length) }, (_, i) => rows[(i * 7) % rows.length]!.vec.map((x) => x + rand()));
  return { name: 'fiori', dimension: 384, metric: 'cosine', rows, queries, filterKey: 'bucket', naiveSample: 20 };
}

function idx(file: string): Buffer {
  return gunzipSync(readFileSync(join(FASHION_DIR, file)));
}

function fashion(): Dataset {
  const images = idx('train-images-idx3-ubyte.gz');
  const labels = idx('train-labels-idx1-ubyte.gz');
  const test = idx('t10k-images-idx3-ubyte.gz');
  const pixels = (buf: Buffer, i: number) => Array.from(buf.subarray(16 + i * 784, 16 + (i + 1) * 784), (p) => p / 255);
  const rows = Array.from({ length: FASHION_N }, (_, i) => ({ id: `train-${i}`, vec: pixels(images, i), filterValue: labels[8 + i]!, extra: {} }));
  const queries = Array.from({ length: QUERIES }, (_, i) => pixels(test, i));
  return { name: 'fashion', dimension: 784, metric: 'l2', rows, queries, filterKey: 'label', naiveSample: 3 };
}

/**
 * 20,000 × 384 from real data: Fashion-MNIST images through a fixed random projection (784 → 384, Gaussian, seed 1),
 * the size the wrapper's latency target is stated for.
 */
function fashion384(): Dataset {
  const base = fashion();
  let seed = 1;
  const gauss = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const u = (seed + 1) / (2 ** 31 + 1);
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const v = (seed + 1) / (2 ** 31 + 1);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const proj = Array.from({ length: 384 }, () => Float64Array.from({ length: 784 }, gauss));
  const project = (x: number[]) => proj.map((row) => row.reduce((acc, w, j) => acc + w * x[j]!, 0) / Math.sqrt(384));
  return {
    ...base,
    name: 'fashion384',
    dimension: 384,
    rows: base.rows.map((r) => ({ ...r, vec: project(r.vec) })),
    queries: base.queries.map(project),
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

async function recreate(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  const u = new URL(url);
  u.pathname = `/${DB}`;
  return u.toString();
}

async function main(): Promise<void> {
  if (!existsSync(FASHION_DIR)) {
    if (process.getuid?.() === 0) execFileSync('apt-get', ['install', '-y', '-qq', 'dataset-fashion-mnist'], { stdio: 'inherit' });
    else throw new Error(`${FASHION_DIR} is missing: sudo apt-get install dataset-fashion-mnist`);
  }
  const urls = sandboxUrls(await sandboxUp());
  const [pod1, pod2] = Object.values(urls.secondaries);
  const primary = await recreate(urls.primary);
  const secondaries = [await recreate(pod1!), await recreate(pod2!)];
  const sets = [fiori(), fashion(), fashion384()];
  const yaml = `version: 1
primary: { url: "${primary}" }
secondaries:
  pod_a: { url: "${secondaries[0]}" }
  pod_b: { url: "${secondaries[1]}" }
collections:
${sets.map((d, i) => `  ${d.name}: { secondary: ${i % 2 === 0 ? 'pod_a' : 'pod_b'}, dimension: ${d.dimension}, metric: ${d.metric}, columns: { ${d.filterKey}: integer } }`).join('\n')}
${sets.map((d) => `  ${d.name}_sh: { shards: [pod_a, pod_b], dimension: ${d.dimension}, metric: ${d.metric} }`).join('\n')}
`;
  const parsed = parseTopology(yaml, '<bench>', {});
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
  const topology = parsed.topology;
  await apply(topology, { approve: async () => true });

  const results: string[] = [];
  const sharded: string[] = [];
  for (const [i, d] of sets.entries()) {
    const secondaryUrl = secondaries[i % 2]!;
    const spec = topology.collections.find((c) => c.name === d.name)!;
    process.stderr.write(`loading ${d.name}: ${d.rows.length} × ${d.dimension}\n`);
    const sec = new pg.Client({ connectionString: secondaryUrl });
    await sec.connect();
    for (let s = 0; s < d.rows.length; s += 1000) {
      const chunk = d.rows.slice(s, s + 1000);
      await sec.query(`INSERT INTO vecs.${d.name} (id, vec, metadata) SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])`, [
        chunk.map((r) => r.id),
        chunk.map((r) => vectorText(r.vec)),
        chunk.map((r) => JSON.stringify({ [d.filterKey]: r.filterValue, ...r.extra })),
      ]);
    }
    await sec.query(`VACUUM ANALYZE vecs.${d.name}`);
    // (d) the same rows in a collection sharded over both secondaries, written through the primary (routed by id).
    const loader = new pg.Client({ connectionString: primary });
    await loader.connect();
    for (let s = 0; s < d.rows.length; s += 1000) {
      const chunk = d.rows.slice(s, s + 1000);
      await loader.query(`INSERT INTO vecscale_remote.${d.name}_sh (id, embedding, metadata) SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])`, [
        chunk.map((r) => r.id),
        chunk.map((r) => vectorText(r.vec)),
        chunk.map((r) => JSON.stringify({ [d.filterKey]: r.filterValue, ...r.extra })),
      ]);
    }
    await loader.end();
    for (const [j, url] of secondaries.entries()) {
      const shard = new pg.Client({ connectionString: url });
      await shard.connect();
      await shard.query(`VACUUM ANALYZE vecs.${d.name}_sh_p${j}of2`);
      await shard.end();
    }
    for (const [name, value] of sessionSettings(spec.query)) await sec.query('SELECT set_config($1, $2, false)', [name, value]);

    const pri = new pg.Client({ connectionString: primary });
    await pri.connect();
    // (c) the guide's SQL: a server without extensions 'vector', a foreign table over the same view.
    await pri.query(`CREATE SERVER bench_naive_${d.name} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${new URL(secondaryUrl).port}', dbname '${DB}')`);
    await pri.query(`CREATE USER MAPPING FOR CURRENT_USER SERVER bench_naive_${d.name} OPTIONS (user 'postgres', password '${decodeURIComponent(new URL(secondaryUrl).password)}')`);
    await pri.query(`CREATE FOREIGN TABLE public.naive_${d.name} (id varchar, embedding vector(${d.dimension}), metadata jsonb, ${d.filterKey} integer) SERVER bench_naive_${d.name} OPTIONS (schema_name 'vecscale', table_name '${d.name}')`);

    const op = d.metric === 'cosine' ? '<=>' : '<->';
    for (const filtered of [false, true]) {
      const filter = filtered ? JSON.stringify({ [d.filterKey]: { $eq: 3 } }) : '{}';
      const where = filtered ? `WHERE metadata @> '{"${d.filterKey}": 3}'` : '';
      const exact: string[][] = [];
      await sec.query('BEGIN');
      await sec.query('SET LOCAL enable_indexscan = off');
      for (const q of d.queries) exact.push((await sec.query(`SELECT id FROM vecs.${d.name} ${where} ORDER BY vec ${op} $1 LIMIT ${K}`, [vectorText(q)])).rows.map((r) => r.id as string));
      await sec.query('COMMIT');
      const directSql = fillTemplate(matchQueryTemplate(spec, 'public', filtered), filtered ? [`metadata @> '{"${d.filterKey}": 3}'`, String(K)] : [String(K)]);
      const run = async (label: string, fn: (q: string) => Promise<string[]>, queries: number[][]) => {
        for (const q of queries.slice(0, 5)) await fn(vectorText(q)); // warm caches and connections
        const times: number[] = [];
        let hits = 0;
        let rows = 0;
        for (const [qi, q] of queries.entries()) {
          const [ms, ids] = await timed(() => fn(vectorText(q)));
          times.push(ms);
          rows += ids.length;
          hits += ids.filter((id) => exact[qi]!.includes(id)).length;
        }
        return { label, p50: pct(times, 50), p95: pct(times, 95), recall: hits / (queries.length * K), rows: rows / queries.length };
      };
      const a = await run('direct', async (q) => (await sec.query(directSql, [q])).rows.map((r) => r.id as string), d.queries);
      const b = await run('match_*', async (q) => (await pri.query(`SELECT id FROM public.match_${d.name}($1, ${K}, $2::jsonb)`, [q, filter])).rows.map((r) => r.id as string), d.queries);
      const c = await run(
        'naive',
        async (q) => (await pri.query(`SELECT id FROM public.naive_${d.name} ${where} ORDER BY embedding ${op} $1 LIMIT ${K}`, [q])).rows.map((r) => r.id as string),
        d.queries.slice(0, d.naiveSample + 5),
      );
      const sh = await run('sharded match_*', async (q) => (await pri.query(`SELECT id FROM public.match_${d.name}_sh($1, ${K}, $2::jsonb)`, [q, filter])).rows.map((r) => r.id as string), d.queries);
      // Calls 1–5 of a session against calls 6–10 (PL/pgSQL switches to a generic plan after 5 calls; ours EXECUTEs).
      const early: number[] = [];
      const late: number[] = [];
      for (let session = 0; session < 10; session++) {
        const c = new pg.Client({ connectionString: primary });
        await c.connect();
        for (let call = 0; call < 10; call++) {
          const q = vectorText(d.queries[(session * 10 + call) % d.queries.length]!);
          const [ms] = await timed(() => c.query(`SELECT id FROM public.match_${d.name}_sh($1, ${K}, $2::jsonb)`, [q, filter]));
          (call < 5 ? early : late).push(ms);
        }
        await c.end();
      }
      const f = (x: number) => x.toFixed(2);
      sharded.push(
        `| ${d.name} ${d.rows.length}×${d.dimension} | ${filtered ? '10% filter' : 'none'} | ${f(b.p50)} / ${f(b.p95)} | ${f(sh.p50)} / ${f(sh.p95)} | ${f(sh.p50 / b.p50)}× | ${sh.recall.toFixed(3)} | ${f(pct(early, 50))} | ${f(pct(late, 50))} |`,
      );
      process.stderr.write(`${sharded.at(-1)}\n`);
      results.push(
        `| ${d.name} ${d.rows.length}×${d.dimension} | ${filtered ? '10% filter' : 'none'} | ${f(a.p50)} / ${f(a.p95)} | ${f(b.p50)} / ${f(b.p95)} | ${f(c.p50)} / ${f(c.p95)} | ${f(b.p50 / a.p50)}× | ${f(c.p50 / a.p50)}× | ${a.recall.toFixed(3)} | ${b.recall.toFixed(3)} |`,
      );
      process.stderr.write(`${results.at(-1)}\n`);
    }
    await pri.end();
    await sec.end();
  }
  const header = [
    `top-${K} kNN, ${QUERIES} queries per row (naive: a sample), p50 / p95 in ms; recall@${K} against exact search`,
    '',
    '| collection | filter | (a) direct | (b) match_* via primary | (c) naive foreign table | (b)/(a) p50 | (c)/(a) p50 | recall (a) | recall (b) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const shardedHeader = [
    '',
    `The same data sharded over 2 secondaries (2 hash partitions, defaults: HNSW m 16, ef_search 100, iterative scan), through the primary; session calls: 10 fresh sessions`,
    '',
    '| collection | filter | (b) match_* one secondary | (d) match_* sharded | (d)/(b) p50 | recall (d) | calls 1–5 p50 | calls 6–10 p50 |',
    '|---|---|---|---|---|---|---|---|',
  ];
  process.stdout.write(`${[...header, ...results, ...shardedHeader, ...sharded].join('\n')}\n`);
}

await main();
