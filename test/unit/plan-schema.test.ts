/**
 * templates/plan.schema.json: generated from src/plan/schema.ts (the file must be what `npm run schema` writes), and
 * every plan document the planner makes validates against it — a first apply, a converged plan, a sharded layout, a
 * destructive and a blocked plan, a saved plan file — with every object closed, so a field the types gain and the
 * schema does not is a failure here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { buildPlan } from '../../src/plan/planner.js';
import { savePlan } from '../../src/plan/saved.js';
import { planJsonSchema } from '../../src/plan/schema.js';
import { PLAN_FORMAT_VERSION } from '../../src/plan/types.js';
import { planToJson } from '../../src/render/plan.js';
import { PLAN_SCHEMA_PATH, renderPlanSchema } from '../../scripts/gen-schema.js';
import { converged, emptyLive, logicalReplication } from '../live-states.js';
import { collection, sharded, topology } from '../topologies.js';

const ajv = new Ajv2020({ allErrors: true, strict: true });
const validate = ajv.compile(planJsonSchema({ closed: true }));
const check = (doc: unknown, what: string) => {
  const json = JSON.parse(JSON.stringify(doc)) as unknown;
  assert.ok(validate(json), `${what}: ${ajv.errorsText(validate.errors)}`);
};

test('templates/plan.schema.json is what npm run schema writes', () => {
  assert.equal(readFileSync(PLAN_SCHEMA_PATH, 'utf8'), renderPlanSchema());
});

test('every kind of plan document validates: first apply, converged, sharded, destructive, blocked', () => {
  const t = topology();
  const first = planToJson(buildPlan(t, emptyLive())) as { format_version: string; status: string };
  assert.equal(first.format_version, PLAN_FORMAT_VERSION);
  assert.equal(first.status, 'changes');
  check(first, 'first apply');
  check(planToJson(buildPlan(t, converged(t))), 'converged');
  const sh = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 4), collection('docs', 'pod_text')] });
  check(planToJson(buildPlan(sh, emptyLive())), 'sharded');
  // The same collection with another dimension, over a table that holds rows: destructive, then blocked.
  const live = converged(t);
  const pod = live.get('pod_text')!;
  const table = [...pod.state.objects.keys()].find((k) => k.startsWith('relation:vecs.'))!;
  live.set('pod_text', { ...pod, facts: { ...pod.facts, nonEmpty: new Set([table]) } });
  const changed = topology({ collections: t.collections.map((c) => ({ ...c, dimension: c.dimension + 1 })) });
  const destructive = planToJson(buildPlan(changed, live)) as { databases: Array<{ steps: Array<{ risk: string }> }> };
  assert.ok(destructive.databases.some((d) => d.steps.some((s) => s.risk === 'destructive')));
  check(destructive, 'destructive');
  const blockedLive = emptyLive();
  const primary = blockedLive.get('primary')!;
  blockedLive.set('primary', { ...primary, facts: { ...primary.facts, vectorSchema: 'extensions' } });
  const blocked = planToJson(buildPlan(t, blockedLive)) as { blocked: boolean };
  check(blocked, blocked.blocked ? 'blocked' : 'notes');
});

test('a plan that moves a collection validates (moves, flows, steps, write pause)', () => {
  const before = topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 2)] });
  const live = converged(before);
  for (const [db, l] of live) live.set(db, { ...l, facts: { ...l.facts, replication: logicalReplication } });
  const pod = live.get('pod_img')!;
  live.set('pod_img', { ...pod, facts: { ...pod.facts, nonEmpty: new Set(['relation:vecs.img_p1of2']) } });
  const doc = planToJson(buildPlan(topology({ collections: [sharded('img', ['pod_text', 'pod_img'], 4)] }), live)) as { moves?: unknown[] };
  assert.equal(doc.moves?.length, 1);
  check(doc, 'move');
});

test('a saved plan file validates too', () => {
  const t = topology();
  const live = emptyLive();
  check(savePlan(buildPlan(t, live), live, t, 'topology.yaml', {}), 'saved plan');
  check(savePlan(buildPlan(t, converged(t)), converged(t), t, 'topology.yaml', { allowDestructive: 'all' }), 'saved converged plan');
});

test('the published schema is open (a later minor version may add fields); the closed one refuses an unknown field, and both a newer major version', () => {
  const open = new Ajv2020({ strict: true }).compile(JSON.parse(readFileSync(PLAN_SCHEMA_PATH, 'utf8')) as object);
  const later = JSON.parse(JSON.stringify(planToJson(buildPlan(topology(), emptyLive())))) as Record<string, unknown>;
  later.format_version = '1.3';
  later.added_in_1_3 = { anything: true };
  assert.equal(open(later), true, 'a 1.3 document with a new field validates against the 1.0 schema');
  later.format_version = '2.0';
  assert.equal(open(later), false);
  const doc = JSON.parse(JSON.stringify(planToJson(buildPlan(topology(), emptyLive())))) as Record<string, unknown> & { databases: Array<{ steps: Array<Record<string, unknown>> }> };
  doc.databases[0]!.steps[0]!.surprise = true;
  assert.equal(validate(doc), false);
  const newer = JSON.parse(JSON.stringify(planToJson(buildPlan(topology(), emptyLive())))) as Record<string, unknown>;
  newer.format_version = '2.0';
  assert.equal(validate(newer), false);
  newer.format_version = '1.7';
  assert.equal(validate(newer), true, 'a later minor version of the same major validates');
});
