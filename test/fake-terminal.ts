/** A fake clock and a fake terminal for the progress renderers' tests (src/render/). */
import { Writable } from 'node:stream';
import type { ProgressClock } from '../src/render/progress.js';

/** A clock driven by hand: `advance` runs every due timer in time order. */
export function fakeClock(start = 1_000_000) {
  let t = start;
  let next = 0;
  const timers = new Map<number, { every: number; due: number; fn: () => void }>();
  const clock: ProgressClock = {
    now: () => t,
    every: (ms, fn) => {
      const id = next++;
      timers.set(id, { every: ms, due: t + ms, fn });
      return () => void timers.delete(id);
    },
  };
  const advance = (ms: number) => {
    const end = t + ms;
    for (;;) {
      const due = [...timers.values()].filter((x) => x.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!due) break;
      t = due.due;
      due.due += due.every;
      due.fn();
    }
    t = end;
  };
  return { clock, advance, pending: () => timers.size, now: () => t };
}

/** A stream that keeps what was written; `tty` gives it the cursor methods of a terminal. */
export function fakeStream(tty = false) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as Writable & Record<string, unknown>;
  if (tty) {
    Object.assign(stream, {
      isTTY: true,
      columns: 120,
      cursorTo: (x: number) => (chunks.push(`\x1b[${x + 1}G`), true),
      moveCursor: (_: number, dy: number) => (chunks.push(`\x1b[${-dy}A`), true),
      clearLine: () => (chunks.push('\x1b[K'), true),
    });
  }
  return { stream, text: () => chunks.join(''), lines: () => chunks.join('').split('\n').filter(Boolean) };
}
