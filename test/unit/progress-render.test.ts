import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProgressEvent } from '../../src/model/progress.js';
import { createProgressRenderer, formatBytes, formatElapsed, progressMode, type ProgressMode } from '../../src/render/progress.js';
import { fakeClock, fakeStream } from '../fake-terminal.js';

const ESC = /[\u001b\u009b]/;

function setup(mode: ProgressMode, tty = false) {
  const c = fakeClock();
  const s = fakeStream(tty);
  const r = createProgressRenderer({ mode, stream: s.stream, clock: c.clock });
  const base = { id: 'move:docs:copy', database: 'pod_b', label: 'copying docs pod_a → pod_b' };
  const started: ProgressEvent = { type: 'step-started', ...base, at: c.now() };
  const progress = (done: number, extra: Partial<ProgressEvent> = {}): ProgressEvent =>
    ({ type: 'progress', ...base, at: c.now(), unit: 'rows', done, total: 100_000, ...extra }) as ProgressEvent;
  const finished = (ok: boolean, detail?: string): ProgressEvent => ({ type: 'step-finished', ...base, at: c.now(), ok, ...(detail ? { detail } : {}) });
  return { ...c, ...s, r, started, progress, finished };
}

test('plain: a line at the start, a heartbeat every 10 s with the latest progress, a line at the end', () => {
  const t = setup('plain');
  t.r.sink(t.started);
  assert.deepEqual(t.lines(), ['copying docs pod_a → pod_b…']);
  t.advance(9_999);
  assert.equal(t.lines().length, 1, 'no heartbeat before 10 s');
  t.advance(1);
  assert.equal(t.lines()[1], 'still copying docs pod_a → pod_b: 10s elapsed');
  t.r.sink(t.progress(43_210, { lagBytes: 12 * 1024 }));
  t.advance(2_000);
  assert.equal(t.lines().length, 2, 'a progress event prints nothing by itself');
  t.advance(120_000);
  const heartbeats = t.lines().slice(1);
  assert.equal(heartbeats.length, 13, 'one line per 10 s: 10 s … 130 s');
  assert.equal(heartbeats.at(-1), 'still copying docs pod_a → pod_b: 43% rows (43210/100000), lag 12 kB, 2m10s elapsed');
  t.advance(5_000);
  t.r.sink(t.finished(true, '100000 rows, write pause 212 ms'));
  assert.equal(t.lines().at(-1), 'copying docs pod_a → pod_b: done in 2m17s (100000 rows, write pause 212 ms)');
  assert.equal(t.pending(), 0, 'the heartbeat stops with its step');
  t.advance(60_000);
  assert.equal(t.lines().length, 15, 'nothing after the step finished');
  assert.doesNotMatch(t.text(), ESC);
});

test('plain: each running step has its own heartbeat; blocks with a phase; a failure says so', () => {
  const t = setup('plain');
  const ix = { id: 'index:pod_b:ix', database: 'pod_b', label: 'building index vecs.ix on docs (pod_b)' };
  t.r.sink(t.started);
  t.advance(5_000);
  t.r.sink({ type: 'step-started', ...ix, at: t.now() });
  t.r.sink({ type: 'progress', ...ix, at: t.now(), unit: 'blocks', done: 120, total: 300, phase: 'building index: loading tuples' });
  t.advance(10_000);
  assert.deepEqual(t.lines().slice(2), [
    'still copying docs pod_a → pod_b: 10s elapsed',
    'still building index vecs.ix on docs (pod_b): 40% blocks (120/300), phase building index: loading tuples, 10s elapsed',
  ]);
  t.r.sink({ type: 'step-finished', ...ix, at: t.now(), ok: false, detail: 'could not extend file' });
  assert.equal(t.lines().at(-1), 'building index vecs.ix on docs (pod_b): failed after 10s (could not extend file)');
  assert.equal(t.pending(), 1);
  t.r.close();
});

test('plain and json: control characters in a label come out escaped, never raw', () => {
  for (const mode of ['plain', 'json'] as const) {
    const t = setup(mode);
    t.r.sink({ ...t.started, label: 'copying \x1b[2Jdocs\u009b' } as ProgressEvent);
    t.advance(10_000);
    t.r.sink(t.finished(true));
    assert.doesNotMatch(t.text(), ESC, mode);
    assert.match(t.text(), mode === 'plain' ? /\\x1b\[2Jdocs\\u009b/ : /\\u001b\[2Jdocs\\u009b/, mode);
  }
});

test('json: one object per event per line, as it came; no timers', () => {
  const t = setup('json');
  const events = [t.started, t.progress(10), t.progress(20, { lagBytes: 5 }), t.finished(true, '100000 rows')];
  for (const e of events) t.r.sink(e);
  assert.equal(t.pending(), 0);
  t.advance(60_000);
  const lines = t.lines();
  assert.equal(lines.length, events.length);
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), events);
  assert.ok(t.text().endsWith('\n'));
  assert.doesNotMatch(t.text(), ESC);
});

