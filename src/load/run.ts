/**
 * `vecscale load` as a library call: a stream of JSON lines or CSV into a collection, straight to the secondaries
 * that hold it — one table, or each row to its hash partition, routed in Node exactly as PostgreSQL routes it
 * (./hash.ts) — in batches of `COPY … FROM STDIN` (./copy.ts), every table in one transaction (./target.ts).
 *
 * What becomes of each line:
 * - a row the database can take lands (or, with `upsert`, replaces the row with its id);
 * - a bad line (not JSON or CSV, a missing id or embedding, the wrong dimension, a number that is not finite in
 *   single precision, metadata that is not an object, …) is reported with its line number and reason, and skipped;
 * - without `upsert`, a line whose id is already in the collection, or repeats an earlier line's, is a bad line too
 *   (the row already there is left alone); with `upsert`, the last line with an id wins.
 * Nothing is committed until every line was read and every table took its rows: an unreadable input, a database
 * that fails or stops answering, or a row the database refuses after all (the error names its line), and nothing
 * was loaded anywhere. Only the commits themselves, one per table, can part-succeed (a `partial_apply` error says
 * which tables committed).
 */
import type { Topology } from '../config/types.js';
import { VecscaleError } from '../errors.js';
import { partsOf } from '../model/placement.js';
import type { ProgressSink } from '../model/progress.js';
import { collectionOf } from '../query/run.js';
import { HASH_PARTITION_SEED, hashTextExtended, partitionRemainderOfBytes } from './hash.js';
import { type BadLine, type InputFormat, InputFormatError, isBad, parserFor, readLines, type Row } from './input.js';
import { type Batch, encodeRows, LoadTable } from './target.js';

/** The bad lines a report lists (all are counted). */
export const MAX_BAD_LINES_LISTED = 1000;
/** A batch is sent when it holds this many rows … */
export const DEFAULT_BATCH_ROWS = 10_000;
/** … or this many bytes (shared out between the tables of a sharded collection, 256 kB each at least). */
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;
/** How long reading and parsing may run before the event loop gets a turn (socket writes, answers). */
const YIELD_EVERY_MS = 2;
/** The first batch's size in bytes; each next one is twice the last, up to the batch size. */
const FIRST_BATCH_BYTES = 128 * 1024;

export interface LoadStats {
  /** Non-blank lines (CSV: records) read so far, the header excepted. */
  readonly linesRead: number;
  readonly rowsLoaded: number;
  readonly badLines: number;
  readonly bytesRead: number;
  /** The input's size, when known (a file): progress and ETA go by bytes read. */
  readonly totalBytes: number | undefined;
  readonly elapsedMs: number;
}

export interface LoadEvents {
  /** Counts, about every 200 ms while the input is read, and once when it is all read. */
  readonly onStats?: (s: LoadStats) => void;
  /** Every row is in (before any index rebuild): the final counts. */
  readonly onRowsDone?: (s: LoadStats) => void;
  /** Index rebuilds after the rows are in (src/model/progress.ts events). */
  readonly onProgress?: ProgressSink;
  /** One line of note: an index dropped for the load, or kept. */
  readonly onNote?: (text: string) => void;
}

export interface LoadInput {
  readonly collection: string;
  readonly input: AsyncIterable<Buffer | string>;
  readonly format: InputFormat;
  /** How messages name the input: a file name, or `stdin`. */
  readonly source: string;
  readonly totalBytes?: number;
  /** Bytes of the input read so far, when `input` is not the bytes `totalBytes` counts (a gunzipped file). */
  readonly bytesRead?: () => number;
  readonly upsert?: boolean;
  readonly connectTimeoutMs?: number;
  /** statement_timeout of each statement (index rebuilds excepted), as for every vecscale command (default 30 s). */
  readonly statementTimeoutMs?: number;
  /** Aborting it (Ctrl-C) stops the load: nothing is loaded, and dropped indexes are built again. */
  readonly signal?: AbortSignal;
  readonly batchRows?: number;
  readonly batchBytes?: number;
  readonly events?: LoadEvents;
}

export interface TableReport {
  readonly secondary: string;
  readonly table: string;
  readonly rows: number;
  /** Vector indexes dropped for the load and rebuilt after it, with how long each build took. */
  readonly indexesRebuilt: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
  /** Why the index of an empty table was kept, if it was. */
  readonly indexKept?: string;
}

