/**
 * Progress of long work (moves, index builds) as the caller's terminal wants it, from the library's typed events
 * (src/model/progress.ts). Three modes, chosen by the caller (`progressMode`):
 * - `tty`: an ora spinner per running step, redrawn in place with counts, lag and elapsed time; a finished step's
 *   spinner becomes a ✔ / ✖ line with its detail.
 * - `plain` (CI, a pipe, NO_COLOR): no escape codes; a line when a step starts, one every 10 s per running step with
 *   its latest progress (as Terraform's "Still creating… [10s elapsed]"), a line when it finishes.
 * - `json`: each event as one JSON object on one line, as it comes.
 * Timers go through an injectable clock (tests drive time by hand), never keep the process alive, and end at close().
 */
import ora, { type Ora } from 'ora';
import type { ProgressEvent, ProgressSink } from '../model/progress.js';
import { formatBytes } from '../util/bytes.js';

export type ProgressMode = 'tty' | 'plain' | 'json';

/** Time for the renderer: the system's, or a test's hand-driven one. */
export interface ProgressClock {
  /** Epoch milliseconds (the same scale as events' `at`). */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called. Must not keep the process alive. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: ProgressClock = {
  now: () => Date.now(),
  every: (ms, fn) => {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** What the tty mode needs of a stream beyond writing (Node's tty.WriteStream has it all). */
export type ProgressStream = NodeJS.WritableStream & {
  readonly isTTY?: boolean;
  readonly columns?: number;
  cursorTo?(x: number): boolean;
  moveCursor?(dx: number, dy: number): boolean;
  clearLine?(dir: -1 | 0 | 1): boolean;
};

export interface ProgressRendererOptions {
  readonly mode: ProgressMode;
  /** Where progress goes: stderr in the CLI, never stdout (it carries --json's document). */
  readonly stream: ProgressStream;
  readonly clock?: ProgressClock;
  /** Plain mode's heartbeat, default 10 s. */
  readonly heartbeatMs?: number;
  /**
   * Applied to every label, phase and detail before it is shown (the CLI passes its control-character escaping).
   * Default: control and bidi characters written as visible escapes.
   */
  readonly escape?: (text: string) => string;
}

export interface ProgressRenderer {
  /** Hand this to the library (ApplyEvents.onProgress). Events after close() are ignored. */
  readonly sink: ProgressSink;
  /** Runs `write` (other output to the same stream) with the spinners out of the way, then redraws them. */
  interrupt(write: () => void): void;
  /** Stops every timer and clears the spinners; steps still running are left unreported. Idempotent. */
  close(): void;
}

/**
 * Which mode the CLI renders in: JSON lines with --json; spinners only on a terminal with colour allowed
 * (NO_COLOR, --no-color and TERM=dumb ask for plain text, as the rest of the output does); plain text otherwise.
 */
export function progressMode(o: { readonly json: boolean; readonly isTTY: boolean; readonly color: boolean; readonly env: NodeJS.ProcessEnv }): ProgressMode {
  if (o.json) return 'json';
  const plainAsked = !o.color || Boolean(o.env.NO_COLOR) || o.env.TERM === 'dumb';
  return o.isTTY && !plainAsked ? 'tty' : 'plain';
}

// --- text ------------------------------------------------------------------------------------------------------

const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw but a terminal may act on (C1 controls, bidi). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const code = (c: string, width: number): string => (c.codePointAt(0) ?? 0).toString(16).padStart(width, '0');
const visible = (text: string): string => text.replace(UNSAFE, (c) => (c < '\u0080' ? `\\x${code(c, 2)}` : `\\u${code(c, 4)}`));

/** `9s`, `1m02s`, `2h05m00s`: elapsed time, fixed width within each unit. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(s)}s`;
  if (m > 0) return `${m}m${pad(s)}s`;
  return `${s}s`;
}

/** `512 B`, `12 kB`, `3.4 MB`: WAL lag as pg_size_pretty reads (1024-based). */
export { formatBytes };

type Progress = Extract<ProgressEvent, { type: 'progress' }>;

const percent = (p: Progress): number | undefined =>
  p.done !== undefined && p.total !== undefined && p.total > 0 ? Math.min(100, Math.max(0, Math.floor((p.done / p.total) * 100))) : undefined;

/** The spinner's counts: `43,210 / 100,000 rows (43%)  lag 12 kB  building index: loading tuples`. */
function ttyCounts(p: Progress | undefined, esc: (s: string) => string): string[] {
  if (!p) return [];
  const n = (v: number) => v.toLocaleString('en-US');
  const unit = p.unit ? ` ${p.unit}` : '';
  const pct = percent(p);
  const counts =
    p.done === undefined ? [] : [p.total === undefined ? `${n(p.done)}${unit}` : `${n(p.done)} / ${n(p.total)}${unit}${pct === undefined ? '' : ` (${pct}%)`}`];
  return [...counts, ...(p.lagBytes === undefined ? [] : [`lag ${formatBytes(p.lagBytes)}`]), ...(p.phase ? [esc(p.phase)] : [])];
}

/** The heartbeat's counts: `43% rows (43210/100000), lag 12 kB, phase building index: loading tuples`. */
function plainCounts(p: Progress | undefined, esc: (s: string) => string): string[] {
  if (!p) return [];
  const unit = p.unit ? ` ${p.unit}` : '';
  const pct = percent(p);
  const counts = p.done === undefined ? [] : [pct === undefined ? `${p.done}${unit}` : `${pct}%${unit} (${p.done}/${p.total})`];
  return [...counts, ...(p.lagBytes === undefined ? [] : [`lag ${formatBytes(p.lagBytes)}`]), ...(p.phase ? [`phase ${esc(p.phase)}`] : [])];
}

// --- the renderer ----------------------------------------------------------------------------------------------

interface Running {
  readonly label: string;
  readonly startedAt: number;
  latest?: Progress;
  /** plain: the heartbeat's stop; tty: the step's spinner. */
  stopHeartbeat?: () => void;
  spinner?: Ora;
}

/** A renderer of progress events in the given mode (see the file's header). */
export function createProgressRenderer(opts: ProgressRendererOptions): ProgressRenderer {
  const clock = opts.clock ?? systemClock;
  const esc = opts.escape ?? visible;
  const stream = opts.stream;
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  const running = new Map<string, Running>();
  let closed = false;
  const line = (text: string) => void stream.write(`${text}\n`);

  // tty: the spinners are drawn one per line, in start order; ora draws and clears each one, this keeps them stacked.
  // ora's own timer is not used (it would keep the process alive and ignore the clock): one ticker redraws them all.
  let stopTicker: (() => void) | undefined;
  let drawn: Ora[] = [];
  const width = () => terminalWidth(stream);
  const oraStream = oraSafeStream(stream);
  // One line per spinner, cut rather than wrapped (a wrapped line miscounts on resize): the label gives way first, so
  // the numbers stay in sight. ora counts its text plus 4 columns as the line's width; a wider count clears a line
  // too many (the line above the spinners). NOTE: widths are counted in UTF-16 units: labels are SQL identifiers.
  const cut = (text: string, room: number) => (text.length <= room ? text : `${text.slice(0, Math.max(0, room - 1))}…`);
  const ttyText = (r: Running) => {
    const room = width() - 5;
    const tail = [...ttyCounts(r.latest, esc), formatElapsed(clock.now() - r.startedAt)].join('  ');
    return cut(`${cut(esc(r.label), Math.max(12, room - tail.length - 2))}  ${tail}`, room);
  };
  const clearBoard = () => {
    for (let i = drawn.length - 1; i >= 0; i--) {
      drawn[i]!.clear();
      if (i > 0) stream.moveCursor?.(0, -1);
    }
    drawn = [];
  };
  const drawBoard = () => {
    drawn = [...running.values()].flatMap((r) => (r.spinner ? [r.spinner] : []));
    drawn.forEach((s, i) => {
      if (i > 0) stream.write('\n');
      s.render();
    });
  };
  const redraw = () => {
    for (const r of running.values()) if (r.spinner) r.spinner.text = ttyText(r);
    clearBoard();
    drawBoard();
  };

  const start = (e: { id: string; label: string; at: number }): Running => {
    const r: Running = { label: e.label, startedAt: e.at };
    running.set(e.id, r);
    if (opts.mode === 'plain') {
      line(`${esc(e.label)}…`);
      r.stopHeartbeat = clock.every(heartbeatMs, () => {
        const parts = [...plainCounts(r.latest, esc), `${formatElapsed(clock.now() - r.startedAt)} elapsed`];
        line(`still ${esc(r.label)}: ${parts.join(', ')}`);
      });
    } else if (opts.mode === 'tty') {
      r.spinner = ora({ stream: oraStream, isEnabled: true, discardStdin: false, hideCursor: false, text: ttyText(r) });
      stopTicker ??= clock.every(r.spinner.interval, redraw);
      redraw();
    }
    return r;
  };

  const finish = (e: Extract<ProgressEvent, { type: 'step-finished' }>) => {
    const r = running.get(e.id) ?? start(e);
    const took = formatElapsed(e.at - r.startedAt);
    const detail = e.detail ? esc(e.detail) : undefined;
    r.stopHeartbeat?.();
    if (opts.mode === 'plain') {
      line(`${esc(r.label)}: ${e.ok ? 'done in' : 'failed after'} ${took}${detail ? ` (${detail})` : ''}`);
    } else if (r.spinner) {
      clearBoard();
      // A persisted line may wrap: ora never clears it again.
      const text = [esc(r.label), ...(detail ? [detail] : []), took].join('  ');
      if (e.ok) r.spinner.succeed(text);
      else r.spinner.fail(text);
    }
    running.delete(e.id);
    if (opts.mode === 'tty') {
      drawBoard();
      if (running.size === 0) {
        stopTicker?.();
        stopTicker = undefined;
      }
    }
  };

  const sink: ProgressSink = (e) => {
    if (closed) return;
    if (opts.mode === 'json') {
      line(JSON.stringify(e).replace(UNSAFE_IN_JSON, (c) => `\\u${code(c, 4)}`));
      return;
    }
    switch (e.type) {
      case 'step-started':
        if (!running.has(e.id)) start(e);
        return;
      case 'progress': {
        // A progress event of a step never started is taken as its start (the library may join late).
        (running.get(e.id) ?? start(e)).latest = e;
        return;
      }
      case 'step-finished':
        finish(e);
    }
  };

  return {
    sink,
    interrupt: (write) => {
      if (drawn.length === 0) return write();
      clearBoard();
      write();
      drawBoard();
    },
    close: () => {
      if (closed) return;
      closed = true;
      stopTicker?.();
      clearBoard();
      for (const r of running.values()) r.stopHeartbeat?.();
      running.clear();
    },
  };
}

/** The stream's width in columns, 80 when it reports none. */
export const terminalWidth = (stream: ProgressStream): number => stream.columns || 80;

/**
 * The stream as ora should see it. NOTE: ora divides by the stream's `columns` to count wrapped lines: a terminal
 * reporting 0 columns (a pty with no size, as `script` or `docker -t` give) makes that Infinity and its clear() loop
 * forever. ora sees a usable width.
 */
export function oraSafeStream<S extends ProgressStream>(stream: S): S {
  return new Proxy(stream, {
    get: (t, p) => {
      if (p === 'columns') return terminalWidth(t);
      const v: unknown = Reflect.get(t, p);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
