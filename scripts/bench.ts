/**
 * `npm run bench`: the query path and the write path through the primary, against the same work done directly on a
 * secondary ("pod"). Runs in the local sandbox, in databases of its own (vecscale_bench), which it recreates each run.
 * The Markdown report goes to stdout, progress to stderr.
 *
 * Search (BENCH_ONLY=search): top-10 kNN latency and recall@10 against exact search (a sequential scan on the pod),
 * unfiltered and with a 10%-selective filter, on real data: @sap-ux/fiori-docs-embeddings (778 × 384,
 * all-MiniLM-L6-v2), Debian's dataset-fashion-mnist (BENCH_FASHION_N × 784) and the same images through a fixed random
 * projection to 384 dimensions. Variants, interleaved query by query in a rotating order so that their ratios survive
 * a noisy machine:
 *   (a) the statement match_<c> sends, run directly on the pod;
 *   (b) match_<c> on the primary, the collection on one pod;
 *   (d) match_<c> of the same data sharded over both pods (2 hash partitions);
 *   (e) the same with 4 partitions on the 2 pods (two partitions share each pod);
 *   (c) the guide's naive foreign table (no `extensions 'vector'`: it pulls the collection), on a small sample.
 * Then match_<c> on fashion with the per-call `ef_search => n`.
 *
 * Writes (BENCH_ONLY=writes): 20k × 384 rows (fashion384's vectors) into collections without a vector index, 3
 * interleaved rounds, median rows/s against (w0) a direct COPY into vecs.<c> on the pod.
 *
 * Knobs: BENCH_QUERIES (default 100), BENCH_FASHION_N (default 20000), BENCH_ONLY=search|writes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { apply } from '../src/api.js';
import { parseTopology } from '../src/config/index.js';
import type { CollectionSpec } from '../src/config/types.js';
import { sessionSettings } from '../src/desired/index.js';
import { partsOf } from '../src/model/placement.js';
import { fillTemplate, matchQueryTemplate } from '../src/query/match-function.js';
import { findPostgres } from '../src/sandbox/pg-bin.js';
import { sandboxUp, sandboxUrls } from '../src/sandbox/sandbox.js';

const DB = 'vecscale_bench';
const K = 10;
const QUERIES = Number(process.env.BENCH_QUERIES ?? 100);
const FASHION_N = Number(process.env.BENCH_FASHION_N ?? 20000);
const ONLY = process.env.BENCH_ONLY ?? '';
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WARMUP = 5;
const WRITE_ROUNDS = 3;
const UPSERT_BATCH = 1000;
const EF_SEARCH = [10, 40, 100, 400];
const GOAL = { matchOverDirect: 1.15, shardedOverOnePod: 1.1, recall: 0.99, writeViaPrimary: 0.7, load: 0.8 };

if (!['', 'search', 'writes'].includes(ONLY)) throw new Error(`BENCH_ONLY must be search or writes (got ${ONLY})`);
const doSearch = ONLY !== 'writes';
const doWrites = ONLY !== 'search';

interface Row {
  id: string;
  vec: number[];
  filterValue: number;
  extra: Record<string, unknown>;
}

interface Dataset {
  name: string;
  dimension: number;
  metric: 'cosine' | 'l2';
  rows: Row[];
  queries: number[][];
  /** Metadata key whose value 3 selects ~10%. */
  filterKey: string;
  /** Queries the naive foreign table (c) runs: it pulls the whole collection each time. */
  naiveSample: number;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const round7 = (x: number) => Number(x.toPrecision(7));