export interface LoadReport {
  readonly collection: string;
  readonly source: string;
  readonly format: InputFormat;
  readonly upsert: boolean;
  readonly linesRead: number;
  readonly rowsLoaded: number;
  /** --upsert: rows that were in the collection before and were replaced. */
  readonly rowsReplaced: number;
  /** --upsert: lines whose id a later line of the input had again (the later one is loaded). */
  readonly linesSuperseded: number;
  readonly badLineCount: number;
  /** In line order; at most MAX_BAD_LINES_LISTED. */
  readonly badLines: readonly BadLine[];
  readonly tables: readonly TableReport[];
  /** Reading and copying, from the first byte to the last COPY's answer. */
  readonly loadMs: number;
  readonly indexMs: number;
  readonly totalMs: number;
  /** Rows loaded per second of loadMs. */
  readonly rowsPerSecond: number;
}

/** Probe ids for checking that Node's routing is the secondary's: empty, ASCII of every tail length, multibyte. */
const PROBES = ['', 'a', 'ab', 'abc', 'abcd', 'hello, world', 'id-000000000001', 'ünïcødé', '日本語', '😀 emoji', 'x'.repeat(37)];

/**
 * Whether the secondary hashes text as ./hash.ts does (a UTF-8 database on a little-endian server): else rows could
 * be sent to a partition the primary would not look in.
 */
async function checkRouting(t: LoadTable): Promise<void> {
  const rows = await t.db
    .query<{ x: string; h: string; enc: string }>(
      `SELECT x, pg_catalog.hashtextextended(x, $2::pg_catalog.int8)::pg_catalog.text AS h, pg_catalog.current_setting('server_encoding') AS enc
         FROM pg_catalog.unnest($1::pg_catalog.text[]) x`,
      [PROBES, BigInt.asIntN(64, HASH_PARTITION_SEED).toString()],
    )
    .then((r) => r.rows)
    .catch((err: unknown) => {
      throw t.fail('checking how it hashes ids', err);
    });
  const wrong = rows.find((r) => r.h !== hashTextExtended(r.x, BigInt.asIntN(64, HASH_PARTITION_SEED)).toString());
  if (wrong) {
    throw new VecscaleError('precondition', `secondary ${t.spec.secondary} hashes ids differently from vecscale (server encoding ${rows[0]?.enc}): load cannot route rows to partitions`, {
      hint: `load through the primary instead (COPY into public.<collection>), which routes rows itself`,
      meta: { database: t.spec.secondary },
    });
  }
}

const interrupted = (): VecscaleError => new VecscaleError('internal', 'the load was interrupted: nothing was loaded');

/** One error for the failures of several tables, each message once (two partitions on one pod fail alike). */
function combined(failed: readonly unknown[]): VecscaleError {
  const errors = failed.map((e) => (e instanceof VecscaleError ? e : new VecscaleError('internal', String((e as Error)?.message ?? e))));
  const unique = [...new Map(errors.map((e) => [e.message, e])).values()];
  if (unique.length === 1) return unique[0]!;
  const code = unique.every((e) => e.code === unique[0]!.code) ? unique[0]!.code : 'connection';
  return new VecscaleError(code, unique.map((e) => e.message).join('\n'), {
    meta: { errors: unique.map((e) => ({ code: e.code, ...e.meta })) },
    ...(unique[0]!.hint ? { hint: unique[0]!.hint } : {}),
  });
}

/** Awaits every step; throws them combined when any failed (after all have settled). */
async function settle(steps: ReadonlyArray<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(steps)).flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failed.length > 0) throw combined(failed);
}

/** Connects to every table's secondary, all or none; changes nothing. */
async function connectTables(topology: Topology, input: LoadInput): Promise<LoadTable[]> {
  const c = collectionOf(topology, input.collection);
  const urls = new Map(topology.secondaries.map((s) => [s.name, s.url]));
  const opts = {
    ...(input.connectTimeoutMs !== undefined ? { connectTimeoutMs: input.connectTimeoutMs } : {}),
    ...(input.statementTimeoutMs !== undefined ? { statementTimeoutMs: input.statementTimeoutMs } : {}),
  };
  const settled = await Promise.allSettled(
    partsOf(c).map((p) => LoadTable.connect({ secondary: p.secondary, url: urls.get(p.secondary)!, table: p.table, dimension: c.dimension, index: c.index }, opts)),
  );
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failed.length === 0) return opened;
  await Promise.all(opened.map((t) => t.close()));
  throw combined(failed);
}

/**
 * How many ids a load remembers (with their lines) to find repeats in an empty table without asking the database;
 * past it, every batch's ids are looked up in the table (where the earlier lines' rows are). About 100 bytes each.
 */
