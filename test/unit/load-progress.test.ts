/** `vecscale load`'s progress (src/render/load-progress.ts): spinner, 10 s heartbeat, JSON lines; rows/s and ETA. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadStats } from '../../src/load/run.js';
import { createLoadProgress, etaMs, plainCounts, rateOf, shareOf, ttyCounts } from '../../src/render/load-progress.js';
import type { ProgressMode } from '../../src/render/progress.js';
import { fakeClock, fakeStream } from '../fake-terminal.js';

const stats = (over: Partial<LoadStats> = {}): LoadStats => ({
  linesRead: 0,
  rowsLoaded: 0,
  badLines: 0,
  bytesRead: 0,
  totalBytes: 1_000_000,
  elapsedMs: 0,
  ...over,
});

function setup(mode: ProgressMode, tty = false) {
  const c = fakeClock();
  const s = fakeStream(tty);
  const p = createLoadProgress({ mode, stream: s.stream, clock: c.clock, label: 'loading docs from rows.jsonl' });
  return { ...c, ...s, p };
}

test('counts: rows/s over the time so far, the share read, and the ETA at that pace', () => {
  const s = stats({ rowsLoaded: 5000, bytesRead: 250_000, elapsedMs: 10_000 });
  assert.equal(rateOf(s), 500);
  assert.equal(shareOf(s), 0.25);
  assert.equal(etaMs(s), 30_000);
  assert.equal(ttyCounts(s), '5,000 rows  500 rows/s  25%  ETA 30s  10s');
  assert.equal(plainCounts({ ...s, badLines: 2 }), '5000 rows, 500 rows/s, 25% read, ETA 30s, 2 bad lines, 10s elapsed');
  // Unknown size (stdin): no share, no ETA.
  const pipe = stats({ rowsLoaded: 10, totalBytes: undefined, elapsedMs: 1000 });
  assert.equal(shareOf(pipe), undefined);
  assert.equal(etaMs(pipe), undefined);
  assert.equal(ttyCounts(pipe), '10 rows  10 rows/s  1s');
  assert.equal(etaMs(stats({ elapsedMs: 0 })), undefined);
});

test('plain: a line at the start, a heartbeat every 10 s with rows/s and ETA, a line when the rows are in', () => {
  const t = setup('plain');
  assert.deepEqual(t.lines(), ['loading docs from rows.jsonl…']);
  t.advance(9_999);
  assert.equal(t.lines().length, 1, 'no heartbeat before 10 s');
  t.p.update(stats({ rowsLoaded: 4000, bytesRead: 400_000, elapsedMs: 9_000 }));
  t.advance(1);
  assert.equal(t.lines()[1], 'still loading docs from rows.jsonl: 4000 rows, 400 rows/s, 40% read, ETA 15s, 10s elapsed');
  t.advance(10_000);
  assert.equal(t.lines().length, 3);
  t.p.rowsDone(stats({ rowsLoaded: 10_000, bytesRead: 1_000_000, elapsedMs: 25_000, badLines: 1 }));
  assert.equal(t.lines()[3], 'loading docs from rows.jsonl: 10,000 rows in 25s (400 rows/s), 1 bad line');
  t.advance(60_000);
  assert.equal(t.lines().length, 4, 'no heartbeat after the rows are in');
  t.p.close();
  assert.equal(t.pending(), 0, 'no timer left');
  assert.doesNotMatch(t.text(), /\u001b/, 'no escape codes off a terminal');
});

test('tty: one spinner redrawn with rows/s, share and ETA; a ✔ line when the rows are in', () => {
  const t = setup('tty', true);
  t.p.update(stats({ rowsLoaded: 120_000, bytesRead: 430_000, elapsedMs: 14_000 }));
  t.advance(14_000);
  assert.match(t.text(), /loading docs from rows\.jsonl {2}120,000 rows {2}8,571 rows\/s {2}43% {2}ETA 18s {2}14s/);
  t.p.note('pod_a: vecs.docs is empty: its index … is built after the load');
  assert.match(t.text(), /is built after the load\n/);
  t.p.rowsDone(stats({ rowsLoaded: 200_000, bytesRead: 1_000_000, elapsedMs: 20_000 }));
  assert.match(t.text(), /✔ loading docs from rows\.jsonl: 200,000 rows in 20s \(10,000 rows\/s\)/);
  t.p.close();
  assert.equal(t.pending(), 0);
});

test('json: the heartbeat is one JSON object per line', () => {
  const t = setup('json');
  t.p.update(stats({ rowsLoaded: 1000, bytesRead: 500_000, elapsedMs: 10_000 }));
  t.advance(10_000);
  const doc = JSON.parse(t.lines()[0]!) as Record<string, unknown>;
  assert.deepEqual(
    { type: doc.type, unit: doc.unit, done: doc.done, rowsPerSecond: doc.rowsPerSecond, totalBytes: doc.totalBytes, etaMs: doc.etaMs },
    { type: 'progress', unit: 'rows', done: 1000, rowsPerSecond: 100, totalBytes: 1_000_000, etaMs: 10_000 },
  );
  t.p.close();
});

test('index builds after the rows go through the steps renderer; control characters in labels are escaped', () => {
  const c = fakeClock();
  const s = fakeStream();
  const p = createLoadProgress({ mode: 'plain', stream: s.stream, clock: c.clock, label: 'loading \u001b[2Jdocs from x.jsonl' });
  p.rowsDone(stats({ rowsLoaded: 1, elapsedMs: 1000 }));
  p.sink({ type: 'step-started', id: 'index:pod_a:vecs.ix', database: 'pod_a', label: 'building index vecs.ix on pod_a', at: c.clock.now() });
  c.advance(10_000);
  p.sink({ type: 'step-finished', id: 'index:pod_a:vecs.ix', database: 'pod_a', label: 'building index vecs.ix on pod_a', at: c.clock.now(), ok: true });
  p.close();
  assert.doesNotMatch(s.text(), /\u001b/);
  assert.match(s.text(), /loading \\u001b\[2Jdocs/);
  assert.deepEqual(s.lines().slice(-3), ['building index vecs.ix on pod_a…', 'still building index vecs.ix on pod_a: 10s elapsed', 'building index vecs.ix on pod_a: done in 10s']);
});
