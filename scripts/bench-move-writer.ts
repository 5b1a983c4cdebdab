/**
 * The steady application of `npm run bench:move`: writers through the primary (INSERT/UPDATE/DELETE on public.<c>
 * and upsert_<c>, each statement its own transaction, latency measured per statement), a light reader (match_<c>),
 * and afterwards the check that the target holds exactly the rows the committed statements imply.
 *
 * Each writer connection owns a disjoint set of ids (initial rows `r<g>` with g mod connections = its number, and the
 * ids it creates), so the expected state never depends on the commit order of two connections.
 */
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';

const CONNECTIONS = 2;
const READ_RATE = 5;

export interface Latency {
  /** Start, ms on the writer's clock. */
  readonly start: number;
  readonly ms: number;
  readonly op: string;
}

export interface WriterReport {
  readonly latencies: readonly Latency[];
  readonly errors: readonly string[];
  readonly reads: readonly Latency[];
  readonly readErrors: readonly string[];
  /** Rows the target must hold. */
  readonly expected: number;
  /** Expected ids absent from the target. */
  readonly missing: number;
  /** Ids present with other metadata or vector than expected. */
  readonly wrong: number;
  /** Ids on the target that should not be there (deleted, or never written). */
  readonly extra: number;
  /** Rows the primary's public.<c> returns after the move. */
  readonly primaryRows: number;
}

export interface WriterOptions {
  readonly primary: string;
  /** The source database, read once before the writer starts: the initial rows' hashes. */
  readonly source: string;
  readonly collection: string;
  readonly rows: number;
  readonly dim: number;
  /** Statements per second, over all connections. */
  readonly rate: number;
  readonly log: (line: string) => void;
}

/** What a committed statement left for one id; `original` keeps the initial row's value (compared by hash). */
interface Expected {
  meta: Record<string, unknown> | 'original';
  vec: Float32Array | 'original';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
}

function unitVector(rand: () => number, dim: number): Float32Array {
  const v = Array.from({ length: dim }, () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()));
  const norm = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / norm);
}

/** Each float32 printed as the double it is: PostgreSQL's strtof reads back the same float32. */
const vectorText = (v: Float32Array) => `[${Array.from(v).join(',')}]`;