export const MAX_TRACKED_IDS = 2_000_000;
/** … and at most about this much of the heap (ids of 2.7 kB would otherwise need ~6 GB: the process dies, the index stays dropped). */
export const MAX_TRACKED_CHARS = 256 * 1024 * 1024;

/** One table's batch being filled, and the write in flight before it (at most one). */
interface Lane {
  readonly table: LoadTable;
  rows: Row[];
  /** Row index by id in `rows` (ids are unique within a batch). */
  index: Map<string, number>;
  bytes: number;
  /** The line of every id this load sent to the table, while it tracks them (an empty table); else undefined. */
  seen: Map<string, number> | undefined;
  /** --upsert, tracked ids: ids of earlier batches that this batch's rows replace. */
  replace: string[];
  /** Batches sent and not yet written, oldest first: the one being written, and at most one encoded behind it. */
  pending: Array<Promise<void>>;
  /** The last batch sent (each write waits for the one before it). */
  tail: Promise<void>;
  /** Batches sent so far. */
  sent: number;
}

export async function load(topology: Topology, input: LoadInput): Promise<LoadReport> {
  const c = collectionOf(topology, input.collection);
  const upsert = input.upsert === true;
  const t0 = performance.now();
  const tables = await connectTables(topology, input);
  // The load's own clock starts once every table is ready: rows/s measures reading and copying, not connecting.
  let tLoad = performance.now();
  const events = input.events ?? {};
  const batchRows = Math.max(1, input.batchRows ?? DEFAULT_BATCH_ROWS);
  const batchBytes = Math.max(1, input.batchBytes ?? Math.max(256 * 1024, Math.floor(DEFAULT_BATCH_BYTES / tables.length)));
  const lanes: Lane[] = tables.map((table) => ({
    table,
    rows: [],
    index: new Map(),
    bytes: 0,
    seen: undefined,
    replace: [],
    pending: [],
    tail: Promise.resolve(),
    sent: 0,
  }));
  let tracked = 0;
  let trackedChars = 0;
  const modulus = c.shards === undefined ? 1 : c.partitions;
  const laneOf = (id: string): Lane => (modulus === 1 ? lanes[0]! : lanes[partitionRemainderOfBytes(Buffer.from(id, 'utf8'), modulus)]!);

  const bad: BadLine[] = [];
  let badCount = 0;
  let linesRead = 0;
  let rowsLoaded = 0;
  let replaced = 0;
  let superseded = 0;
  let bytesRead = 0;
  let failure: unknown;
  const addBad = (b: BadLine) => {
    badCount++;
    bad.push(b);
    // Kept sorted lazily: trimmed to the first lines when it grows past twice the listed number.
    if (bad.length > 2 * MAX_BAD_LINES_LISTED) {
      bad.sort((x, y) => x.line - y.line);
      bad.length = MAX_BAD_LINES_LISTED;
    }
  };
  const stats = (): LoadStats => ({
    linesRead,
    rowsLoaded,
    badLines: badCount,
    bytesRead: input.bytesRead ? input.bytesRead() : bytesRead,
    totalBytes: input.totalBytes,
    elapsedMs: performance.now() - tLoad,
  });

  /** Sends the lane's batch: encoded now, written when the batch before it is (the database never waits for Node). */
  const send = (lane: Lane): void => {
    const batch: Batch = { rows: lane.rows, data: encodeRows(lane.rows), probe: lane.seen === undefined, replace: lane.replace };
    lane.rows = [];
    lane.index = new Map();
    lane.bytes = 0;
    lane.replace = [];
    lane.sent++;
    const p = lane.tail.then(async () => {
      if (failure !== undefined) return;
      try {
        const r = await lane.table.write(batch, upsert, input.source);
        rowsLoaded += r.copied - r.superseded;
        replaced += r.replaced;
        superseded += r.superseded;
        for (const b of r.bad) addBad(b);
      } catch (err) {
        failure ??= err;
      }
    });
    lane.tail = p;
    lane.pending.push(p);
    void p.then(() => lane.pending.splice(lane.pending.indexOf(p), 1));
  };

  const take = async (row: Row): Promise<void> => {
    const lane = laneOf(row.id);
    const at = lane.index.get(row.id);
    if (at !== undefined) {
      const earlier = lane.rows[at]!;
      if (upsert) {
        // The later line wins.
        lane.rows[at] = row;
        superseded++;
      } else {
        addBad({ line: row.line, reason: `the id repeats line ${earlier.line}` });
      }
      return;
    }
    if (lane.seen !== undefined) {
      const before = lane.seen.get(row.id);
      if (before !== undefined && !upsert) {
        addBad({ line: row.line, reason: `the id repeats line ${before}` });
        return;
      }
      if (before !== undefined) lane.replace.push(row.id); // the write deletes the earlier batch's row first
      lane.seen.set(row.id, row.line);
      if (before === undefined && (++tracked > MAX_TRACKED_IDS || (trackedChars += row.id.length + 64) > MAX_TRACKED_CHARS)) {
        // Too many to remember: from now on every batch asks the tables (which hold the earlier lines' rows).
        for (const l of lanes) l.seen = undefined;
      }
    }
    lane.index.set(row.id, lane.rows.length);
    lane.rows.push(row);
    lane.bytes += row.id.length + row.embedding.length + row.metadata.length + 3;
    // The first batches are small, so the database starts while Node reads on; each is twice the last, up to the size.
    if (lane.rows.length >= batchRows || lane.bytes >= Math.min(batchBytes, FIRST_BATCH_BYTES * 2 ** lane.sent)) {
      send(lane);
      // One batch being written, one encoded behind it, one filling: then reading waits.
      while (lane.pending.length > 1 && failure === undefined) await lane.pending[0];
    }
  };

  let lastStats = 0;
  let lastYield = performance.now();
  let report: LoadReport | undefined;
  let loadError: unknown;
  let built = new Map<LoadTable, Array<{ name: string; ms: number }>>();
  let indexMs = 0;
  try {
    await settle(tables.map((t) => t.inspect(upsert)));
    if (c.shards !== undefined) await settle([...new Map(tables.map((t) => [t.spec.secondary, t])).values()].map(checkRouting));
    // Committed at once: from here on, the finally below builds them again whatever happens.
    await settle(tables.map((t) => t.dropIndexes()));
    await settle(tables.map((t) => t.begin()));
    for (const lane of lanes) lane.seen = lane.table.empty ? new Map() : undefined;
    for (const t of tables) {
      if (t.dropped.length > 0) events.onNote?.(`${t.label} is empty: its index ${t.dropped.map((d) => d.name).join(', ')} is dropped, and built again once the rows are in`);
      if (t.keptIndex) events.onNote?.(`${t.label}: ${t.keptIndex}`);
    }
    tLoad = performance.now();
    const parser = parserFor(input.format, c.dimension);
    const handle = async (p: ReturnType<typeof parser.push>) => {
      if (p === undefined) return;
      linesRead++;
      if (isBad(p)) addBad(p);
      else await take(p);
    };
    try {
      for await (const lines of readLines(input.input, (n) => (bytesRead += n))) {
        if (input.signal?.aborted) throw interrupted();
        for (const raw of lines) {
          await handle(parser.push(raw));
          if (failure !== undefined) break;
          // Parsing must not starve the sockets: the COPY in flight is written as its socket drains, which Node
          // hears of only between tasks (a chunk of input already read resolves as a microtask, never yielding).
          if (performance.now() - lastYield >= YIELD_EVERY_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            lastYield = performance.now();
          }
        }
        if (failure !== undefined) break;
        const now = performance.now();
        if (now - lastStats >= 200) {
          lastStats = now;
          events.onStats?.(stats());
        }
      }
      if (failure === undefined) await handle(parser.end());
      if (input.signal?.aborted) throw interrupted();
    } catch (err) {
      if (input.signal?.aborted) throw interrupted();
      if (err instanceof InputFormatError) {
        throw new VecscaleError('config', `${input.source}: ${err.message}`, { meta: { source: input.source } });
      }
      if (err instanceof VecscaleError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new VecscaleError('config', `cannot read ${input.source}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'Z_DATA_ERROR' ? 'not a gzip file, or a corrupt one' : (e.message ?? String(err))}`, {
        hint: 'nothing was loaded',
        meta: { source: input.source },
      });
    }
    if (failure === undefined) for (const lane of lanes) if (lane.rows.length > 0) send(lane);
    await Promise.all(lanes.map((l) => l.tail));
    if (failure !== undefined) throw failure;
    const loadMs = performance.now() - tLoad;
    events.onStats?.(stats());
    events.onRowsDone?.(stats());

    // Commit every table; only now is anything visible.
    const committed: LoadTable[] = [];
    for (const t of tables) {
      try {
        await t.commit();
        committed.push(t);
      } catch (err) {
        // The server refused the COMMIT: that table has nothing. The connection was lost or went silent with the COMMIT
        // sent: it may have committed, or not — said as such, never as "nothing was loaded".
        const refused = err instanceof VecscaleError && err.code === 'database';
        if (committed.length === 0 && refused) throw err;
        const rest = tables.filter((x) => !committed.includes(x) && x !== t);
        const landed = committed.length > 0 ? `the load committed on ${committed.map((x) => x.label).join(', ')}; ` : '';
        throw new VecscaleError(
          'partial_apply',
          `${landed}the commit on ${t.label} failed: ${(err as Error).message}` +
            `${refused ? ` (nothing was loaded into ${t.label})` : ` (whether ${t.label} committed is unknown: its answer never came)`}` +
            `${rest.length > 0 ? `; nothing was loaded into ${rest.map((x) => x.label).join(', ')}` : ''}`,
          {
            hint: 'load the same input again with --upsert: it replaces what landed and adds the rest',
            meta: { committed: committed.map((x) => x.label), uncertain: refused ? [] : [t.label] },
          },
        );
      }
    }
    bad.sort((x, y) => x.line - y.line);
    if (bad.length > MAX_BAD_LINES_LISTED) bad.length = MAX_BAD_LINES_LISTED;
    report = {
      collection: c.name,
      source: input.source,
      format: input.format,
      upsert,
      linesRead,
      rowsLoaded,
      rowsReplaced: replaced,
      linesSuperseded: superseded,
      badLineCount: badCount,
      badLines: bad,
      tables: tables.map((t) => ({
        secondary: t.spec.secondary,
        table: `vecs.${t.spec.table}`,
        rows: t.rows,
        indexesRebuilt: [],
        ...(t.keptIndex ? { indexKept: t.keptIndex } : {}),
      })),
      loadMs: Math.round(loadMs),
      indexMs: 0,
      totalMs: 0,
      rowsPerSecond: loadMs > 0 ? Math.round((rowsLoaded / loadMs) * 1000) : 0,
    };
  } catch (err) {
    failure ??= err;
    loadError = err;
    // Writes still in flight end first (their connection is busy until then), then every transaction rolls back.
    await Promise.all(lanes.map((l) => l.tail.catch(() => undefined)));
    await Promise.all(tables.map((t) => t.rollback()));
  }

  // Whatever happened, the indexes dropped for the load are built again: one pod's builds one after another (they
  // compete for its CPUs), pods side by side.
  const tIndex = performance.now();
  const byPod = new Map<string, LoadTable[]>();
  for (const t of tables) byPod.set(t.spec.secondary, [...(byPod.get(t.spec.secondary) ?? []), t]);
  const unbuilt: Array<{ table: LoadTable; error: unknown }> = [];
  built = new Map();
  await Promise.all(
    [...byPod.values()].map(async (ts) => {
      for (const t of ts) {
        try {
          built.set(t, await t.rebuildIndexes(events.onProgress));
        } catch (error) {
          unbuilt.push({ table: t, error });
        }
      }
    }),
  );
  indexMs = performance.now() - tIndex;
  // Statistics for what landed (the indexes first: ANALYZE reads them too).
  if (loadError === undefined) await Promise.all(tables.filter((t) => t.rows > 0).map((t) => t.analyze()));
  await Promise.all(tables.map((t) => t.close()));

  const missing = unbuilt.map(
    (u) => `${u.table.label}: index ${u.table.dropped.map((d) => d.name).join(', ')} dropped for the load could not be built again (${(u.error as Error).message})`,
  );
  const rebuildHint = 'run `vecscale apply` to build the missing index (`vecscale plan` shows it)';
  if (loadError !== undefined) {
    if (missing.length === 0) throw loadError;
    const e = loadError instanceof VecscaleError ? loadError : new VecscaleError('internal', String((loadError as Error)?.message ?? loadError));
    throw new VecscaleError(e.code, `${e.message}\n${missing.join('\n')}`, { meta: { ...e.meta, missingIndexes: missing }, hint: rebuildHint, cause: loadError });
  }
  if (missing.length > 0) {
    throw new VecscaleError('partial_apply', `the rows were loaded (${rowsLoaded}), but:\n${missing.join('\n')}`, { hint: rebuildHint, meta: { rowsLoaded, missingIndexes: missing } });
  }
  const r = report!;
  return {
    ...r,
    tables: r.tables.map((t, i) => ({ ...t, indexesRebuilt: built.get(tables[i]!) ?? [] })),
    indexMs: Math.round(indexMs),
    totalMs: Math.round(performance.now() - t0),
  };
}
