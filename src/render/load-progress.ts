/**
 * `vecscale load`'s progress, from the library's counts (src/load/run.ts LoadStats), in the three modes of
 * ./progress.ts (`progressMode`):
 * - `tty`: one ora spinner redrawn in place — rows loaded, rows/s, and with a known input size the share read and
 *   the ETA (`loading docs  120,000 rows  8,412 rows/s  43%  ETA 19s  2 bad lines  14s`); it becomes a ✔ line when
 *   the rows are in.
 * - `plain` (a pipe, CI, NO_COLOR): a line when the load starts, a heartbeat line every 10 s, a line when the rows
 *   are in.
 * - `json`: the heartbeat as one JSON object per line.
 * Index rebuilds that follow are ProgressEvents, drawn by ./progress.ts's renderer in the same mode. Timers go
 * through the injectable clock and never keep the process alive.
 */
import ora, { type Ora } from 'ora';
import type { LoadStats } from '../load/run.js';
import type { ProgressSink } from '../model/progress.js';
import { createProgressRenderer, formatElapsed, oraSafeStream, type ProgressClock, type ProgressMode, type ProgressStream, systemClock, terminalWidth } from './progress.js';

export interface LoadProgressOptions {
  readonly mode: ProgressMode;
  /** stderr in the CLI (stdout carries --json's document). */
  readonly stream: ProgressStream;
  /** What is loaded, for people: `loading docs from docs.jsonl`. */
  readonly label: string;
  readonly clock?: ProgressClock;
  /** plain and json modes' heartbeat, default 10 s. */
  readonly heartbeatMs?: number;
  /** Applied to every label and note before it is shown (the CLI passes its control-character escaping). */
  readonly escape?: (text: string) => string;
}