test('close stops every timer and ignores later events', () => {
  for (const mode of ['plain', 'tty'] as const) {
    const t = setup(mode, mode === 'tty');
    t.r.sink(t.started);
    t.r.sink({ ...t.started, id: 'other' });
    assert.ok(t.pending() > 0, mode);
    t.r.close();
    assert.equal(t.pending(), 0, mode);
    const before = t.text();
    t.r.sink(t.progress(1));
    t.r.sink(t.finished(true));
    t.advance(60_000);
    t.r.close();
    assert.equal(t.text(), before, `${mode}: nothing after close`);
  }
});

test('tty: an ora spinner per running step with counts, lag and elapsed; ✔ / ✖ when each finishes', () => {
  const t = setup('tty', true);
  t.r.sink(t.started);
  t.r.sink({ type: 'step-started', id: 'ix', database: 'pod_b', label: 'building index vecs.ix', at: t.now() });
  t.r.sink(t.progress(43_210, { lagBytes: 12 * 1024 }));
  t.r.sink({ type: 'progress', id: 'ix', database: 'pod_b', label: 'building index vecs.ix', at: t.now(), unit: 'blocks', done: 120, total: 300 });
  t.advance(62_000);
  const screen = t.text();
  assert.match(screen, /copying docs pod_a → pod_b {2}43,210 \/ 100,000 rows \(43%\) {2}lag 12 kB {2}1m02s/);
  assert.match(screen, /building index vecs\.ix {2}120 \/ 300 blocks \(40%\) {2}1m02s/);
  t.r.sink({ type: 'step-finished', id: 'ix', database: 'pod_b', label: 'building index vecs.ix', at: t.now(), ok: false, detail: 'out of memory' });
  assert.match(t.text(), /✖ building index vecs\.ix {2}out of memory {2}1m02s\n/);
  assert.ok(t.pending() > 0, 'the other spinner still turns');
  t.r.sink(t.finished(true, '100000 rows'));
  assert.match(t.text(), /✔ copying docs pod_a → pod_b {2}100000 rows {2}1m02s\n/);
  assert.equal(t.pending(), 0, 'no ticker once nothing runs');
  t.r.close();
});

test('tty: a long label gives way to the numbers, one line per spinner, also on a terminal reporting 0 columns', () => {
  for (const columns of [0, 60]) {
    const c = fakeClock();
    const s = fakeStream(true);
    Object.assign(s.stream, { columns });
    const r = createProgressRenderer({ mode: 'tty', stream: s.stream, clock: c.clock });
    const label = `building index vecs.${'x'.repeat(100)} on docs (pod_a)`;
    r.sink({ type: 'step-started', id: 'ix', database: 'pod_a', label, at: c.now() });
    r.sink({ type: 'progress', id: 'ix', database: 'pod_a', label, at: c.now(), unit: 'blocks', done: 120, total: 300 });
    c.advance(62_000);
    const frames = s.text().split('\x1b[1G').filter((f) => f.includes('building'));
    assert.ok(frames.length > 10, `${columns}: the spinner turned`);
    const last = frames.at(-1)!.replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(last, /… {2}120 \/ 300 blocks \(40%\) {2}1m02s$/, `${columns}: ${last}`);
    assert.ok(last.length <= (columns || 80) - 3, `${columns}: fits on one line with the frame: ${last.length}`);
    // One spinner, one line: clearing it never moves up (which would erase the line above the spinners).
    assert.doesNotMatch(s.text(), /\x1b\[1A/, `${columns}`);
    r.close();
  }
});

test('tty: text printed while a spinner turns goes above it, the line before it stays', () => {
  const t = setup('tty', true);
  t.stream.write('Applying to secondary pod_b…\n');
  t.r.sink(t.started);
  t.advance(500);
  t.r.interrupt(() => t.stream.write('warning: something\n'));
  t.advance(500);
  t.r.sink(t.finished(true));
  t.r.close();
  assert.doesNotMatch(t.text(), /\x1b\[1A/, 'no line above the spinner is cleared');
  assert.match(t.text(), /warning: something\n/);
  assert.match(t.text(), /✔ copying docs pod_a → pod_b {2}1s\n$/);
});

test('the CLI mode: json with --json, spinners only on a colour terminal, plain otherwise', () => {
  const env = {};
  assert.equal(progressMode({ json: true, isTTY: true, color: true, env }), 'json');
  assert.equal(progressMode({ json: false, isTTY: true, color: true, env }), 'tty');
  assert.equal(progressMode({ json: false, isTTY: false, color: true, env }), 'plain');
  assert.equal(progressMode({ json: false, isTTY: true, color: false, env }), 'plain');
  assert.equal(progressMode({ json: false, isTTY: true, color: true, env: { NO_COLOR: '1' } }), 'plain');
  assert.equal(progressMode({ json: false, isTTY: true, color: true, env: { TERM: 'dumb' } }), 'plain');
});

test('elapsed and byte sizes read like the examples', () => {
  assert.deepEqual([0, 9_999, 62_000, 130_000, 7_500_000].map(formatElapsed), ['0s', '9s', '1m02s', '2m10s', '2h05m00s']);
  assert.deepEqual([0, 1023, 12 * 1024, 3.4 * 1024 * 1024].map(formatBytes), ['0 B', '1023 B', '12 kB', '3.4 MB']);
});
