import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answered, consulting, questionsFor } from '../../src/introspect/rows.js';
import { keys, type LiveDatabase, type LiveFacts } from '../../src/model/state.js';
import { buildPlan } from '../../src/plan/planner.js';
import { converged, facts as factsOf } from '../live-states.js';
import { topology } from '../topologies.js';

const docs = keys.relation('vecs', 'docs');
const img = keys.relation('vecs', 'img');
const fresh = keys.relation('vecs', 'fresh');

const base = (): LiveFacts =>
  factsOf('pod_a', {
    nonEmpty: new Set([docs, img, fresh]),
    unprobed: new Set([docs, img, fresh]),
    uncounted: new Set([fresh]),
    rowEstimates: new Map([[docs, { rows: 10 }], [fresh, { bytes: 81_920 }]]),
  });

test('consulting records the lookups of tables not yet asked, and only those', () => {
  const asked = { exists: new Set<string>(), count: new Set<string>() };
  const f = consulting({ ...base(), unprobed: new Set([docs, fresh]) }, asked);
  assert.equal(f.nonEmpty.has(docs), true, 'a table with pages counts as holding rows until asked');
  assert.equal(f.nonEmpty.has(img), true, 'a known table answers as before');
  assert.equal(f.nonEmpty.has(keys.relation('vecs', 'none')), false, 'a table without pages holds no row');
  assert.deepEqual(f.rowEstimates?.get(fresh), { bytes: 81_920 });
  assert.deepEqual(f.rowEstimates?.get(docs), { rows: 10 });
  assert.deepEqual([...asked.exists], [docs], 'only the unprobed table looked up is asked');
  assert.deepEqual([...asked.count], [fresh], 'only the countable estimate looked up is counted');
  assert.equal([...f.nonEmpty].length, 3, 'iteration sees every entry');
});

test('consulting leaves facts without unknowns as they are', () => {
  const asked = { exists: new Set<string>(), count: new Set<string>() };
  const f = factsOf('pod_a', { nonEmpty: new Set([docs]) });
  assert.equal(consulting(f, asked).nonEmpty, f.nonEmpty);
});

test('questionsFor: a count where one is needed (an estimate, a destructive step not yet counted), else whether any row', () => {
  const f = base();
  const q = questionsFor({ exists: new Set([docs, img]), count: new Set([fresh]) }, [img], f);
  assert.deepEqual(q, [{ key: fresh, count: true }, { key: docs, count: false }, { key: img, count: true }].sort((a, b) => (a.key < b.key ? -1 : 1)));
  // Already known: nothing asked again.
  const known = answered({ state: { database: 'pod_a', role: 'secondary', objects: new Map() }, facts: f }, q, new Map([[fresh, 0], [docs, 1], [img, 7]]));
  assert.deepEqual(questionsFor({ exists: new Set([docs, img]), count: new Set() }, [img], known.facts), []);
});

test('answered: empty tables leave nonEmpty, counts become estimates and exact counts', () => {
  const live: LiveDatabase = { state: { database: 'pod_a', role: 'secondary', objects: new Map() }, facts: base() };
  const out = answered(live, [{ key: docs, count: false }, { key: fresh, count: true }, { key: img, count: true }], new Map([[docs, 0], [fresh, 42], [img, 3]]));
  assert.deepEqual([...out.facts.nonEmpty].sort(), [fresh, img].sort());
  assert.deepEqual([...(out.facts.unprobed ?? [])], []);
  assert.deepEqual(out.facts.rowEstimates?.get(fresh), { rows: 42 }, 'a counted never-analyzed table has its rows');
  assert.deepEqual(out.facts.rowEstimates?.get(img), undefined, 'a counted table with no estimate gets none');
  assert.equal(out.facts.rowCounts?.get(img), 3);
  assert.equal(out.facts.rowCounts?.get(docs), undefined, 'an existence question is no count');
  assert.equal(live.facts.unprobed?.size, 3, 'the input is not changed');
});

/** The converged live state, every vecs table with pages and not yet asked. */
function unasked(): Map<string, LiveDatabase> {
  return new Map([...converged()].map(([name, l]) => {
    const tables = [...l.state.objects.values()].filter((o) => o.kind === 'table' && o.schema === 'vecs').map((o) => o.key);
    return [name, { ...l, facts: { ...l.facts, nonEmpty: new Set(tables), unprobed: new Set(tables) } }] as const;
  }));
}

function planAsking(t: ReturnType<typeof topology>, live: Map<string, LiveDatabase>): Map<string, Set<string>> {
  const asked = new Map([...live.keys()].map((n) => [n, { exists: new Set<string>(), count: new Set<string>() }]));
  buildPlan(t, new Map([...live].map(([n, l]) => [n, { ...l, facts: consulting(l.facts, asked.get(n)!) }])));
  return new Map([...asked].map(([n, a]) => [n, new Set([...a.exists, ...a.count])]));
}

test('a converged plan asks nothing; dropping a collection asks about its table only', () => {
  const live = unasked();
  for (const [db, a] of planAsking(topology(), live)) assert.deepEqual([...a], [], `${db}: a converged plan looks no table up`);
  const t = topology();
  const fewer = { ...t, collections: t.collections.filter((c) => c.name !== 'images') };
  const asked = planAsking(fewer, live);
  assert.deepEqual([...asked.get('pod_img')!], [keys.relation('vecs', 'images')], 'the dropped table: destructive or not');
  assert.deepEqual([...asked.get('pod_text')!], []);
});