const vectorText = (v: readonly number[]) => `[${v.map(round7).join(',')}]`;
const metadataOf = (d: Dataset, r: Row) => ({ [d.filterKey]: r.filterValue, ...r.extra });

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
function fashion384(base: Dataset): Dataset {
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

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const median = (xs: readonly number[]) => pct(xs, 50);

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

/** `xs` rotated left by `n`: the order variants run in for query (or round) n. */
const rotated = <T>(xs: readonly T[], n: number): T[] => xs.map((_, i) => xs[(i + n) % xs.length]!);

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

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '—');
const ratio = (x: number, goal?: number, atMost = true) =>
  `${f2(x)}×${goal === undefined || !Number.isFinite(x) ? '' : (atMost ? x <= goal : x >= goal) ? ' ✓' : ' ✗'}`;
const rec = (x: number) => `${x.toFixed(3)}${x >= GOAL.recall ? '' : ' ✗'}`;

// ---------------------------------------------------------------------------------------------------------------
// Search

interface Variant {
  key: string;
  /** The top-K ids for the query vector (its literal). */
  run: (q: string) => Promise<string[]>;
  /** Only the first `sample` queries (default: all). */
  sample?: number;
  warmup?: number;
}

interface Measured {
  times: number[];
  p50: number;
  p95: number;
  recall: number;
}

/**
 * Every query through every variant, the order rotating from query to query; each variant warmed up first (its
 * connections, the pods' caches).
 */
async function interleaved(variants: readonly Variant[], queries: readonly string[], exact: readonly string[][]): Promise<Map<string, Measured>> {
  for (const [i, v] of rotated(variants, 0).entries()) {
    for (let w = 0; w < (v.warmup ?? WARMUP); w++) await v.run(queries[(w + i) % queries.length]!);
  }
  const times = new Map<string, number[]>(variants.map((v) => [v.key, []]));
  const hits = new Map<string, number>(variants.map((v) => [v.key, 0]));
  for (const [qi, q] of queries.entries()) {
    for (const v of rotated(variants, qi)) {
      if (qi >= (v.sample ?? Infinity)) continue;
      const [ms, ids] = await timed(() => v.run(q));
      times.get(v.key)!.push(ms);
      hits.set(v.key, hits.get(v.key)! + ids.filter((id) => exact[qi]!.includes(id)).length);
    }
  }
  return new Map(
    variants.map((v) => {
      const t = times.get(v.key)!;
      return [v.key, { times: t, p50: pct(t, 50), p95: pct(t, 95), recall: hits.get(v.key)! / (t.length * K) }];
    }),
  );
}

/**
 * Loads rows into a collection's tables with their vector indexes dropped and rebuilt after (a bulk build is several
 * times faster than inserting into HNSW; the index is the same: its own definition, name and comment).
 */
async function withIndexesRebuilt(c: CollectionSpec, podUrls: Record<string, string>, load: () => Promise<void>): Promise<void> {
  const saved: Array<{ url: string; table: string; defs: Array<{ name: string; def: string; comment: string | null }> }> = [];
  for (const p of partsOf(c)) {
    const pod = await connect(podUrls[p.secondary]!);
    const r = await pod.query(
      `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def, obj_description(i.oid, 'pg_class') AS comment
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = $1::regclass AND NOT x.indisprimary`,
      [`vecs.${p.table}`],
    );
    for (const d of r.rows) await pod.query(`DROP INDEX vecs.${pg.escapeIdentifier(d.name as string)}`);
    saved.push({ url: podUrls[p.secondary]!, table: p.table, defs: r.rows as never });
    await pod.end();
  }
  await load();
  for (const s of saved) {
    const pod = await connect(s.url);
    await pod.query(`SET maintenance_work_mem = '256MB'`);
    for (const d of s.defs) {
      await pod.query(d.def);
      if (d.comment !== null) await pod.query(`COMMENT ON INDEX vecs.${pg.escapeIdentifier(d.name)} IS ${pg.escapeLiteral(d.comment)}`);
    }
    await pod.query(`VACUUM ANALYZE vecs.${s.table}`);
    await pod.end();
  }
}

