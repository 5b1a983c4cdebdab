/**
 * How an index build over rows already in its table runs: the maintenance_work_mem and parallel workers it gets,
 * set for its CREATE INDEX CONCURRENTLY only (SET before, RESET after), and the plan's note saying so. Pure.
 *
 * Written in `index.build`, a value is used as written (workers capped by what the server can start). Not written:
 * the session's, except that a build needing more than the session's maintenance_work_mem (an HNSW graph:
 * hnswBuildBytes or hnswGraphBytes; IVFFlat's samples: ivfflatBuildBytes) gets the estimate, rounded up to a MB, but never more than the larger of the session's value and
 * min(shared_buffers, 16 GB). The server's RAM is not visible from SQL; shared_buffers is what the operator gave
 * PostgreSQL to keep (conventionally a quarter of the RAM), so one build borrowing as much again is within what the
 * server was sized for, and 16 GB bounds what vecscale takes without being told.
 */
import type { IndexBuild } from '../config/types.js';
import { type IndexObject, isVectorMethod, keys, type LiveFacts } from '../model/state.js';
import { literal } from '../sql/quote.js';
import { formatBytes } from '../util/bytes.js';
import { memorySetting } from '../util/pg-memory.js';

/** The most maintenance_work_mem vecscale gives a build by itself, whatever shared_buffers is. */
export const AUTO_MEMORY_CEILING = 16 * 1024 ** 3;
const MB = 1024 * 1024;

/** An HNSW graph's size while it is built, per row: 8 + 4·dims bytes, and 30% more (../shared/FACTS.md). */
export const hnswBuildBytes = (dimension: number, rows: number): number => Math.ceil((8 + 4 * dimension) * rows * 1.3);

/**
 * The same with the graph's neighbour lists counted: pgvector keeps 2·m neighbours a row on layer 0 (measured on
 * 45k × 384: 2.3 kB a row at m 16, 3.3 kB at m 48, where the rule above says 2.0 kB): 4·dims + 268 + 32·m bytes.
 * The larger of the two is what a build is given (for few dimensions and a large m, this one).
 */
export const hnswGraphBytes = (dimension: number, m: number, rows: number): number => Math.ceil((4 * dimension + 268 + 32 * m) * rows);

/**
 * What pgvector's IVFFlat build allocates before it starts, whatever the table's size: max(50·lists, 10000) sample
 * vectors and the lists' centers, 4·dims + 8 bytes each, and about 15% more (measured: lists 1000 × 768 dimensions,
 * "memory required is 171 MB"). With less maintenance_work_mem it refuses to build at all.
 */
export const ivfflatBuildBytes = (dimension: number, lists: number): number =>
  Math.ceil((Math.max(50 * lists, 10_000) + lists) * (4 * dimension + 8) * 1.2);

/** What one build needs, and which rule said so (for the note). */
function neededBy(index: IndexObject, dimension: number, rows: number): { bytes: number; rule: string } | undefined {
  // A metadata index (GIN, btree) works within whatever maintenance_work_mem it has: nothing to plan.
  if (rows <= 0 || !isVectorMethod(index.method)) return undefined;
  if (index.method === 'ivfflat') {
    const lists = Number(index.params.lists ?? 100);
    return { bytes: ivfflatBuildBytes(dimension, lists), rule: `(max(50 × ${lists} lists, 10000) + ${lists}) sample vectors × (4 × ${dimension} + 8) bytes × 1.2` };
  }
  const m = Number(index.params.m ?? 16);
  const facts = hnswBuildBytes(dimension, rows);
  const graph = hnswGraphBytes(dimension, m, rows);
  return graph > facts
    ? { bytes: graph, rule: `(4 × ${dimension} + 268 + 32 × m ${m}) bytes a row: the graph's neighbour lists` }
    : { bytes: facts, rule: `(8 + 4 × ${dimension}) bytes a row × 1.3` };
}

/** Where the build's maintenance_work_mem comes from. */
type MemorySource =
  | { readonly from: 'topology' }
  | { readonly from: 'session' }
  | { readonly from: 'raised' }
  /** Raised, but only as far as vecscale goes by itself: `ceiling` is what stopped it. */
  | { readonly from: 'capped'; readonly ceiling: 'shared_buffers' | 'fixed' };

