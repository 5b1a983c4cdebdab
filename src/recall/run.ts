/**
 * `vecscale recall` as a library call: how much of the exact answer `match_<c>` finds, per search setting, measured.
 *
 * - Queries: N stored vectors, the same ones every run (ORDER BY md5(id), read from the secondaries), or given ones.
 * - Exact answer: on the secondaries, one transaction per table with index and bitmap scans off, `ORDER BY vec <op> q
 *   LIMIT k` on the collection's table (every partition of a sharded one, merged by distance: the global top k).
 * - Production path: `public.match_<c>(q, k, '{}', ef_search => x)` (or `probes => x`) through the primary, one
 *   connection, each call timed on the client.
 * The figures come from ./measure.ts (pure).
 */
import type { CollectionSpec, Topology } from '../config/types.js';
import { QUERY_SETTING_BOUNDS } from '../config/types.js';
import { close, connect, type Db, describeTarget, silentOr, type Target } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { partsOf, type Part } from '../model/placement.js';
import { API_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { checkVector } from '../query/query-input.js';
import { DISTANCE_OPERATOR, MAX_MATCH_COUNT, matchFunctionName } from '../query/match-function.js';
import { collectionOf } from '../query/run.js';
import { ident, qualified } from '../sql/quote.js';
import { type Hit, mergeTopK, recallOf, type SettingSummary, summarize } from './measure.js';

export const DEFAULT_QUERIES = 100;
export const MAX_QUERIES = 10_000;
export const DEFAULT_K = 10;

export interface RecallInput {
  readonly collection: string;
  /** How many stored vectors to sample (default 100); with `vectors`, how many of them to use (default all). */
  readonly queries?: number;
  /** Query vectors given by the caller (e.g. a file) instead of a sample. */
  readonly vectors?: ReadonlyArray<readonly number[]>;
  readonly k?: number;
  /** hnsw.ef_search values to measure (HNSW only). */
  readonly efSearch?: readonly number[];
  /** ivfflat.probes values to measure (IVFFlat only). */
  readonly probes?: readonly number[];
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

/** One search setting: `value` null is the collection's own (match_<c>'s NULL), `effective` what that is. */
export interface Setting {
  readonly name: 'ef_search' | 'probes' | null;
  readonly value: number | null;
  readonly effective: number | null;
}

export interface RecallReport {
  readonly collection: string;
  readonly index: CollectionSpec['index']['method'];
  readonly metric: CollectionSpec['metric'];
  readonly k: number;
  readonly source: 'sample' | 'given';
  readonly settings: ReadonlyArray<Setting & SettingSummary>;
}

const range = (flag: string, min: number, max: number, v: number): void => {
  if (!Number.isInteger(v) || v < min || v > max) throw new VecscaleError('config', `${flag} must be a whole number ${min}–${max} (got ${v})`);
};

/**
 * The settings to measure: each --ef-search (HNSW) or --probes (IVFFlat) value, or the collection's own. The other
 * index's setting is a config error: it would measure nothing.
 */
export function settingsOf(c: CollectionSpec, input: Pick<RecallInput, 'efSearch' | 'probes'>): Setting[] {
  const method = c.index.method;
  const given = (flag: string, values: readonly number[] | undefined, owner: string) => {
    if (values !== undefined && values.length > 0 && method !== owner) {
      const why = method === 'none' ? 'has no index (method none): its search is exact' : `has index method ${method}`;
      throw new VecscaleError('config', `${flag} applies to ${owner} indexes; collection ${c.name} ${why}`, {
        hint: method === 'hnsw' ? 'use --ef-search' : method === 'ivfflat' ? 'use --probes' : 'leave out --ef-search and --probes',
      });
    }
  };
  given('--ef-search', input.efSearch, 'hnsw');
  given('--probes', input.probes, 'ivfflat');
  const unique = (xs: readonly number[]) => [...new Set(xs)];
  if (method === 'hnsw') {
    const { min, max } = QUERY_SETTING_BOUNDS.efSearch;
    for (const v of input.efSearch ?? []) range('--ef-search', min, max, v);
    const values = input.efSearch?.length ? unique(input.efSearch) : [null];
    return values.map((v) => ({ name: 'ef_search', value: v, effective: v ?? c.query.efSearch }));
  }
  if (method === 'ivfflat') {
    const { min, max } = QUERY_SETTING_BOUNDS.probes;
    for (const v of input.probes ?? []) range('--probes', min, max, v);
    const values = input.probes?.length ? unique(input.probes) : [null];
    return values.map((v) => ({ name: 'probes', value: v, effective: v ?? c.query.probes }));
  }
  return [{ name: null, value: null, effective: null }];
}

async function withConnection<T>(t: Target, input: RecallInput, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connect(t, {
    timeoutMs: input.connectTimeoutMs,
    // It measures, and writes nothing: every transaction of its sessions is READ ONLY (match_<c> reads too).
    readOnly: true,
    applicationName: 'vecscale recall',
    ...(input.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: input.statementTimeoutMs }),
  });
  try {
    return await fn(db);
  } finally {
    await close(db);
  }
}

/** A failed statement as the user should read it: the database named, a timeout as such, a missing object as "apply first". */
function failure(db: Db, t: Target, doing: string, err: unknown): VecscaleError {
  const silent = silentOr(db, doing, err);
  if (silent) return silent;
  const e = err as { code?: string; message?: string };
  const missing = e.code === '42P01' || e.code === '42883' || e.code === '3F000';
  return new VecscaleError('database', `${describeTarget(t)}: ${doing} failed: ${e.message ?? String(err)}`, {
    ...(missing ? { hint: 'has the topology been applied? vecscale apply' } : {}),
    meta: { database: t.database, sqlstate: e.code ?? null },
    cause: err,
  });
}

const targetOf = (topology: Topology, secondary: string): Target => ({
  database: secondary,
  url: topology.secondaries.find((s) => s.name === secondary)!.url,
});

/** The collection's tables grouped by secondary: one connection each. */
function partsBySecondary(c: CollectionSpec): Map<string, Part[]> {
  const by = new Map<string, Part[]>();
  for (const p of partsOf(c)) by.set(p.secondary, [...(by.get(p.secondary) ?? []), p]);
  return by;
}

/**
 * `n` stored vectors of the collection, as pgvector prints them: the n smallest md5(id) over all its tables, so
 * every run (and every machine) measures the same queries while the rows stay the same.
 */
export async function sampleQueries(topology: Topology, c: CollectionSpec, n: number, input: RecallInput): Promise<string[]> {
  const groups = await Promise.all(
    [...partsBySecondary(c)].map(([secondary, parts]) => {
      const t = targetOf(topology, secondary);
      return withConnection(t, input, async (db) => {
        const rows: Array<{ id: string; vec: string; h: string }> = [];
        // A stored zero vector has no cosine distance (match_<c> refuses it as a query): never sampled.
        let nonZero = '';
        try {
          if (c.metric === 'cosine') nonZero = `WHERE (t.vec OPERATOR(${ident(await vectorSchema(db))}.<#>) t.vec) <> 0`;
        } catch (err) {
          throw failure(db, t, 'finding pgvector', err);
        }
        for (const p of parts) {
          try {
            const r = await db.query<{ id: string; vec: string; h: string }>(
              `SELECT t.id, t.vec::pg_catalog.text AS vec, pg_catalog.md5(t.id) AS h FROM ${qualified(VECS_SCHEMA, p.table)} t ${nonZero}
                ORDER BY pg_catalog.md5(t.id) COLLATE "C", t.id COLLATE "C" LIMIT $1`,
              [n],
            );
            rows.push(...r.rows);
          } catch (err) {
            throw failure(db, t, `sampling vecs.${p.table}`, err);
          }
        }
        return rows;
      });
    }),
  );
  const key = (r: { id: string; h: string }) => `${r.h}\u0000${r.id}`;
  return groups
    .flat()
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    .slice(0, n)
    .map((r) => r.vec);
}

/** The schema pgvector lives in on this database (its operators and type are qualified with it). */
async function vectorSchema(db: Db): Promise<string> {
  const r = await db.query<{ s: string }>(
    `SELECT n.nspname AS s FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'`,
  );
  return r.rows[0]?.s ?? 'public';
}

/**
 * The exact top k of each query (vectors as pgvector's text), computed on the secondaries: every table of the
 * collection scanned in full (index and bitmap scans off, in a read-only transaction), then the partitions' answers
 * merged by distance.
 */
export async function exactTopK(topology: Topology, c: CollectionSpec, vectors: readonly string[], k: number, input: RecallInput = { collection: c.name }): Promise<Hit[][]> {
  const perSecondary = await Promise.all(
    [...partsBySecondary(c)].map(([secondary, parts]) => {
      const t = targetOf(topology, secondary);
      return withConnection(t, input, async (db) => {
        const answers: Hit[][][] = [];
        try {
          const vs = ident(await vectorSchema(db));
          const distance = `t.vec OPERATOR(${vs}.${DISTANCE_OPERATOR[c.metric]}) $1::${vs}.vector`;
          await db.query('BEGIN READ ONLY');
          // Index scans would make the "exact" answer an approximate one; a sequential scan is exact.
          await db.query('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off');
          for (const p of parts) {
            const sql = `SELECT t.id, (${distance})::pg_catalog.float8 AS distance FROM ${qualified(VECS_SCHEMA, p.table)} t ORDER BY ${distance}, t.id LIMIT $2`;
            const hits: Hit[][] = [];
            for (const v of vectors) hits.push((await db.query<Hit>(sql, [v, k])).rows);
            answers.push(hits);
          }
          await db.query('COMMIT');
        } catch (err) {
          await db.query('ROLLBACK').catch(() => undefined);
          throw failure(db, t, `the exact search on secondary ${secondary}`, err);
        }
        return answers;
      });
    }),
  );
  const tables = perSecondary.flat();
  return vectors.map((_, q) => mergeTopK(tables.map((t) => t[q]!), k));
}

/** match_<c> through the primary for each query under one setting: the hits and each call's time (ms). */
async function matchAll(db: Db, t: Target, c: CollectionSpec, vectors: readonly string[], k: number, s: Setting): Promise<{ hits: Hit[][]; ms: number[] }> {
  const sql = `SELECT m.id, m.distance FROM ${qualified(API_SCHEMA, matchFunctionName(c.name))}($1, $2, '{}'::pg_catalog.jsonb, ef_search => $3::pg_catalog.int4, probes => $4::pg_catalog.int4) m`;
  const params = (v: string) => [v, k, s.name === 'ef_search' ? s.value : null, s.name === 'probes' ? s.value : null];
  const hits: Hit[][] = [];
  const ms: number[] = [];
  for (const v of vectors) {
    try {
      const t0 = performance.now();
      const r = await db.query<Hit>(sql, params(v));
      ms.push(performance.now() - t0);
      hits.push(r.rows);
    } catch (err) {
      throw failure(db, t, `match_${c.name}`, err);
    }
  }
  return { hits, ms };
}

/** Query vectors given by the caller, checked (dimension, finite, single precision, cosine zero) and as text. */
function givenVectors(c: CollectionSpec, vectors: ReadonlyArray<readonly number[]>, n: number | undefined): string[] {
  const chosen = vectors.slice(0, n ?? vectors.length);
  if (chosen.length === 0) throw new VecscaleError('config', 'no query vectors given');
  if (chosen.length > MAX_QUERIES) throw new VecscaleError('config', `at most ${MAX_QUERIES} query vectors (got ${chosen.length}); --queries N takes the first N`);
  return chosen.map((v, i) => {
    if (v.length !== c.dimension) throw new VecscaleError('config', `query vector ${i + 1} has ${v.length} dimensions; collection ${c.name} has ${c.dimension}`);
    try {
      checkVector(v, c.metric);
    } catch (e) {
      throw new VecscaleError('config', `query vector ${i + 1}: ${(e as Error).message}`);
    }
    return `[${v.join(',')}]`;
  });
}

/**
 * Measures recall@k of match_<c> against the exact answer, for each setting. Config errors (unknown collection, a
 * setting of the other index kind, bounds, bad vectors) come before any connection.
 */
export async function measureRecall(topology: Topology, input: RecallInput): Promise<RecallReport> {
  const c = collectionOf(topology, input.collection);
  const k = input.k ?? DEFAULT_K;
  range('--k', 1, MAX_MATCH_COUNT, k);
  if (input.queries !== undefined) range('--queries', 1, MAX_QUERIES, input.queries);
  const settings = settingsOf(c, input);
  const given = input.vectors === undefined ? undefined : givenVectors(c, input.vectors, input.queries);
  const vectors = given ?? (await sampleQueries(topology, c, input.queries ?? DEFAULT_QUERIES, input));
  if (vectors.length === 0) {
    throw new VecscaleError('config', `collection ${c.name} holds no rows to sample queries from`, { hint: 'load rows first, or give query vectors (--query-file)' });
  }
  const exact = await exactTopK(topology, c, vectors, k, input);
  const primary: Target = { database: 'primary', url: topology.primary.url };
  const measured = await withConnection(primary, input, async (db) => {
    // The first call of a session opens its connection to the secondaries: not part of any setting's latency.
    await matchAll(db, primary, c, vectors.slice(0, 1), k, settings[0]!);
    const out: Array<Setting & SettingSummary> = [];
    for (const s of settings) {
      const { hits, ms } = await matchAll(db, primary, c, vectors, k, s);
      out.push({ ...s, ...summarize(hits.map((h, q) => recallOf(h, exact[q]!)), ms) });
    }
    return out;
  });
  return { collection: c.name, index: c.index.method, metric: c.metric, k, source: given ? 'given' : 'sample', settings: measured };
}
