/**
 * An application writing and reading through the PRIMARY while a collection moves (issue 13): N workers, each on
 * its own connection, run a random mix of INSERT / UPDATE (metadata, embedding) / DELETE on `public.<c>` and both
 * forms of `upsert_<c>`, alone or in multi-statement transactions, some rolled back; readers run `match_<c>` and
 * SELECTs on `public.<c>`. The writer keeps the row set its COMMITTED transactions imply, so a test can compare
 * what the collection holds afterwards with it exactly.
 *
 * Why the model is exact: every id has one owner (the worker that created it, or `s<n>` seeded rows by n mod N), so
 * no two transactions ever race on one id and commit order per id is the owner's program order. A COMMIT that ends
 * with an error (a connection lost at COMMIT above all) has an unknown outcome: the ids it touched are recorded as
 * uncertain (either their state before or after is accepted, for those ids only), counted, and never touched again.
 * Every error is recorded: the issue says no write or read through the primary may error during a move.
 *
 * Also here, because both move test files need them: a topology over every test secondary (pod_1, pod_2, …), and
 * readers of where rows and replication objects actually are.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { parseTopology } from '../src/config/index.js';
import type { CollectionSpec, Topology } from '../src/config/types.js';
import { partsOf } from '../src/model/placement.js';
import type { SandboxUrls } from '../src/sandbox/sandbox.js';
import { ident, literal, qualified } from '../src/sql/quote.js';
import { freshDatabases, sql, testClusters } from './harness.js';
import { fdwUserFor, templated } from './topology-files.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export interface Row {
  readonly embedding: readonly number[];
  readonly metadata: { readonly [k: string]: Json };
}
/** A row as read back: the vector as pgvector prints it. */
export interface ActualRow {
  readonly id: string;
  readonly vec: string;
  readonly metadata: { readonly [k: string]: Json };
  /** Where it was read (a pod's table), for messages. */
  readonly where?: string;
}
export interface WriteError {
  readonly worker: string;
  readonly op: string;
  readonly phase: 'statement' | 'commit' | 'read';
  readonly code?: string;
  readonly message: string;
  readonly at: number;
}
export interface Latency {
  readonly count: number;
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly p50Ms: number;
  /** The slowest statement: what it was and when it started (epoch ms). */
  readonly slowest?: { readonly op: string; readonly at: number };
}
export interface WriterStats {
  readonly committed: number;
  readonly rolledBack: number;
  readonly failed: number;
  /** COMMITs (or single statements) that ended in a connection error: outcome unknown. */
  readonly uncertain: number;
  readonly statements: number;
  readonly errors: readonly WriteError[];
  /** Reads through the primary that returned something other than the committed truth (no-index collections). */
  readonly readMismatches: readonly string[];
  readonly reads: number;
  readonly writeLatency: Latency;
  readonly readLatency: Latency;
}
export interface Comparison {
  readonly missing: string[];
  readonly extra: string[];
  readonly different: string[];
  /** Ids read more than once. */
  readonly duplicated: string[];
  /** Uncertain ids (tolerated) found in one of their accepted states. */
  readonly tolerated: number;
}

export interface WriterOptions {
  /** The primary's database URL. */
  readonly url: string;
  readonly collection: string;
  readonly dimension: number;
  readonly workers?: number;
  readonly readers?: number;
  /** No vector index: match_<c> and ORDER BY <=> must be exact, so readers check what they get. */
  readonly exactReads?: boolean;
  /** Pause between a worker's transactions (ms, default 2): a steady writer, not a flood. */
  readonly pauseMs?: number;
  readonly seed?: number;
}

/** mulberry32: reproducible randomness (per worker, kill delays). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const vecText = (v: readonly number[]): string => `[${v.join(',')}]`;
/** pgvector prints a float4's shortest form ("0.000976562"): compare as float4, not as text. */
const parseVec = (text: string): number[] => (JSON.parse(text) as number[]).map(Math.fround);
const sameVec = (text: unknown, v: readonly number[]): boolean => typeof text === 'string' && isDeepStrictEqual(parseVec(text), v.map(Math.fround));
/** Connection-class failures: the session is gone, a COMMIT's outcome is unknown. */
const isConnectionError = (e: unknown): boolean => {
  const code = (e as { code?: string }).code;
  return code === undefined || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
};