type WorkerSource =
  | { readonly from: 'topology'; readonly written: number; readonly limit?: { readonly name: string; readonly value: number } }
  | { readonly from: 'session' };

export interface IndexBuildPlan {
  /** Rows already in the table (an estimate), and for HNSW the graph's estimated size in bytes. */
  readonly rows: number;
  readonly need: number | undefined;
  /** How `need` was reckoned, for the note. */
  readonly needRule?: string | undefined;
  /** maintenance_work_mem the build runs with, in bytes; undefined: the session's, not known. */
  readonly memory: number | undefined;
  readonly memoryFrom: MemorySource;
  /** The session's maintenance_work_mem, in bytes, when known. */
  readonly sessionMemory: number | undefined;
  /** max_parallel_maintenance_workers the build runs with; undefined: the session's, not known. */
  readonly workers: number | undefined;
  readonly workersFrom: WorkerSource;
  /** Statements around the CREATE INDEX: SET before, RESET after; empty when the session's settings stand. */
  readonly before: readonly string[];
  readonly after: readonly string[];
}

/** The table's rows as the catalogs know them; never analyzed: from its size, a row being its vector, id, metadata and header. */
function rowsOf(index: IndexObject, dimension: number, facts: LiveFacts): number {
  const size = facts.rowEstimates?.get(keys.relation(index.schema, index.table));
  if (size === undefined) return 0;
  return Math.max(0, 'rows' in size ? size.rows : Math.round(size.bytes / (4 * dimension + 8 + 64)));
}

/** The settings one build of `index` (a desired index, built CONCURRENTLY over its table's rows) runs with. */
export function planIndexBuild(index: IndexObject, facts: LiveFacts): IndexBuildPlan {
  const dimension = index.build?.dimension ?? 0;
  const settings: IndexBuild = index.build?.settings ?? {};
  const rows = rowsOf(index, dimension, facts);
  const needed = neededBy(index, dimension, rows);
  const need = needed?.bytes;
  const session = facts.maintenanceWorkMem;
  const limits = facts.buildLimits;

  let memory = session;
  let memoryFrom: MemorySource = { from: 'session' };
  let setMemory: number | undefined;
  if (settings.maintenanceWorkMemKb !== undefined) {
    memory = setMemory = settings.maintenanceWorkMemKb * 1024;
    memoryFrom = { from: 'topology' };
  } else if (need !== undefined && session !== undefined && limits !== undefined && need > session) {
    const wanted = Math.ceil(need / MB) * MB;
    const ceiling = Math.min(limits.sharedBuffers, AUTO_MEMORY_CEILING);
    const granted = Math.min(wanted, Math.max(session, Math.floor(ceiling / MB) * MB));
    if (granted > session) {
      memory = setMemory = granted;
      memoryFrom = granted < wanted ? { from: 'capped', ceiling: limits.sharedBuffers <= AUTO_MEMORY_CEILING ? 'shared_buffers' : 'fixed' } : { from: 'raised' };
    }
  }

  let workers = limits?.maxParallelMaintenanceWorkers;
  let workersFrom: WorkerSource = { from: 'session' };
  if (settings.parallelWorkers !== undefined) {
    // NOTE: a parallel build's workers come from max_worker_processes' pool, at most max_parallel_workers at a time:
    // a higher setting is accepted by PostgreSQL and silently starts fewer.
    const bounds = limits === undefined ? [] : [
      { name: 'max_parallel_workers', value: limits.maxParallelWorkers },
      { name: 'max_worker_processes', value: limits.maxWorkerProcesses },
    ];
    const limit = bounds.filter((b) => b.value < settings.parallelWorkers!).sort((a, b) => a.value - b.value)[0];
    workers = limit?.value ?? settings.parallelWorkers;
    workersFrom = { from: 'topology', written: settings.parallelWorkers, ...(limit ? { limit } : {}) };
  }

  const before: string[] = [];
  const after: string[] = [];
  if (setMemory !== undefined) {
    before.push(`SET maintenance_work_mem = ${literal(memorySetting(Math.ceil(setMemory / 1024)))}`);
    after.push('RESET maintenance_work_mem');
  }
  if (workersFrom.from === 'topology') {
    before.push(`SET max_parallel_maintenance_workers = ${Number(workers)}`);
    after.push('RESET max_parallel_maintenance_workers');
  }
  return { rows, need, needRule: needed?.rule, memory, memoryFrom, sessionMemory: session, workers, workersFrom, before, after };
}

