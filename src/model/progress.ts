/**
 * Typed progress of long work (moves, index builds). The library emits these; only `src/render/` turns them into a
 * spinner, a 10-second heartbeat line or JSON lines. Pure data: no timers, no terminal.
 */

/** What a running step counts: rows copied (a move), blocks built (an HNSW/IVFFlat build), or nothing countable. */
export type ProgressUnit = 'rows' | 'blocks';

export type ProgressEvent =
  | {
      readonly type: 'step-started';
      /** Stable within a run, e.g. `move:docs:copy`, `index:pod_b:vecs.ix_…`. */
      readonly id: string;
      readonly database: string;
      /** What the step does, for a human: `copying docs pod_a → pod_b`. */
      readonly label: string;
      /** Epoch milliseconds. */
      readonly at: number;
    }
  | {
      readonly type: 'progress';
      readonly id: string;
      readonly database: string;
      readonly label: string;
      readonly at: number;
      readonly unit?: ProgressUnit;
      readonly done?: number;
      readonly total?: number;
      /** Replication lag of a move, in bytes of WAL the target has not confirmed. */
      readonly lagBytes?: number;
      /** A phase within the step, as PostgreSQL names it (`building index: loading tuples`) or the move's. */
      readonly phase?: string;
    }
  | {
      readonly type: 'step-finished';
      readonly id: string;
      readonly database: string;
      readonly label: string;
      readonly at: number;
      readonly ok: boolean;
      /** One line: `100000 rows, write pause 212 ms`. */
      readonly detail?: string;
    };

export type ProgressSink = (event: ProgressEvent) => void;