async function insertChunks(client: pg.Client, table: string, vecColumn: string, d: Dataset): Promise<void> {
  for (let s = 0; s < d.rows.length; s += 1000) {
    const chunk = d.rows.slice(s, s + 1000);
    await client.query(`INSERT INTO ${table} (id, ${vecColumn}, metadata) SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[])`, [
      chunk.map((r) => r.id),
      chunk.map((r) => vectorText(r.vec)),
      chunk.map((r) => JSON.stringify(metadataOf(d, r))),
    ]);
  }
}

interface SearchOutput {
  main: string[];
  naive: string[];
  ef: string[];
}

async function benchSearch(sets: readonly Dataset[], topology: { collections: readonly CollectionSpec[] }, primary: string, podUrls: Record<string, string>): Promise<SearchOutput> {
  const out: SearchOutput = { main: [], naive: [], ef: [] };
  const spec = (name: string) => topology.collections.find((c) => c.name === name)!;
  for (const d of sets) {
    const one = spec(d.name);
    const podUrl = podUrls[one.secondary!]!;
    log(`loading ${d.name}: ${d.rows.length} × ${d.dimension} (one pod, 2 partitions, 4 partitions)`);
    await withIndexesRebuilt(one, podUrls, async () => {
      const pod = await connect(podUrl);
      await insertChunks(pod, `vecs.${d.name}`, 'vec', d);
      await pod.end();
    });
    for (const sh of [`${d.name}_sh`, `${d.name}_sh4`]) {
      // Through the primary's partitioned table: PostgreSQL routes each row to its partition.
      await withIndexesRebuilt(spec(sh), podUrls, async () => {
        const loader = await connect(primary);
        await insertChunks(loader, `vecscale_remote.${sh}`, 'embedding', d);
        await loader.end();
      });
    }

    const pod = await connect(podUrl);
    for (const [name, value] of sessionSettings(one.query)) await pod.query('SELECT set_config($1, $2, false)', [name, value]);
    const admin = await connect(primary);
    // (c) the guide's SQL: a server without extensions 'vector', a foreign table over the same view.
    const u = new URL(podUrl);
    await admin.query(`CREATE SERVER bench_naive_${d.name} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${u.port}', dbname '${DB}')`);
    await admin.query(`CREATE USER MAPPING FOR CURRENT_USER SERVER bench_naive_${d.name} OPTIONS (user 'postgres', password '${decodeURIComponent(u.password)}')`);
    await admin.query(`CREATE FOREIGN TABLE public.naive_${d.name} (id varchar, embedding vector(${d.dimension}), metadata jsonb) SERVER bench_naive_${d.name} OPTIONS (schema_name 'vecscale', table_name '${d.name}')`);
    // One session per variant on the primary (each keeps its own dblink connections).
    const clients = { b: await connect(primary), c: await connect(primary), d: await connect(primary), e: await connect(primary) };

    const op = d.metric === 'cosine' ? '<=>' : '<->';
    const queries = d.queries.map(vectorText);
    for (const filtered of [false, true]) {
      const filter = filtered ? JSON.stringify({ [d.filterKey]: { $eq: 3 } }) : '{}';
      const where = filtered ? `WHERE metadata @> '{"${d.filterKey}": 3}'` : '';
      log(`${d.name} ${filtered ? '10% filter' : 'unfiltered'}: exact answers`);
      const exact: string[][] = [];
      await pod.query('BEGIN');
      await pod.query('SET LOCAL enable_indexscan = off');
      for (const q of queries) exact.push((await pod.query(`SELECT id FROM vecs.${d.name} ${where} ORDER BY vec ${op} $1 LIMIT ${K}`, [q])).rows.map((r) => r.id as string));
      await pod.query('COMMIT');
      // (a): the statement match_<c> sends (its filter compiled by the primary's own filter_sql), the vector a parameter.
      const whereSql = (await admin.query('SELECT vecscale.filter_sql($1::jsonb) AS w', [filter])).rows[0]!.w as string | null;
      const directSql = fillTemplate(matchQueryTemplate(one, 'public', whereSql !== null), whereSql !== null ? [whereSql, String(K)] : [String(K)]);
      const ids = (r: pg.QueryResult) => r.rows.map((x) => x.id as string);
      const match = (client: pg.Client, c: string) => async (q: string) => ids(await client.query(`SELECT id FROM public.match_${c}($1, ${K}, $2::jsonb)`, [q, filter]));
      log(`${d.name} ${filtered ? '10% filter' : 'unfiltered'}: ${queries.length} queries × (a) (b) (d) (e), (c) on ${Math.min(d.naiveSample, queries.length)}`);
      const m = await interleaved(
        [
          { key: 'a', run: async (q) => ids(await pod.query(directSql, [q])) },
          { key: 'b', run: match(clients.b, d.name) },
          { key: 'd', run: match(clients.d, `${d.name}_sh`) },
          { key: 'e', run: match(clients.e, `${d.name}_sh4`) },
          {
            key: 'c',
            run: async (q) => ids(await clients.c.query(`SELECT id FROM public.naive_${d.name} ${where} ORDER BY embedding ${op} $1 LIMIT ${K}`, [q])),
            sample: d.naiveSample,
            warmup: 1,
          },
        ],
        queries,
        exact,
      );
      const [a, b, dd, e, c] = (['a', 'b', 'd', 'e', 'c'] as const).map((k) => m.get(k)!);
      const label = `${d.name} ${d.rows.length}×${d.dimension}`;
      const pp = (x: Measured) => `${f2(x.p50)} / ${f2(x.p95)}`;
      out.main.push(
        `| ${label} | ${filtered ? '10%' : 'none'} | ${pp(a!)} | ${pp(b!)} | ${pp(dd!)} | ${pp(e!)} | ${ratio(b!.p50 / a!.p50, GOAL.matchOverDirect)} | ${ratio(dd!.p50 / b!.p50, GOAL.shardedOverOnePod)} | ${ratio(e!.p50 / b!.p50)} | ${[a!, b!, dd!, e!].map((x) => rec(x.recall)).join(' / ')} |`,
      );
      log(out.main.at(-1)!);
      out.naive.push(`| ${label} | ${filtered ? '10%' : 'none'} | ${c!.times.length} | ${pp(c!)} | ${f2(c!.p50 / a!.p50)}× | ${c!.recall.toFixed(3)} |`);

      if (d.name === 'fashion' && !filtered) {
        log(`${d.name}: per-call ef_search ${EF_SEARCH.join(', ')} through match_${d.name}`);
        const efs = await interleaved(
          EF_SEARCH.map((n) => ({
            key: String(n),
            run: async (q: string) => ids(await clients.b.query(`SELECT id FROM public.match_${d.name}($1, ${K}, '{}'::jsonb, ef_search => ${n})`, [q])),
          })),
          queries,
          exact,
        );
        for (const n of EF_SEARCH) {
          const x = efs.get(String(n))!;
          out.ef.push(`| ${n}${n === one.query.efSearch ? ' (default)' : ''} | ${f2(x.p50)} | ${f2(x.p95)} | ${x.recall.toFixed(3)} |`);
        }
      }
    }
    for (const c of Object.values(clients)) await c.end();
    await admin.end();
    await pod.end();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Writes

interface WriteVariant {
  key: string;
  label: string;
  collection: CollectionSpec;
  run: () => Promise<void>;
  goal?: number;
}

/** `vecscale load` as bin/vecscale has it (dist/, rebuilt by the lead): absent until its command exists. */
function loadCommandPresent(): boolean {
  try {
    const help = execFileSync(join(ROOT, 'bin', 'vecscale'), ['load', '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /vecscale load/.test(help);
  } catch {
    return false;
  }
}

async function benchWrites(d: Dataset, topology: { collections: readonly CollectionSpec[] }, topologyFile: string, primary: string, podUrls: Record<string, string>, work: string): Promise<string[]> {
  const single = topology.collections.find((c) => c.name === 'w1')!;
  const sharded = topology.collections.find((c) => c.name === 'w2')!;
  const n = d.rows.length;
  const psql = join(findPostgres().bindir, 'psql');
  const copy = (url: string, target: string, file: string) => () => {
    execFileSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', `\\copy ${target} FROM '${file}'`], { stdio: ['ignore', 'ignore', 'pipe'] });
    return Promise.resolve();
  };
  log(`writes: preparing ${n} × ${d.dimension} rows`);
  const tsv = join(work, 'rows.tsv');
  writeFileSync(tsv, d.rows.map((r) => `${r.id}\t${vectorText(r.vec)}\t${JSON.stringify(metadataOf(d, r))}\n`).join(''));
  const jsonl = join(work, 'rows.jsonl');
  const jsonRows = d.rows.map((r) => ({ id: r.id, embedding: r.vec.map(round7), metadata: metadataOf(d, r) }));
  writeFileSync(jsonl, jsonRows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const batches: string[] = [];
  for (let s = 0; s < n; s += UPSERT_BATCH) batches.push(JSON.stringify(jsonRows.slice(s, s + UPSERT_BATCH)));

  const admin = await connect(primary);
  await admin.query(`CREATE TABLE public.bench_src (id varchar PRIMARY KEY, embedding vector(${d.dimension}), metadata jsonb)`);
  await copy(primary, 'public.bench_src (id, embedding, metadata)', tsv)();
  await admin.query('VACUUM ANALYZE public.bench_src');
  const writer = await connect(primary);

  const variants: WriteVariant[] = [
    { key: 'w0', label: 'direct `COPY` into vecs.<c> on the pod', collection: single, run: copy(podUrls[single.secondary!]!, 'vecs.w1 (id, vec, metadata)', tsv) },
    { key: 'w1', label: '`COPY` into public.<c> on the primary, one pod', collection: single, run: copy(primary, 'public.w1 (id, embedding, metadata)', tsv), goal: GOAL.writeViaPrimary },
    { key: 'w2', label: '`COPY` into public.<c> on the primary, sharded (2 partitions)', collection: sharded, run: copy(primary, 'public.w2 (id, embedding, metadata)', tsv), goal: GOAL.writeViaPrimary },
    ...[single, sharded].map((c) => ({
      key: 'w3',
      label: `\`INSERT INTO public.<c> … SELECT\` from a primary table, ${c.shards ? 'sharded' : 'one pod'}`,
      collection: c,
      run: async () => void (await writer.query(`INSERT INTO public.${c.name} (id, embedding, metadata) SELECT id, embedding, metadata FROM public.bench_src`)),
      goal: GOAL.writeViaPrimary,
    })),
    ...[single, sharded].map((c) => ({
      key: 'w4',
      label: `\`upsert_<c>(rows jsonb)\`, ${UPSERT_BATCH} rows a call, ${c.shards ? 'sharded' : 'one pod'}`,
      collection: c,
      run: async () => {
        for (const b of batches) await writer.query(`SELECT public.upsert_${c.name}($1::jsonb)`, [b]);
      },
    })),
  ];
  const haveLoad = loadCommandPresent();
  if (haveLoad) {
    for (const c of [single, sharded]) {
      variants.push({
        key: 'w5',
        label: `\`vecscale load\` (JSON lines), ${c.shards ? 'sharded' : 'one pod'}`,
        collection: c,
        run: () => {
          execFileSync(join(ROOT, 'bin', 'vecscale'), ['load', c.name, jsonl, '-f', topologyFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
          return Promise.resolve();
        },
        goal: GOAL.load,
      });
    }
  } else log('writes: `vecscale load` is not in bin/vecscale (dist/) yet: (w5) skipped');

  const pods = new Map<string, pg.Client>();
  for (const [name, url] of Object.entries(podUrls)) pods.set(name, await connect(url));
  const truncate = async (c: CollectionSpec) => {
    for (const p of partsOf(c)) await pods.get(p.secondary)!.query(`TRUNCATE vecs.${p.table}`);
  };
  const count = async (c: CollectionSpec) => {
    let total = 0;
    for (const p of partsOf(c)) total += Number((await pods.get(p.secondary)!.query(`SELECT count(*) AS n FROM vecs.${p.table}`)).rows[0]!.n);
    return total;
  };

  const rates = new Map<WriteVariant, number[]>(variants.map((v) => [v, []]));
  const problems = new Map<WriteVariant, string>();
  for (let round = 0; round < WRITE_ROUNDS; round++) {
    for (const v of rotated(variants, round)) {
      await truncate(v.collection);
      for (const p of pods.values()) await p.query('CHECKPOINT');
      try {
        const [ms] = await timed(v.run);
        const landed = await count(v.collection);
        if (landed !== n) problems.set(v, `${landed} of ${n} rows landed`);
        rates.get(v)!.push(n / (ms / 1000));
        log(`writes round ${round + 1}: ${v.key} ${v.collection.name} ${Math.round(n / (ms / 1000))} rows/s`);
      } catch (e) {
        const msg = ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim().split('\n')[0]!;
        problems.set(v, `failed: ${msg.slice(0, 120)}`);
        log(`writes round ${round + 1}: ${v.key} ${v.collection.name} failed: ${msg}`);
      }
    }
  }
  await truncate(single);
  await truncate(sharded);
  for (const p of pods.values()) await p.end();
  await writer.end();
  await admin.end();

  const base = median(rates.get(variants[0]!)!);
  const rows = variants.map((v) => {
    const r = median(rates.get(v)!);
    const goal = v.goal === undefined ? '' : `≥ ${v.goal}×`;
    const note = problems.get(v) ?? '';
    return `| (${v.key}) ${v.label} | ${Number.isFinite(r) ? Math.round(r).toLocaleString('en-US') : '—'} | ${v.key === 'w0' ? '1.00×' : ratio(r / base, v.goal, false)} | ${goal} | ${note} |`;
  });
  if (!haveLoad) rows.push('| (w5) `vecscale load` | — | — | ≥ 0.8× | skipped: `vecscale load` is not in bin/vecscale (dist/) yet |');
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  if (!existsSync(FASHION_DIR)) {
    if (process.getuid?.() === 0) execFileSync('apt-get', ['install', '-y', '-qq', 'dataset-fashion-mnist'], { stdio: 'inherit' });
    else throw new Error(`${FASHION_DIR} is missing: sudo apt-get install dataset-fashion-mnist`);
  }
  const urls = sandboxUrls(await sandboxUp());
  const [pod1, pod2] = Object.values(urls.secondaries);
  const primary = await recreate(urls.primary);
  const podUrls = { pod_a: await recreate(pod1!), pod_b: await recreate(pod2!) };
  log('reading the data sets');
  const fashionSet = fashion();
  const f384 = fashion384(fashionSet);
  const sets = doSearch ? [fiori(), fashionSet, f384] : [];
  const yaml = `version: 1
primary: { url: "${primary}" }
secondaries:
  pod_a: { url: "${podUrls.pod_a}", fdw_user: vecscale_bench_fdw }
  pod_b: { url: "${podUrls.pod_b}", fdw_user: vecscale_bench_fdw }
collections:
${sets.map((d, i) => `  ${d.name}: { secondary: ${i % 2 === 0 ? 'pod_a' : 'pod_b'}, dimension: ${d.dimension}, metric: ${d.metric} }`).join('\n')}
${sets.map((d) => `  ${d.name}_sh: { shards: [pod_a, pod_b], dimension: ${d.dimension}, metric: ${d.metric} }`).join('\n')}
${sets.map((d) => `  ${d.name}_sh4: { shards: [pod_a, pod_b], partitions: 4, dimension: ${d.dimension}, metric: ${d.metric} }`).join('\n')}
${doWrites ? `  w1: { secondary: pod_a, dimension: ${f384.dimension}, metric: l2, index: { method: none } }
  w2: { shards: [pod_a, pod_b], dimension: ${f384.dimension}, metric: l2, index: { method: none } }` : ''}
`;
  const work = mkdtempSync(join(tmpdir(), 'vecscale-bench-'));
  const topologyFile = join(work, 'topology.yaml');
  writeFileSync(topologyFile, yaml, { mode: 0o600 });
  const parsed = parseTopology(yaml, topologyFile, {});
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
  const topology = parsed.topology;
  log('apply');
  const applied = await apply(topology, { approve: async () => true });
  if (applied.status !== 'applied') throw new Error(`apply: ${applied.status}: ${JSON.stringify(applied.plan.blockers)}`);

  const doc: string[] = [`# vecscale bench`, '', `Sandbox (local clusters, loopback), ${new Date().toISOString().slice(0, 16)}Z; BENCH_QUERIES=${QUERIES}, BENCH_FASHION_N=${FASHION_N}${ONLY ? `, BENCH_ONLY=${ONLY}` : ''}.`];
  try {
    if (doSearch) {
      const s = await benchSearch(sets, topology, primary, podUrls);
      doc.push(
        '',
        `Top-${K} kNN, ${QUERIES} queries per row (fiori: ${Math.min(QUERIES, 778)}), p50 / p95 in ms, variants interleaved query by query in a rotating order after ${WARMUP} warm-up calls each; HNSW m 16, ef_construction 64, ef_search 100, iterative scan relaxed_order; recall@${K} against exact search (sequential scan on the pod). (a) the statement match_<c> sends (same filter SQL, the vector as a parameter) run directly on the pod, (b) match_<c> on the primary with the collection on one pod, (d) the same data sharded over 2 pods (2 partitions), (e) 4 partitions on the 2 pods.`,
        '',
        `| data set | filter | (a) direct | (b) one pod | (d) 2 partitions | (e) 4 on 2 pods | (b)/(a) p50, goal ≤ ${GOAL.matchOverDirect} | (d)/(b) p50, goal ≤ ${GOAL.shardedOverOnePod} | (e)/(b) p50 | recall (a) / (b) / (d) / (e), goal ≥ ${GOAL.recall} |`,
        '|---|---|---|---|---|---|---|---|---|---|',
        ...s.main,
        '',
        `(c) The guide's naive foreign table (postgres_fdw without \`extensions 'vector'\`: it pulls the collection for every query), on a sample, interleaved with the above; p50 / p95 in ms.`,
        '',
        '| data set | filter | queries | (c) naive | (c)/(a) p50 | recall (c) |',
        '|---|---|---|---|---|---|',
        ...s.naive,
        '',
        `Per-call \`ef_search => n\` through match_fashion (fashion ${FASHION_N}×784, l2, one pod, unfiltered, HNSW m 16), ${QUERIES} queries interleaved; ms; recall@${K} against exact search.`,
        '',
        '| ef_search | p50 | p95 | recall@10 |',
        '|---|---|---|---|',
        ...s.ef,
      );
    }
    if (doWrites) {
      const w = await benchWrites(f384, topology, topologyFile, primary, podUrls, work);
      doc.push(
        '',
        `Bulk writes: ${f384.rows.length} × ${f384.dimension} rows (fashion384's vectors, metadata {label}) into empty collections without a vector index (\`index: { method: none }\`; one pod: pod_a, sharded: 2 partitions on pod_a and pod_b), ${WRITE_ROUNDS} interleaved rounds, targets truncated before each run; median rows/s and its ratio to (w0). COPY runs psql's \\copy from a TSV file; upsert and INSERT … SELECT autocommit per statement.`,
        '',
        '| variant | rows/s | ratio to (w0) | goal | note |',
        '|---|---|---|---|---|',
        ...w,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  doc.push('', `Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  process.stdout.write(`${doc.join('\n')}\n`);
}

await main();