/** `CREATE INDEX CONCURRENTLY …` with the build's settings around it: `build` is the index's create statements. */
export function withBuildSettings(build: readonly string[], how: IndexBuildPlan): string[] {
  const at = build.findIndex((s) => /^CREATE\s+INDEX\b/.test(s));
  if (at < 0 || how.before.length === 0) return [...build];
  return [...build.slice(0, at), ...how.before, build[at]!, ...how.after, ...build.slice(at + 1)];
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

function memoryText(how: IndexBuildPlan): string {
  const shown = how.memory === undefined ? 'unknown' : formatBytes(how.memory);
  const sessionHas = how.sessionMemory === undefined ? '' : formatBytes(how.sessionMemory);
  switch (how.memoryFrom.from) {
    case 'topology':
      return `maintenance_work_mem ${shown} (index.build.maintenance_work_mem${sessionHas ? `; the session has ${sessionHas}` : ''})`;
    case 'raised':
      return `maintenance_work_mem ${shown} (the session has ${sessionHas})`;
    case 'capped': {
      const why = how.memoryFrom.ceiling === 'shared_buffers' ? `shared_buffers, ${shown}` : `vecscale's ceiling, ${formatBytes(AUTO_MEMORY_CEILING)}`;
      return `maintenance_work_mem ${shown} (the session has ${sessionHas}; raised only as far as vecscale goes by itself: ${why})`;
    }
    case 'session':
      return how.memory === undefined ? 'the session\'s maintenance_work_mem (unknown here)' : `maintenance_work_mem ${shown} (the session's)`;
  }
}

function workersText(how: IndexBuildPlan): string | undefined {
  if (how.workers === undefined) return undefined;
  const w = how.workersFrom;
  const count = how.workers === 0 ? 'no parallel workers' : `up to ${plural(how.workers, 'parallel worker')}`;
  if (w.from === 'session') return `${count} (the session's max_parallel_maintenance_workers)`;
  if (w.limit === undefined) return `${count} (index.build.parallel_workers)`;
  return `${count} (index.build.parallel_workers is ${w.written}, capped by the server's ${w.limit.name}, ${w.limit.value})`;
}

/**
 * The plan's note on one build over rows already there, or undefined when there is nothing to say (an IVFFlat or
 * empty-table build with no `index.build`). For HNSW: the graph's estimated size, the maintenance_work_mem and
 * workers the build will run with, and a warning when even that will not hold the graph (the build then goes on
 * from disk, many times slower).
 */
export function buildNote(index: IndexObject, how: IndexBuildPlan, collection: string): string | undefined {
  const runs = [memoryText(how), workersText(how)].filter((x) => x !== undefined).join(' and ');
  if (how.need === undefined) {
    return how.before.length === 0 ? undefined : `the build of ${index.schema}.${index.table}'s index will run with ${runs}`;
  }
  const fits = how.memory === undefined || how.need <= how.memory;
  const what = index.method === 'ivfflat' ? 'IVFFlat' : 'HNSW';
  // A parallel HNSW build keeps its graph in shared memory: raised unasked, say where that memory comes from.
  const shm = index.method === 'hnsw' && (how.memoryFrom.from === 'raised' || how.memoryFrom.from === 'capped') && (how.workers ?? 1) > 0
    ? '; a parallel build holds the graph in shared memory, so /dev/shm needs that much room'
    : '';
  const head = `${fits ? '' : 'warning: '}the ${what} build over about ${Math.round(how.rows).toLocaleString('en-US')} rows of ${index.schema}.${index.table} ` +
    `needs about ${formatBytes(how.need)} (${how.needRule}); it will run with ${runs}${shm}`;
  if (fits) return head;
  const advice = how.memoryFrom.from === 'topology'
    ? `raise index.build.maintenance_work_mem of collection ${collection} if the server has the memory`
    : `set index.build.maintenance_work_mem of collection ${collection} to about ${memorySetting(Math.ceil(how.need / MB) * 1024)} if the server has the memory`;
  return index.method === 'ivfflat'
    ? `${head}: pgvector refuses to build with less ("memory required is …"), and apply fails, leaving an INVALID index (${advice})`
    : `${head}: the graph will not fit, and the build goes on from disk, many times slower (${advice})`;
}
