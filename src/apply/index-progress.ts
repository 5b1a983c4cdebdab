/**
 * Progress of an index build, as PostgreSQL reports it in `pg_stat_progress_create_index` (HNSW and IVFFlat count
 * blocks, not tuples). The build's own connection is busy with the build, so a second connection polls the view for
 * the build's backend about once a second.
 *
 * Best-effort by design: a poll that fails, a second connection that cannot be opened, or a role that may not see
 * the other backend's progress (the view shows NULLs then) only means fewer progress events; the build itself is
 * never slowed, failed or awaited on the poller's account. Each poll is bounded by a short statement timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProgressEvent, ProgressSink } from '../model/progress.js';
import { close, connect, type Db, type Target, usable } from '../db/connect.js';

/** How often the view is read. */
export const INDEX_PROGRESS_POLL_MS = 1_000;
/** The poller's bound on connecting and on each poll: it must never outlive the build by much. */
const POLL_TIMEOUT_MS = 2_000;

/** The progress step an index build is shown as. */
export interface IndexProgressStep {
  /** Stable within a run, e.g. `index:pod_b:vecs.docs_vec_idx`. */
  readonly id: string;
  /** A gerund phrase for people: `building index vecs.docs_vec_idx on pod_b`. */
  readonly label: string;
}

export interface IndexProgressOptions {
  /** Default INDEX_PROGRESS_POLL_MS (tests shorten it). */
  readonly pollMs?: number;
  /** Epoch milliseconds for the events' `at` (default Date.now). */
  readonly now?: () => number;
}

interface ProgressRow {
  phase: string | null;
  blocks_done: string | null;
  blocks_total: string | null;
}

// NOTE: blocks_* are bigint (strings from pg); they count heap blocks scanned in the phase shown, and a
// CONCURRENTLY build scans again in its validation phase, so done/total restart with the phase.
const PROGRESS_SQL = `SELECT phase, blocks_done, blocks_total
  FROM pg_catalog.pg_stat_progress_create_index WHERE pid = $1`;

/** The backend pid of a connection (for `withIndexProgress`); undefined when it cannot be read. */
export async function backendPid(db: Db): Promise<number | undefined> {
  try {
    const r = await db.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid');
    return r.rows[0]?.pid;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` (the build on the connection whose backend is `buildPid`) as one progress step on `sink`: step-started,
 * `progress` events in blocks while the view reports the build, step-finished when `fn` settles (ok or not); nothing
 * after that. Returns or throws what `fn` does.
 */
export async function withIndexProgress<T>(
  target: Target,
  buildPid: number,
  step: IndexProgressStep,
  sink: ProgressSink,
  fn: () => Promise<T>,
  opts: IndexProgressOptions = {},
): Promise<T> {
  const now = opts.now ?? Date.now;
  const base = { id: step.id, database: target.database, label: step.label };
  let finished = false;
  const stop = new AbortController();
  const emit = (e: ProgressEvent) => {
    try {
      sink(e);
    } catch {
      // A renderer's failure is not the build's.
    }
  };
  emit({ type: 'step-started', ...base, at: now() });
  const poller = poll(target, buildPid, opts.pollMs ?? INDEX_PROGRESS_POLL_MS, stop.signal, (p) => {
    if (!finished) emit({ type: 'progress', ...base, at: now(), unit: 'blocks', ...p });
  });
  try {
    const result = await fn();
    finished = true;
    emit({ type: 'step-finished', ...base, at: now(), ok: true });
    return result;
  } catch (err) {
    finished = true;
    const message = (err as { message?: unknown })?.message;
    emit({ type: 'step-finished', ...base, at: now(), ok: false, ...(typeof message === 'string' ? { detail: message.split('\n')[0] } : {}) });
    throw err;
  } finally {
    finished = true;
    stop.abort();
    // Not awaited: an in-flight poll ends within POLL_TIMEOUT_MS and closes its connection then.
    void poller;
  }
}

/** Polls until `signal` aborts, reporting each change of (phase, done, total). Never throws. */
async function poll(
  target: Target,
  pid: number,
  everyMs: number,
  signal: AbortSignal,
  report: (p: { phase?: string; done?: number; total?: number }) => void,
): Promise<void> {
  let db: Db | undefined;
  try {
    db = await connect(target, {
      applicationName: 'vecscale progress',
      readOnly: true,
      timeoutMs: POLL_TIMEOUT_MS,
      statementTimeoutMs: POLL_TIMEOUT_MS,
    });
    let seen = '';
    while (!signal.aborted && usable(db)) {
      const row = await db.query<ProgressRow>(PROGRESS_SQL, [pid]).then(
        (r) => r.rows[0],
        () => undefined,
      );
      if (row && !signal.aborted) {
        const total = row.blocks_total === null ? undefined : Number(row.blocks_total);
        const done = row.blocks_done === null ? undefined : Number(row.blocks_done);
        const key = `${row.phase}|${done}|${total}`;
        if (key !== seen) {
          seen = key;
          report({ ...(row.phase ? { phase: row.phase } : {}), ...(done === undefined ? {} : { done }), ...(total === undefined ? {} : { total }) });
        }
      }
      await sleep(everyMs, undefined, { ref: false, signal }).catch(() => undefined);
    }
  } catch {
    // Best-effort: no second connection, no progress.
  } finally {
    if (db) await close(db);
  }
}