export interface LoadProgress {
  /** The latest counts (the library's onStats). */
  update(s: LoadStats): void;
  /** The rows are all in: the spinner becomes a ✔ line (plain: a line). */
  rowsDone(s: LoadStats): void;
  /** Index builds and other steps, as ProgressEvents (the library's onProgress). */
  readonly sink: ProgressSink;
  /** A line of note, printed above the spinner. */
  note(text: string): void;
  /** Stops every timer and clears what is drawn. Idempotent. */
  close(): void;
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

/** Rows per second over the whole load so far. */
export const rateOf = (s: LoadStats): number => (s.elapsedMs > 0 ? (s.rowsLoaded * 1000) / s.elapsedMs : 0);

/** The share of the input read (0–1), when its size is known. */
export const shareOf = (s: LoadStats): number | undefined =>
  s.totalBytes !== undefined && s.totalBytes > 0 ? Math.min(1, s.bytesRead / s.totalBytes) : undefined;

/** Time left at the pace so far, from the share of bytes read; undefined without a size or before any progress. */
export function etaMs(s: LoadStats): number | undefined {
  const f = shareOf(s);
  if (f === undefined || f <= 0 || s.elapsedMs <= 0) return undefined;
  return (s.elapsedMs * (1 - f)) / f;
}

/** The counts as the spinner shows them. */
export function ttyCounts(s: LoadStats): string {
  const share = shareOf(s);
  const eta = etaMs(s);
  return [
    `${n(s.rowsLoaded)} rows`,
    `${n(rateOf(s))} rows/s`,
    ...(share === undefined ? [] : [`${Math.floor(share * 100)}%`]),
    ...(eta === undefined || share === 1 ? [] : [`ETA ${formatElapsed(eta)}`]),
    ...(s.badLines > 0 ? [`${n(s.badLines)} bad line${s.badLines === 1 ? '' : 's'}`] : []),
    formatElapsed(s.elapsedMs),
  ].join('  ');
}

/** The counts as the heartbeat shows them. */
export function plainCounts(s: LoadStats): string {
  const share = shareOf(s);
  const eta = etaMs(s);
  return [
    `${s.rowsLoaded} rows`,
    `${Math.round(rateOf(s))} rows/s`,
    ...(share === undefined ? [] : [`${Math.floor(share * 100)}% read`]),
    ...(eta === undefined || share === 1 ? [] : [`ETA ${formatElapsed(eta)}`]),
    ...(s.badLines > 0 ? [`${s.badLines} bad lines`] : []),
    `${formatElapsed(s.elapsedMs)} elapsed`,
  ].join(', ');
}

const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const visible = (text: string): string => text.replace(UNSAFE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);

export function createLoadProgress(opts: LoadProgressOptions): LoadProgress {
  const clock = opts.clock ?? systemClock;
  const esc = opts.escape ?? visible;
  const stream = opts.stream;
  const label = esc(opts.label);
  const startedAt = clock.now();
  const steps = createProgressRenderer({ mode: opts.mode, stream, clock, ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}), escape: esc });
  const line = (text: string) => void stream.write(`${text}\n`);
  let latest: LoadStats = { linesRead: 0, rowsLoaded: 0, badLines: 0, bytesRead: 0, totalBytes: undefined, elapsedMs: 0 };
  let closed = false;
  let rowsOver = false;
  let stop: (() => void) | undefined;
  let spinner: Ora | undefined;
  const width = () => terminalWidth(stream);
  const oraStream = oraSafeStream(stream);
  const ttyText = () => {
    const text = `${label}  ${ttyCounts(latest)}`;
    const room = width() - 5;
    return text.length <= room ? text : `${text.slice(0, Math.max(0, room - 1))}…`;
  };
  const heartbeat = () => {
    const s = { ...latest, elapsedMs: clock.now() - startedAt };
    if (opts.mode === 'json') {
      const eta = etaMs(s);
      line(
        JSON.stringify({
          type: 'progress',
          id: 'load',
          label: opts.label,
          at: clock.now(),
          unit: 'rows',
          done: s.rowsLoaded,
          rowsPerSecond: Math.round(rateOf(s)),
          badLines: s.badLines,
          bytesRead: s.bytesRead,
          ...(s.totalBytes === undefined ? {} : { totalBytes: s.totalBytes }),
          ...(eta === undefined ? {} : { etaMs: Math.round(eta) }),
        }).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`),
      );
    } else {
      line(`still ${label}: ${plainCounts(s)}`);
    }
  };

  if (opts.mode === 'tty') {
    spinner = ora({ stream: oraStream, isEnabled: true, discardStdin: false, hideCursor: false, text: ttyText() });
    spinner.render();
    stop = clock.every(spinner.interval, () => {
      if (!spinner) return;
      latest = { ...latest, elapsedMs: clock.now() - startedAt };
      spinner.text = ttyText();
      spinner.render();
    });
  } else {
    if (opts.mode === 'plain') line(`${label}…`);
    stop = clock.every(opts.heartbeatMs ?? 10_000, heartbeat);
  }

  const endRows = (s: LoadStats) => {
    if (rowsOver) return;
    rowsOver = true;
    stop?.();
    stop = undefined;
    latest = s;
    const summary = `${n(s.rowsLoaded)} rows in ${formatElapsed(s.elapsedMs)} (${n(rateOf(s))} rows/s)${s.badLines > 0 ? `, ${n(s.badLines)} bad line${s.badLines === 1 ? '' : 's'}` : ''}`;
    if (spinner) {
      spinner.succeed(`${label}: ${summary}`);
      spinner = undefined;
    } else if (opts.mode === 'plain') {
      line(`${label}: ${summary}`);
    }
  };

  return {
    update: (s) => {
      if (!closed && !rowsOver) latest = s;
    },
    rowsDone: (s) => {
      if (!closed) endRows(s);
    },
    sink: (e) => {
      if (!closed) steps.sink(e);
    },
    note: (text) => {
      if (closed) return;
      if (spinner) {
        spinner.clear();
        line(esc(text));
        spinner.render();
      } else {
        steps.interrupt(() => line(esc(text)));
      }
    },
    close: () => {
      if (closed) return;
      closed = true;
      stop?.();
      spinner?.stop();
      spinner = undefined;
      steps.close();
    },
  };
}
