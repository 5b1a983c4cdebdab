/**
 * The arithmetic of `vecscale recall`, pure: recall of one answer against the exact one (with the ties rule), the
 * global top k of per-partition answers, percentiles, and the summary of one setting. No I/O: ./run.ts does that.
 */

/** One result row: an id and its distance to the query, as pgvector computes it (float8). */
export interface Hit {
  readonly id: string;
  readonly distance: number;
}

/**
 * How far past the k-th exact distance an approximate hit still counts as correct: relative, so it means the same
 * for every metric and scale. A row at the k-th distance (a tie, or an exact duplicate vector) is as right as the
 * one the exact search happened to keep.
 */
export const TIE_TOLERANCE = 1e-6;

/**
 * recall@k of one query: the share of the exact answer the approximate one found. An approximate hit counts when its
 * id is in the exact answer, or when its distance is at most the k-th exact distance (+ TIE_TOLERANCE relative): of
 * rows at equal distance any k are right, and which ones a search keeps is arbitrary. An empty exact answer (an empty
 * collection) is recall 1: there was nothing to find.
 */
export function recallOf(approx: readonly Hit[], exact: readonly Hit[]): number {
  if (exact.length === 0) return 1;
  const ids = new Set(exact.map((h) => h.id));
  const kth = exact[exact.length - 1]!.distance;
  const bound = kth + TIE_TOLERANCE * Math.abs(kth);
  const seen = new Set<string>();
  let found = 0;
  for (const h of approx) {
    if (seen.has(h.id)) continue;
    seen.add(h.id);
    if (ids.has(h.id) || h.distance <= bound) found++;
  }
  return Math.min(found, exact.length) / exact.length;
}

/** Nearest first; equal distances by id, so the same rows always give the same order. */
export const byDistance = (a: Hit, b: Hit): number => a.distance - b.distance || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The global top k of answers computed per partition (each its own exact top k): merged by distance, then id. */
export function mergeTopK(answers: ReadonlyArray<readonly Hit[]>, k: number): Hit[] {
  return answers.flat().sort(byDistance).slice(0, k);
}

/** The p-th percentile (0–100) by nearest rank: a value that was measured, never an interpolation. NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export interface SettingSummary {
  readonly recall: { readonly mean: number; readonly min: number };
  readonly latencyMs: { readonly p50: number; readonly p95: number };
  readonly queries: number;
}

const micros = (ms: number): number => Math.round(ms * 1000) / 1000;

/** One setting's figures from its per-query recalls and call latencies (ms). */
export function summarize(recalls: readonly number[], latenciesMs: readonly number[]): SettingSummary {
  const mean = recalls.length === 0 ? Number.NaN : recalls.reduce((s, x) => s + x, 0) / recalls.length;
  return {
    recall: { mean, min: recalls.length === 0 ? Number.NaN : Math.min(...recalls) },
    // To the microsecond: a client-side timer says no more (and --json should not print 0.30000000000000004).
    latencyMs: { p50: micros(percentile(latenciesMs, 50)), p95: micros(percentile(latenciesMs, 95)) },
    queries: recalls.length,
  };
}

/** A problem with a query file, located: `line 3` (JSON lines) or `vector 3` (a JSON array). */
export interface QueryFileProblem {
  readonly where: string;
  readonly message: string;
}

export type QueryFileResult =
  | { readonly ok: true; readonly vectors: number[][]; /** Where each vector is: `line 3`, `vector 3`. */ readonly where: string[] }
  | { readonly ok: false; readonly problem: QueryFileProblem };

const vectorProblem = (v: unknown, dimension: number): string | undefined => {
  if (!Array.isArray(v)) return 'is not a JSON array of numbers';
  if (!v.every((x) => typeof x === 'number' && Number.isFinite(x))) return 'must hold finite numbers only';
  if (v.length !== dimension) return `has ${v.length} dimensions; the collection has ${dimension}`;
  return undefined;
};

/**
 * Query vectors from a file's text: a JSON array of arrays, or JSON lines (one array a line; blank lines skipped).
 * Every vector must have the collection's dimension. The first problem is returned, located.
 */
export function parseQueryFile(text: string, dimension: number): QueryFileResult {
  const trimmed = text.trim();
  let whole: unknown;
  try {
    whole = JSON.parse(trimmed);
  } catch {
    whole = undefined;
  }
  // A JSON array of arrays; a single line holding one vector is JSON lines (handled below).
  if (Array.isArray(whole) && whole.length > 0 && whole.every((x) => Array.isArray(x))) {
    const vectors: number[][] = [];
    const where: string[] = [];
    for (const [i, v] of whole.entries()) {
      const problem = vectorProblem(v, dimension);
      if (problem) return { ok: false, problem: { where: `vector ${i + 1}`, message: problem } };
      vectors.push(v as number[]);
      where.push(`vector ${i + 1}`);
    }
    return { ok: true, vectors, where };
  }
  const vectors: number[][] = [];
  const where: string[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return { ok: false, problem: { where: `line ${i + 1}`, message: 'is not JSON (expected an array of numbers on each line, or one JSON array of arrays)' } };
    }
    const problem = vectorProblem(v, dimension);
    if (problem) return { ok: false, problem: { where: `line ${i + 1}`, message: problem } };
    vectors.push(v as number[]);
    where.push(`line ${i + 1}`);
  }
  if (vectors.length === 0) return { ok: false, problem: { where: 'the file', message: 'holds no query vectors' } };
  return { ok: true, vectors, where };
}