export async function startWriter(o: WriterOptions) {
  const t0 = Number(process.hrtime.bigint()) / 1e6;
  const clock = () => Number(process.hrtime.bigint()) / 1e6 - t0;
  const hashes = new Map<string, { mh: string; vh: string }>();
  {
    const src = new pg.Client({ connectionString: o.source });
    await src.connect();
    const { rows } = await src.query(`SELECT id, md5(metadata::text) AS mh, md5(vec::text) AS vh FROM vecs.${o.collection}`);
    for (const r of rows) hashes.set(r.id, { mh: r.mh, vh: r.vh });
    await src.end();
  }
  if (hashes.size !== o.rows) throw new Error(`the source holds ${hashes.size} rows, not ${o.rows}`);

  const expected = new Map<string, Expected>(); // touched ids only
  const deleted = new Set<string>();
  const latencies: Latency[] = [];
  const errors: string[] = [];
  const reads: Latency[] = [];
  const readErrors: string[] = [];
  let running = true;
  const c = o.collection;

  const writerLoop = async (k: number) => {
    const db = new pg.Client({ connectionString: o.primary, application_name: `bench:move writer ${k}` });
    await db.connect();
    const rand = prng(1000 + k);
    const owned = Array.from({ length: o.rows }, (_, i) => i + 1).filter((g) => g % CONNECTIONS === k).map((g) => `r${g}`);
    let seq = 0;
    const interval = (1000 * CONNECTIONS) / o.rate;
    let next = clock();
    while (running) {
      next += interval;
      // A steady rate, never a burst: after a pause the schedule restarts from now.
      if (next < clock()) next = clock();
      await sleep(next - clock());
      const pick = rand();
      const existing = owned.length > 0 ? Math.floor(rand() * owned.length) : -1;
      const vec = unitVector(rand, o.dim);
      const meta = { w: k, seq: seq++, bucket: Math.floor(rand() * 10) };
      let op: string;
      let sql: string;
      let params: unknown[];
      let effect: () => void;
      if (pick < 0.5 || existing < 0) {
        const id = `w${k}_${seq}`;
        const viaUpsert = pick < 0.4;
        op = viaUpsert ? 'upsert new' : 'insert';
        sql = viaUpsert ? `SELECT public.upsert_${c}($1, $2::vector, $3::jsonb)` : `INSERT INTO public.${c} (id, embedding, metadata) VALUES ($1, $2::vector, $3::jsonb)`;
        params = [id, vectorText(vec), JSON.stringify(meta)];
        effect = () => {
          owned.push(id);
          expected.set(id, { meta, vec });
        };
      } else {
        const id = owned[existing]!;
        const prev = expected.get(id) ?? { meta: 'original', vec: 'original' };
        if (pick < 0.6) {
          op = 'upsert existing';
          sql = `SELECT public.upsert_${c}($1, $2::vector, $3::jsonb)`;
          params = [id, vectorText(vec), JSON.stringify(meta)];
          effect = () => expected.set(id, { meta, vec });
        } else if (pick < 0.72) {
          op = 'update vector + metadata';
          sql = `UPDATE public.${c} SET embedding = $2::vector, metadata = $3::jsonb WHERE id = $1`;
          params = [id, vectorText(vec), JSON.stringify(meta)];
          effect = () => expected.set(id, { meta, vec });
        } else if (pick < 0.85) {
          op = 'update metadata';
          sql = `UPDATE public.${c} SET metadata = $2::jsonb WHERE id = $1`;
          params = [id, JSON.stringify(meta)];
          effect = () => expected.set(id, { meta, vec: prev.vec });
        } else {
          op = 'delete';
          sql = `DELETE FROM public.${c} WHERE id = $1`;
          params = [id];
          effect = () => {
            owned.splice(existing, 1);
            expected.delete(id);
            deleted.add(id);
          };
        }
      }
      const start = clock();
      try {
        const r = await db.query(sql, params);
        // UPDATE/DELETE of an owned id must touch exactly one row; upserts and inserts one too (or return one row).
        if (r.rowCount !== 1) throw new Error(`${op} touched ${r.rowCount} rows`);
        effect();
      } catch (e) {
        errors.push(`${op} at ${(start / 1000).toFixed(1)} s: ${(e as Error).message}`);
      }
      latencies.push({ start, ms: clock() - start, op });
    }
    await db.end();
  };

  const readerLoop = async () => {
    const db = new pg.Client({ connectionString: o.primary, application_name: 'bench:move reader' });
    await db.connect();
    const rand = prng(7);
    while (running) {
      await sleep(1000 / READ_RATE);
      const start = clock();
      try {
        await db.query(`SELECT id FROM public.match_${c}($1::vector, 10, '{}'::jsonb)`, [vectorText(unitVector(rand, o.dim))]);
      } catch (e) {
        readErrors.push(`match at ${(start / 1000).toFixed(1)} s: ${(e as Error).message}`);
      }
      reads.push({ start, ms: clock() - start, op: 'match' });
    }
    await db.end();
  };

  const loops = [...Array.from({ length: CONNECTIONS }, (_, k) => writerLoop(k)), readerLoop()];
  o.log(`writer: ${o.rate} statements/s over ${CONNECTIONS} connections, reader ${READ_RATE} match/s`);

  /** Stops writing, then compares `target` (the database the collection moved to) with what was committed. */
  const stop = async (target: string): Promise<WriterReport> => {
    running = false;
    await Promise.all(loops);
    const db = new pg.Client({ connectionString: target });
    await db.connect();
    const { rows } = await db.query(`SELECT id, md5(metadata::text) AS mh, md5(vec::text) AS vh FROM vecs.${c}`);
    const touched = new Map<string, { metadata: Record<string, unknown>; vec: number[] }>();
    const { rows: full } = await db.query(`SELECT id, metadata, vec::text AS vec FROM vecs.${c} WHERE id = ANY($1)`, [[...expected.keys()]]);
    for (const r of full) touched.set(r.id, { metadata: r.metadata, vec: JSON.parse(r.vec) as number[] });
    await db.end();
    const present = new Map(rows.map((r) => [r.id as string, { mh: r.mh as string, vh: r.vh as string }]));
    let missing = 0;
    let wrong = 0;
    let count = 0;
    const check = (id: string) => {
      count++;
      const got = present.get(id);
      if (!got) return void missing++;
      const want = expected.get(id);
      const orig = hashes.get(id);
      const t = touched.get(id);
      const metaOk = !want || want.meta === 'original' ? got.mh === orig?.mh : isDeepStrictEqual(t?.metadata, want.meta);
      const vecOk =
        !want || want.vec === 'original'
          ? got.vh === orig?.vh
          : t !== undefined && t.vec.length === want.vec.length && t.vec.every((x, i) => Math.fround(x) === (want.vec as Float32Array)[i]);
      if (!metaOk || !vecOk) wrong++;
    };
    for (const id of hashes.keys()) if (!deleted.has(id)) check(id);
    for (const id of expected.keys()) if (!hashes.has(id)) check(id);
    const extra = [...present.keys()].filter((id) => deleted.has(id) || (!hashes.has(id) && !expected.has(id))).length;
    const pri = new pg.Client({ connectionString: o.primary });
    await pri.connect();
    const primaryRows = Number((await pri.query(`SELECT count(*) AS n FROM public.${c}`)).rows[0].n);
    await pri.end();
    o.log(`writer: ${latencies.length} statements, ${errors.length} errors; ${expected.size} ids touched, ${deleted.size} deleted`);
    return { latencies, errors, reads, readErrors, expected: count, missing, wrong, extra, primaryRows };
  };

  return { clock, stop };
}

