/** The pure half of `vecscale recall`: recall with the ties rule, the merge of partitions, percentiles, query files, settings. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTopology } from '../../src/config/index.js';
import { mergeTopK, parseQueryFile, percentile, recallOf, summarize, TIE_TOLERANCE } from '../../src/recall/measure.js';
import { settingsOf } from '../../src/recall/run.js';

const hits = (...pairs: Array<[string, number]>) => pairs.map(([id, distance]) => ({ id, distance }));

test('recall: the share of the exact ids found', () => {
  const exact = hits(['a', 0.1], ['b', 0.2], ['c', 0.3], ['d', 0.4]);
  assert.equal(recallOf(exact, exact), 1);
  assert.equal(recallOf(hits(['a', 0.1], ['x', 0.5], ['c', 0.3], ['y', 0.6]), exact), 0.5);
  assert.equal(recallOf([], exact), 0);
  assert.equal(recallOf(hits(['a', 0.1], ['a', 0.1]), exact), 0.25, 'an id counts once');
  assert.equal(recallOf([], []), 1, 'nothing to find');
});

test('recall: a hit at the k-th exact distance counts (ties), one beyond the tolerance does not', () => {
  const exact = hits(['a', 0.1], ['b', 0.2]);
  assert.equal(recallOf(hits(['a', 0.1], ['twin-of-b', 0.2]), exact), 1, 'an exact duplicate of b');
  assert.equal(recallOf(hits(['a', 0.1], ['near', 0.2 * (1 + TIE_TOLERANCE / 2)]), exact), 1, 'within 1e-6 relative');
  assert.equal(recallOf(hits(['a', 0.1], ['far', 0.2 * (1 + 10 * TIE_TOLERANCE)]), exact), 0.5);
  // Inner product distances are negative: the tolerance is relative to |k-th|, still "a little further".
  const ip = hits(['a', -3], ['b', -2]);
  assert.equal(recallOf(hits(['a', -3], ['tie', -2 + 1e-7]), ip), 1);
  assert.equal(recallOf(hits(['a', -3], ['worse', -1.9]), ip), 0.5);
  // More ties than k: never above 1.
  assert.equal(recallOf(hits(['x', 0], ['y', 0], ['z', 0]), hits(['a', 0], ['b', 0])), 1);
});

test('merge: the global top k of the partitions, by distance then id', () => {
  const p0 = hits(['a', 0.1], ['c', 0.5], ['e', 0.9]);
  const p1 = hits(['b', 0.2], ['d', 0.5], ['f', 0.6]);
  assert.deepEqual(mergeTopK([p0, p1], 4), hits(['a', 0.1], ['b', 0.2], ['c', 0.5], ['d', 0.5]));
  assert.deepEqual(mergeTopK([[], p1], 10), p1);
});

test('percentile by nearest rank; summary of a setting', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 95), 95);
  assert.equal(percentile(xs, 100), 100);
  assert.equal(percentile([7], 95), 7);
  assert.ok(Number.isNaN(percentile([], 50)), 'empty: NaN');
  assert.deepEqual(summarize([1, 0.5, 0.75], [3, 1, 2]), { recall: { mean: 0.75, min: 0.5 }, latencyMs: { p50: 2, p95: 3 }, queries: 3 });
  assert.deepEqual(summarize([1], [0.1 + 0.2]).latencyMs, { p50: 0.3, p95: 0.3 }, 'latencies to the microsecond');
});

test('query files: JSON lines or a JSON array of arrays; located problems', () => {
  assert.deepEqual(parseQueryFile('[1,2]\n\n[3,4]\n', 2), { ok: true, vectors: [[1, 2], [3, 4]], where: ['line 1', 'line 3'] });
  assert.deepEqual(parseQueryFile('[1,2]', 2), { ok: true, vectors: [[1, 2]], where: ['line 1'] });
  assert.deepEqual(parseQueryFile('[[1,2],\n [3,4]]', 2), { ok: true, vectors: [[1, 2], [3, 4]], where: ['vector 1', 'vector 2'] });
  const problem = (text: string) => {
    const r = parseQueryFile(text, 2);
    assert.equal(r.ok, false, `refused: ${text}`);
    return r.ok ? undefined : `${r.problem.where} ${r.problem.message}`;
  };
  assert.equal(problem('[1,2]\n[1,2,3]\n'), 'line 2 has 3 dimensions; the collection has 2');
  assert.equal(problem('[[1,2],[1]]'), 'vector 2 has 1 dimensions; the collection has 2');
  assert.equal(problem('[1,2]\n{"a": 1}\n'), 'line 2 is not a JSON array of numbers');
  assert.equal(problem('[1,2]\n[1,"x"]'), 'line 2 must hold finite numbers only');
  assert.match(problem('[1,2]\nnot json')!, /^line 2 is not JSON/);
  assert.equal(problem('\n \n'), 'the file holds no query vectors');
});

const topology = (() => {
  const r = parseTopology(`version: 1
primary: { url: 'postgres://u@h/db' }
secondaries: { pod_a: { url: 'postgres://u@h2/db' } }
collections:
  h: { secondary: pod_a, dimension: 3, index: { method: hnsw }, query: { ef_search: 60 } }
  i: { secondary: pod_a, dimension: 3, index: { method: ivfflat, lists: 4 } }
  n: { secondary: pod_a, dimension: 3, index: { method: none } }
`, 't.yaml', {});
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.topology;
})();
const collection = (name: string) => topology.collections.find((c) => c.name === name)!;

test('settings: the list given (duplicates once), else the collection\'s own; the other index kind\'s flag refused', () => {
  assert.deepEqual(settingsOf(collection('h'), { efSearch: [10, 40, 10] }).map((s) => [s.name, s.value, s.effective]), [['ef_search', 10, 10], ['ef_search', 40, 40]]);
  assert.deepEqual(settingsOf(collection('h'), {}), [{ name: 'ef_search', value: null, effective: 60 }]);
  assert.deepEqual(settingsOf(collection('i'), { probes: [1, 32768] }).map((s) => s.value), [1, 32768]);
  assert.deepEqual(settingsOf(collection('i'), {}), [{ name: 'probes', value: null, effective: 10 }]);
  assert.deepEqual(settingsOf(collection('n'), {}), [{ name: null, value: null, effective: null }]);
  assert.throws(() => settingsOf(collection('h'), { probes: [2] }), /--probes applies to ivfflat indexes; collection h has index method hnsw/);
  assert.throws(() => settingsOf(collection('i'), { efSearch: [2] }), /--ef-search applies to hnsw indexes; collection i has index method ivfflat/);
  assert.throws(() => settingsOf(collection('n'), { probes: [2] }), /collection n has no index \(method none\): its search is exact/);
  assert.throws(() => settingsOf(collection('h'), { efSearch: [1001] }), /--ef-search must be a whole number 1–1000 \(got 1001\)/);
  assert.throws(() => settingsOf(collection('i'), { probes: [0] }), /--probes must be a whole number 1–32768/);
});