function latency(samples: ReadonlyArray<{ ms: number; op: string; at: number }>): Latency {
  if (samples.length === 0) return { count: 0, maxMs: 0, p99Ms: 0, p50Ms: 0 };
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  const slowest = samples.reduce((a, b) => (b.ms > a.ms ? b : a));
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { count: sorted.length, maxMs: sorted.at(-1)!, p99Ms: q(0.99), p50Ms: q(0.5), slowest: { op: slowest.op, at: slowest.at } };
}

type Effect = Map<string, Row | null>;
interface Op {
  readonly name: string;
  readonly text: string;
  readonly values: unknown[];
}

export class MoveWriter {
  private readonly expected = new Map<string, Row>();
  private readonly uncertainIds = new Map<string, Array<Row | null>>();
  private readonly frozen: Array<{ id: string; row: Row }> = [];
  private readonly pools: string[][];
  private readonly opts: Required<WriterOptions>;
  private running = false;
  private loops: Promise<void>[] = [];
  private clients: pg.Client[] = [];
  private stats = MoveWriter.emptyStats();
  private seq = 0;

  constructor(opts: WriterOptions) {
    this.opts = { workers: 4, readers: 2, exactReads: true, pauseMs: 2, seed: 1, ...opts };
    this.pools = Array.from({ length: this.opts.workers }, () => []);
  }

  private static emptyStats() {
    return {
      committed: 0,
      rolledBack: 0,
      failed: 0,
      uncertain: 0,
      statements: 0,
      reads: 0,
      errors: [] as WriteError[],
      readMismatches: [] as string[],
      write: [] as Array<{ ms: number; op: string; at: number }>,
      read: [] as Array<{ ms: number; op: string; at: number }>,
    };
  }

  private get c(): string {
    return this.opts.collection;
  }

  /** A random vector: coordinates k/1024 (exact in float4, so text compares exactly), never zero (cosine). */
  private vector(r: () => number): number[] {
    return Array.from({ length: this.opts.dimension }, (_, i) => (i === 0 ? 1 + Math.floor(r() * 1024) : Math.floor(r() * 2049) - 1024) / 1024);
  }

  private metadata(r: () => number, worker: number): Row['metadata'] {
    if (r() < 0.1) return {};
    return { w: worker, n: ++this.seq, tag: ['red', 'green', 'blue', "it's"][Math.floor(r() * 4)]!, nested: { v: Math.floor(r() * 1000) } };
  }

  /**
   * Inserts `count` rows through the primary (the batch upsert, 500 a call), owned by the workers, and `frozen`
   * rows no worker ever writes (the readers' witnesses).
   */
  async seed(count: number, frozen = 50): Promise<void> {
    const r = prng(this.opts.seed * 7919);
    const client = new pg.Client({ connectionString: this.opts.url });
    await client.connect();
    try {
      const all: Array<{ id: string; row: Row }> = [];
      for (let i = 0; i < frozen; i++) all.push({ id: `f${i}`, row: { embedding: this.vector(r), metadata: { frozen: i } } });
      this.frozen.push(...all);
      const base = this.expected.size;
      for (let i = 0; i < count; i++) {
        const id = `s${base + i}`;
        const worker = (base + i) % this.opts.workers;
        all.push({ id, row: { embedding: this.vector(r), metadata: this.metadata(r, worker) } });
        this.pools[worker]!.push(id);
      }
      for (let i = 0; i < all.length; i += 500) {
        const batch = all.slice(i, i + 500).map(({ id, row }) => ({ id, embedding: row.embedding, metadata: row.metadata }));
        await client.query(`SELECT ${qualified('public', `upsert_${this.c}`)}($1::jsonb)`, [JSON.stringify(batch)]);
      }
      for (const { id, row } of all) this.expected.set(id, row);
    } finally {
      await client.end();
    }
  }

