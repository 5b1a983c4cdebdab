/** A saved plan whose index build settings moved with the row estimate: refused, naming the build and the SETs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keys, type LiveDatabase } from '../../src/model/state.js';
import { buildPlan } from '../../src/plan/planner.js';
import { savePlan, staleness } from '../../src/plan/saved.js';
import { converged } from '../live-states.js';
import { collection, topology } from '../topologies.js';

const MB = 1024 * 1024;
const limits = { maxParallelMaintenanceWorkers: 2, maxParallelWorkers: 8, maxWorkerProcesses: 8, sharedBuffers: 1024 * MB };
const before = topology({ collections: [collection('img', 'pod_img', { dimension: 768, index: { method: 'none' } })] });
const after = topology({ collections: [collection('img', 'pod_img', { dimension: 768, index: { method: 'hnsw', m: 16, efConstruction: 64 } })] });

function liveWith(rows: number): Map<string, LiveDatabase> {
  const live = converged(before);
  const pod = live.get('pod_img')!;
  const table = keys.relation('vecs', 'img');
  live.set('pod_img', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([table]), rowEstimates: new Map([[table, { rows }]]), maintenanceWorkMem: 64 * MB, buildLimits: limits } });
  return live;
}

test('the raised maintenance_work_mem moved (50,000 → 60,000 rows): the refusal names the build and both SETs', () => {
  const then = liveWith(50_000);
  const saved = savePlan(buildPlan(after, then), then, after, 'topology.yaml', {});
  const now = liveWith(60_000);
  const why = staleness(saved, after, now, buildPlan(after, now));
  assert.equal(why.length, 1, why.join('\n'));
  assert.match(why[0]!, /index build settings moved with the tables' row estimates .*pod_img\/index:vecs\.img: SET maintenance_work_mem = '191MB' → SET maintenance_work_mem = '230MB'.*pin them with index\.build/);
  assert.deepEqual(staleness(saved, after, then, buildPlan(after, then)), [], 'unchanged: not stale');
});