  /** Starts the workers and readers (fresh stats). */
  async start(): Promise<void> {
    if (this.running) throw new Error('writer already running');
    this.stats = MoveWriter.emptyStats();
    this.running = true;
    const connect = async () => {
      const client = new pg.Client({ connectionString: this.opts.url, application_name: 'move-writer' });
      client.on('error', () => undefined); // a lost connection surfaces on the next query
      await client.connect();
      this.clients.push(client);
      return client;
    };
    const workers = await Promise.all(Array.from({ length: this.opts.workers }, () => connect()));
    const readers = await Promise.all(Array.from({ length: this.opts.readers }, () => connect()));
    this.loops = [
      ...workers.map((client, k) => this.workerLoop(k, client, connect)),
      ...readers.map((client, k) => this.readerLoop(k, client, connect)),
    ];
  }

  /** Lets every worker finish its transaction, closes the connections, and returns what happened since start(). */
  async stop(): Promise<WriterStats> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    this.clients = [];
    const s = this.stats;
    return {
      committed: s.committed,
      rolledBack: s.rolledBack,
      failed: s.failed,
      uncertain: s.uncertain,
      statements: s.statements,
      errors: s.errors,
      readMismatches: s.readMismatches,
      reads: s.reads,
      writeLatency: latency(s.write),
      readLatency: latency(s.read),
    };
  }

  /** The rows the committed transactions imply (uncertain ids: their last certain state). */
  expectedRows(): ReadonlyMap<string, Row> {
    return this.expected;
  }

  /** Ids whose last transaction's outcome is unknown, with the states accepted for them (null: absent). */
  uncertain(): ReadonlyMap<string, ReadonlyArray<Row | null>> {
    return this.uncertainIds;
  }

  /** Compares rows read back with the expected set: exact, except for uncertain ids. */
  compare(actual: readonly ActualRow[]): Comparison {
    const seen = new Map<string, ActualRow>();
    const duplicated = new Set<string>();
    for (const a of actual) {
      if (seen.has(a.id)) duplicated.add(a.id);
      seen.set(a.id, a);
    }
    const same = (a: ActualRow, e: Row) => sameVec(a.vec, e.embedding) && isDeepStrictEqual(a.metadata, e.metadata);
    const missing: string[] = [];
    const extra: string[] = [];
    const different: string[] = [];
    let tolerated = 0;
    for (const [id, states] of this.uncertainIds) {
      const a = seen.get(id);
      const ok = states.some((s) => (s === null ? a === undefined : a !== undefined && same(a, s)));
      if (ok) tolerated++;
      else different.push(`${id} (uncertain: none of its ${states.length} accepted states)`);
    }
    for (const [id, e] of this.expected) {
      if (this.uncertainIds.has(id)) continue;
      const a = seen.get(id);
      if (!a) missing.push(id);
      else if (!same(a, e)) different.push(`${id}: got ${a.vec} ${JSON.stringify(a.metadata)}${a.where ? ` on ${a.where}` : ''}, want ${vecText(e.embedding)} ${JSON.stringify(e.metadata)}`);
    }
    for (const id of seen.keys()) if (!this.expected.has(id) && !this.uncertainIds.has(id)) extra.push(id);
    return { missing: missing.sort(), extra: extra.sort(), different: different.sort(), duplicated: [...duplicated].sort(), tolerated };
  }

  private recordError(worker: string, op: string, phase: WriteError['phase'], e: unknown): void {
    const err = e as { code?: string; message?: string };
    this.stats.errors.push({ worker, op, phase, ...(err.code ? { code: err.code } : {}), message: String(err.message ?? e), at: Date.now() });
  }

  /** Runs one statement, timing it. */
  private async timed(client: pg.Client, op: string, text: string, values: unknown[] = [], kind: 'write' | 'read' = 'write'): Promise<pg.QueryResult> {
    const at = Date.now();
    const t0 = performance.now();
    try {
      return await client.query(text, values);
    } finally {
      this.stats[kind].push({ ms: performance.now() - t0, op, at });
      if (kind === 'write') this.stats.statements++;
    }
  }

  private async workerLoop(k: number, first: pg.Client, connect: () => Promise<pg.Client>): Promise<void> {
    const r = prng(this.opts.seed * 104729 + k);
    let client = first;
    let n = 0;
    while (this.running) {
      const lost = await this.transaction(k, client, r);
      if (lost) client = await this.reconnect(connect, `w${k}`);
      if (this.opts.exactReads && ++n % 20 === 0 && this.running) {
        const gone = await this.probe(k, client, r);
        if (gone) client = await this.reconnect(connect, `w${k}`);
      }
      if (this.opts.pauseMs > 0) await new Promise((res) => setTimeout(res, r() * 2 * this.opts.pauseMs));
    }
  }

  private async reconnect(connect: () => Promise<pg.Client>, who: string): Promise<pg.Client> {
    for (;;) {
      try {
        return await connect();
      } catch (e) {
        this.recordError(who, 'connect', 'statement', e);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }

  /** The state an id has for this transaction: its own pending writes first. */
  private stateOf(effect: Effect, id: string): Row | null {
    return effect.has(id) ? effect.get(id)! : (this.expected.get(id) ?? null);
  }

  private pick(k: number, r: () => number, effect: Effect, existing: boolean): string | undefined {
    const pool = this.pools[k]!;
    for (let tries = 0; tries < 8 && pool.length > 0; tries++) {
      const id = pool[Math.floor(r() * pool.length)]!;
      if (!existing || this.stateOf(effect, id) !== null) return id;
    }
    return undefined;
  }

  private newId(k: number): string {
    const id = `w${k}-${++this.seq}`;
    this.pools[k]!.push(id);
    return id;
  }

  /** One random statement, and what it does to the rows if its transaction commits. */
  private op(k: number, r: () => number, effect: Effect): Op {
    const c = this.c;
    const view = qualified('public', c);
    const upsert = qualified('public', `upsert_${c}`);
    const x = r();
    const some = this.pick(k, r, effect, true);
    if (x < 0.2 || some === undefined) {
      const id = this.newId(k);
      const row = { embedding: this.vector(r), metadata: this.metadata(r, k) };
      effect.set(id, row);
      if (Object.keys(row.metadata).length === 0 && r() < 0.5) {
        return { name: 'insert (default metadata)', text: `INSERT INTO ${view} (id, embedding) VALUES ($1, $2)`, values: [id, vecText(row.embedding)] };
      }
      return { name: 'insert', text: `INSERT INTO ${view} (id, embedding, metadata) VALUES ($1, $2, $3)`, values: [id, vecText(row.embedding), JSON.stringify(row.metadata)] };
    }
    const cur = this.stateOf(effect, some)!;
    if (x < 0.35) {
      const metadata = this.metadata(r, k);
      effect.set(some, { ...cur, metadata });
      return { name: 'update metadata', text: `UPDATE ${view} SET metadata = $2 WHERE id = $1`, values: [some, JSON.stringify(metadata)] };
    }
    if (x < 0.5) {
      const embedding = this.vector(r);
      effect.set(some, { ...cur, embedding });
      return { name: 'update embedding', text: `UPDATE ${view} SET embedding = $2 WHERE id = $1`, values: [some, vecText(embedding)] };
    }
    if (x < 0.62) {
      // Any owned id, existing or not: a DELETE that matches nothing is a write too.
      const id = this.pick(k, r, effect, false) ?? some;
      effect.set(id, null);
      return { name: 'delete', text: `DELETE FROM ${view} WHERE id = $1`, values: [id] };
    }
    if (x < 0.82) {
      const id = r() < 0.5 ? some : r() < 0.5 ? (this.pick(k, r, effect, false) ?? some) : this.newId(k);
      const row = { embedding: this.vector(r), metadata: this.metadata(r, k) };
      effect.set(id, row);
      return { name: 'upsert', text: `SELECT ${upsert}($1::text, $2, $3::jsonb)`, values: [id, vecText(row.embedding), JSON.stringify(row.metadata)] };
    }
    const rows: Array<{ id: string; embedding: number[]; metadata: Row['metadata'] }> = [];
    for (let i = 0, n = 1 + Math.floor(r() * 5); i < n; i++) {
      const id = r() < 0.2 && rows.length > 0 ? rows[0]!.id : r() < 0.5 ? (this.pick(k, r, effect, false) ?? this.newId(k)) : this.newId(k);
      const row = { embedding: this.vector(r), metadata: this.metadata(r, k) };
      rows.push({ id, ...row, embedding: [...row.embedding] });
      effect.set(id, row); // in array order: a later duplicate wins
    }
    return { name: 'upsert batch', text: `SELECT ${upsert}($1::jsonb)`, values: [JSON.stringify(rows)] };
  }

  private commit(effect: Effect): void {
    for (const [id, row] of effect) {
      if (row === null) this.expected.delete(id);
      else this.expected.set(id, row);
    }
    this.stats.committed++;
  }

  /** An unknown outcome: the ids keep their before/after states as the accepted ones, and leave the pool. */
  private markUncertain(k: number, effect: Effect): void {
    this.stats.uncertain++;
    for (const [id, row] of effect) {
      const before = this.expected.get(id) ?? null;
      this.uncertainIds.set(id, [...(this.uncertainIds.get(id) ?? [before]), row]);
      const pool = this.pools[k]!;
      const i = pool.indexOf(id);
      if (i >= 0) pool.splice(i, 1);
    }
  }

  /** Returns true when the connection was lost. */
  private async transaction(k: number, client: pg.Client, r: () => number): Promise<boolean> {
    const who = `w${k}`;
    const x = r();
    const shape = x < 0.55 ? 'single' : x < 0.9 ? 'commit' : 'rollback';
    const effect: Effect = new Map();
    if (shape === 'single') {
      const op = this.op(k, r, effect);
      try {
        await this.timed(client, op.name, op.text, op.values);
        this.commit(effect);
        return false;
      } catch (e) {
        this.recordError(who, op.name, 'statement', e);
        if (isConnectionError(e)) {
          this.markUncertain(k, effect);
          return true;
        }
        this.stats.failed++;
        return false;
      }
    }
    const names: string[] = [];
    try {
      await this.timed(client, 'BEGIN', 'BEGIN');
      for (let i = 0, n = 2 + Math.floor(r() * 3); i < n; i++) {
        const op = this.op(k, r, effect);
        names.push(op.name);
        await this.timed(client, op.name, op.text, op.values);
      }
    } catch (e) {
      this.recordError(who, names.at(-1) ?? 'BEGIN', 'statement', e);
      this.stats.failed++;
      if (isConnectionError(e)) return true;
      try {
        await client.query('ROLLBACK');
        return false;
      } catch {
        return true;
      }
    }
    if (shape === 'rollback') {
      try {
        await this.timed(client, 'ROLLBACK', 'ROLLBACK');
        this.stats.rolledBack++;
        return false;
      } catch (e) {
        this.recordError(who, 'ROLLBACK', 'statement', e);
        return isConnectionError(e);
      }
    }
    try {
      await this.timed(client, `COMMIT (${names.join(', ')})`, 'COMMIT');
      this.commit(effect);
      return false;
    } catch (e) {
      // Whatever the error, this COMMIT may have reached some database: accept either state for these ids.
      this.recordError(who, `COMMIT (${names.join(', ')})`, 'commit', e);
      this.markUncertain(k, effect);
      return isConnectionError(e);
    }
  }

  /** Read-your-writes through the primary: a committed upsert is what match_<c> and public.<c> then return. */
  private async probe(k: number, client: pg.Client, r: () => number): Promise<boolean> {
    const effect: Effect = new Map();
    const id = this.newId(k);
    const row = { embedding: this.vector(r), metadata: { probe: k } };
    effect.set(id, row);
    try {
      await this.timed(client, 'upsert (probe)', `SELECT ${qualified('public', `upsert_${this.c}`)}($1::text, $2, $3::jsonb)`, [id, vecText(row.embedding), JSON.stringify(row.metadata)]);
    } catch (e) {
      this.recordError(`w${k}`, 'upsert (probe)', 'statement', e);
      if (isConnectionError(e)) {
        this.markUncertain(k, effect);
        return true;
      }
      this.stats.failed++;
      return false;
    }
    this.commit(effect);
    return this.checkReads(`w${k}`, client, id, row, 'a row just committed');
  }

  private async readerLoop(k: number, first: pg.Client, connect: () => Promise<pg.Client>): Promise<void> {
    const r = prng(this.opts.seed * 15485863 + k);
    let client = first;
    while (this.running) {
      const f = this.frozen[Math.floor(r() * this.frozen.length)];
      if (!f) return;
      if (await this.checkReads(`r${k}`, client, f.id, f.row, 'a row nobody writes')) client = await this.reconnect(connect, `r${k}`);
      await new Promise((res) => setTimeout(res, 1 + r() * 4));
    }
  }

  /** Reads one known row three ways through the primary; returns true when the connection was lost. */
  /** Exact search finds the row: first, or tied with the first (another row at the same distance, e.g. a scaled copy under cosine). */
  private async checkReads(who: string, client: pg.Client, id: string, row: Row, what: string): Promise<boolean> {
    const c = this.c;
    const q = vecText(row.embedding);
    const reads: Array<[string, string, unknown[], (rows: Array<Record<string, unknown>>) => string | undefined]> = [
      [
        `SELECT public.<c> WHERE id`,
        `SELECT id, embedding::text AS vec, metadata FROM ${qualified('public', c)} WHERE id = $1`,
        [id],
        (rows) =>
          rows.length === 1 && sameVec(rows[0]!.vec, row.embedding) && isDeepStrictEqual(rows[0]!.metadata, row.metadata) ? undefined : `by id: ${JSON.stringify(rows)}`,
      ],
    ];
    if (this.opts.exactReads) {
      reads.push(
        [
          `match_<c>`,
          `SELECT id, distance FROM ${qualified('public', `match_${c}`)}($1, 3)`,
          [q],
          (rows) => (nearest(rows, id) && new Set(rows.map((x) => x.id)).size === rows.length ? undefined : `match: ${JSON.stringify(rows)}`),
        ],
        [
          `SELECT public.<c> ORDER BY <=>`,
          `SELECT id, embedding OPERATOR(public.<=>) $1::public.vector AS distance FROM ${qualified('public', c)} ORDER BY embedding OPERATOR(public.<=>) $1::public.vector LIMIT 3`,
          [q],
          (rows) => (nearest(rows, id) && new Set(rows.map((x) => x.id)).size === rows.length ? undefined : `ORDER BY <=>: ${JSON.stringify(rows)}`),
        ],
      );
    }
    for (const [name, text, values, verify] of reads) {
      try {
        const res = await this.timed(client, name, text, values, 'read');
        this.stats.reads++;
        const wrong = verify(res.rows);
        if (wrong) this.stats.readMismatches.push(`${who} ${name} for ${id} (${what}) at ${new Date().toISOString()}: ${wrong}`);
      } catch (e) {
        this.recordError(who, name, 'read', e);
        if (isConnectionError(e)) return true;
      }
    }
    return false;
  }
}

/** Stats in one line, for assertion messages and the test log. */
export const describeStats = (s: WriterStats): string =>
  `${s.committed} committed, ${s.rolledBack} rolled back, ${s.failed} failed, ${s.uncertain} uncertain, ${s.statements} write statements ` +
  `(max ${s.writeLatency.maxMs.toFixed(0)} ms${s.writeLatency.slowest ? ` [${s.writeLatency.slowest.op}]` : ''}, p99 ${s.writeLatency.p99Ms.toFixed(1)} ms), ` +
  `${s.reads} reads (max ${s.readLatency.maxMs.toFixed(0)} ms, p99 ${s.readLatency.p99Ms.toFixed(1)} ms), ${s.errors.length} errors, ${s.readMismatches.length} read mismatches`;

// ---------------------------------------------------------------------------------------------------------------
// Topology and inspection helpers shared by the move tests.

export interface PodsTopology {
  readonly path: string;
  readonly env: Record<string, string>;
  /** pod name → its database URL (admin). */
  readonly pods: Readonly<Record<string, string>>;
  write(collectionsYaml: string): void;
  load(): Topology;
}

/**
 * A topology file over fresh test databases with one secondary per test secondary, named as the sandbox names them
 * (`pod_1`, `pod_2`, …), passwords through ${ENV}. `collectionsYaml` is the indented body of `collections:`.
 */
export function podsTopology(dbs: SandboxUrls, collectionsYaml: string): PodsTopology {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-move-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const p = templated(dbs.primary, 'VS_PRIMARY_PW');
  const pods = Object.entries(dbs.secondaries).map(([name, url], i) => ({ name, url, t: templated(url, `VS_POD_${i + 1}_PW`) }));
  const env = Object.assign({}, p.env, ...pods.map((x) => x.t.env)) as Record<string, string>;
  const path = join(dir, 'topology.yaml');
  const fdw = `    fdw_user: ${fdwUserFor(dbs)}\n`;
  const render = (collections: string) =>
    `version: 1\nprimary:\n  url: ${p.url}\nsecondaries:\n${pods.map((x) => `  ${x.name}:\n    url: ${x.t.url}\n${fdw}`).join('')}collections:\n${collections}`;
  let collections = collectionsYaml;
  const file: PodsTopology = {
    path,
    env,
    pods: Object.fromEntries(pods.map((x) => [x.name, x.url])),
    write: (next) => {
      collections = next;
      writeFileSync(path, render(next));
    },
    load: () => {
      const r = parseTopology(render(collections), path, env);
      if (!r.ok) throw new Error(r.problems.map((x) => x.message).join('\n'));
      return r.topology;
    },
  };
  file.write(collectionsYaml);
  return file;
}

export const collectionOf = (t: Topology, name: string): CollectionSpec => {
  const c = t.collections.find((x) => x.name === name);
  if (!c) throw new Error(`no collection ${name}`);
  return c;
};

/** Every row of the collection as the primary's API view returns it. */
export const rowsThroughPrimary = (primary: string, collection: string): Promise<ActualRow[]> =>
  sql<ActualRow>(primary, `SELECT id, embedding::text AS vec, metadata FROM ${qualified('public', collection)}`);

/** Every row of the collection read straight from the tables the topology places it in, on the pods. */
export async function rowsOnPods(t: Topology, pods: Readonly<Record<string, string>>, collection: string): Promise<ActualRow[]> {
  const out: ActualRow[] = [];
  for (const part of partsOf(collectionOf(t, collection))) {
    const rows = await sql<ActualRow>(pods[part.secondary]!, `SELECT id, vec::text AS vec, metadata FROM ${qualified('vecs', part.table)}`);
    out.push(...rows.map((r) => ({ ...r, where: `${part.secondary}:vecs.${part.table}` })));
  }
  return out;
}

/**
 * What logical replication and move machinery exist in database `db` of each cluster: slots decoding it,
 * publications and subscriptions in it, and any relation, function or trigger named `vecscale_mv_…`, or a table whose
 * marker still says a move made it. Empty when nothing is left behind.
 */
export async function replicationLeftovers(adminUrls: readonly string[], db: string): Promise<string[]> {
  const found: string[] = [];
  for (const admin of adminUrls) {
    const port = new URL(admin).port;
    const slots = await sql<{ s: string }>(admin, `SELECT slot_name || ' (' || slot_type || ', db ' || coalesce(database, '-') || ')' AS s FROM pg_replication_slots WHERE database = $1`, [db]);
    found.push(...slots.map((r) => `:${port} slot ${r.s}`));
    const u = new URL(admin);
    u.pathname = `/${db}`;
    const rows = await sql<{ s: string }>(
      u.toString(),
      `SELECT 'publication ' || pubname AS s FROM pg_publication
       UNION ALL SELECT 'subscription ' || subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       UNION ALL SELECT 'relation ' || oid::regclass::text FROM pg_class WHERE relname LIKE 'vecscale\\_mv\\_%'
       UNION ALL SELECT 'function ' || oid::regprocedure::text FROM pg_proc WHERE proname LIKE 'vecscale\\_mv\\_%'
       UNION ALL SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'vecscale\\_mv\\_%'
       UNION ALL SELECT 'table marked by a move ' || objoid::regclass::text || ': ' || description FROM pg_description
                  WHERE classoid = 'pg_class'::regclass AND objsubid = 0 AND description LIKE 'managed by vecscale%; move %'`,
    );
    found.push(...rows.map((r) => `:${port}/${db} ${r.s}`));
  }
  return found;
}

/**
 * Drops whatever replication objects database `db` still has on each cluster (subscriptions detached from their
 * slots first, then slots): a DROP DATABASE refuses a database that a slot decodes or a subscription lives in.
 * For the end of a test file only — the tests assert that nothing was left before this runs.
 */
export async function dropReplicationObjects(adminUrls: readonly string[], db: string): Promise<void> {
  for (const admin of adminUrls) {
    const u = new URL(admin);
    u.pathname = `/${db}`;
    const exists = await sql<{ n: number }>(admin, `SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [db]);
    if (exists[0]!.n === 0) continue;
    const subs = await sql<{ subname: string }>(u.toString(), `SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    for (const { subname } of subs) {
      await sql(u.toString(), `ALTER SUBSCRIPTION ${ident(subname)} DISABLE`).catch(() => undefined);
      await sql(u.toString(), `ALTER SUBSCRIPTION ${ident(subname)} SET (slot_name = NONE)`).catch(() => undefined);
      await sql(u.toString(), `DROP SUBSCRIPTION ${ident(subname)}`).catch(() => undefined);
    }
  }
  for (const admin of adminUrls) {
    const slots = await sql<{ slot_name: string; active_pid: number | null }>(admin, `SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1`, [db]);
    for (const s of slots) {
      if (s.active_pid) await sql(admin, `SELECT pg_terminate_backend($1)`, [s.active_pid]).catch(() => undefined);
      await sql(admin, `SELECT pg_drop_replication_slot(${literal(s.slot_name)})`).catch(() => undefined);
    }
  }
}

/**
 * The exact top k by brute force, on the pods directly: `ORDER BY vec <=> q` over every table of the collection
 * (the metric's operator), merged. Returns ids and distances, nearest first, ties by id.
 */
export async function bruteForce(t: Topology, pods: Readonly<Record<string, string>>, collection: string, q: string, k: number): Promise<Array<{ id: string; distance: number }>> {
  const c = collectionOf(t, collection);
  const op = { cosine: '<=>', l2: '<->', inner_product: '<#>' }[c.metric];
  const all: Array<{ id: string; distance: number }> = [];
  for (const part of partsOf(c)) {
    all.push(
      ...(await sql<{ id: string; distance: number }>(
        pods[part.secondary]!,
        `SELECT id, (vec OPERATOR(public.${op}) $1::public.vector)::float8 AS distance FROM ${qualified('vecs', part.table)} ORDER BY vec OPERATOR(public.${op}) $1::public.vector, id LIMIT ${k}`,
        [q],
      )),
    );
  }
  return all.sort((a, b) => a.distance - b.distance || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, k);
}

/** Whether `id` is among the rows at the smallest distance (ties are equally right answers of an exact search). */
function nearest(rows: ReadonlyArray<Record<string, unknown>>, id: string): boolean {
  const first = Number(rows[0]?.distance);
  const tied = (r: Record<string, unknown>) => Math.abs(Number(r.distance) - first) < 1e-6;
  // More rows than were asked for may tie with it (distance 0: copies, or scaled copies under cosine): any is right.
  return rows.some((r) => r.id === id && tied(r)) || (rows.length >= 3 && rows.every(tied) && Math.abs(first) < 1e-6);
}

/**
 * Fresh databases for a move test file, with the end-of-file removal of their replication objects registered first
 * (registered after freshDatabases' own `after`, a slot or subscription would make its DROP DATABASE fail). Call at
 * the top level of the file. `needs3` is a skip reason when the sandbox has fewer than three secondaries.
 */
export async function moveDatabases(prefix: string): Promise<{ dbs: Awaited<ReturnType<typeof freshDatabases>>; admins: string[]; needs3: string | false }> {
  const clusters = await testClusters();
  const admins = [clusters.primary, ...Object.values(clusters.secondaries)];
  let name: string | undefined;
  after(async () => {
    if (name) await dropReplicationObjects(admins, name);
  });
  const dbs = await freshDatabases(prefix);
  name = dbs.name;
  const needs3 = Object.keys(dbs.secondaries).length >= 3 ? false : 'needs three test secondaries (scripts/test.sh: sandbox up --secondaries 3)';
  return { dbs, admins, needs3 };
}
