/**
 * Every create step's reason says what its object is for, naming what it serves: a table of expected phrases per
 * object key, over a plan (desired vs empty databases) that creates every kind of object on the primary and on the
 * secondaries — collections on one secondary (columns, hnsw, ivfflat, no index), a sharded one, API and write roles,
 * an extension schema. No two different objects share a reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LiveDatabase, ObjectKind } from '../../src/model/state.js';
import { buildPlan } from '../../src/plan/planner.js';
import type { PlanStep } from '../../src/plan/types.js';
import { collection, sharded, topology } from '../topologies.js';

const empty = (database: string, role: 'primary' | 'secondary'): LiveDatabase => ({
  state: { database, role, objects: new Map() },
  facts: { database, currentUser: 'postgres', serverVersion: 150000, vectorSchema: undefined, nonEmpty: new Set() },
});

function createSteps(extensionSchema: string | undefined): PlanStep[] {
  const t = topology({
    collections: [
      collection('docs', 'pod_text', { dimension: 384, columns: [{ name: 'url', type: 'text' }, { name: 'year', type: 'integer' }] }),
      collection('images', 'pod_img', { dimension: 512, metric: 'l2', index: { method: 'ivfflat', lists: 100 } }),
      collection('flat', 'pod_img', { index: { method: 'none' } }),
      sharded('big', ['pod_text', 'pod_img'], 4),
    ],
    apiRoles: ['anon', 'authenticated'],
    writeRoles: ['service_role'],
    extensionSchema,
  });
  const live = new Map([['primary', empty('primary', 'primary')], ['pod_text', empty('pod_text', 'secondary')], ['pod_img', empty('pod_img', 'secondary')]]);
  return buildPlan(t, live).databases.flatMap((d) => d.steps).filter((s) => s.action === 'create');
}

const keyOf = (s: PlanStep): string => s.id.slice(s.id.indexOf('/') + 1);
const part = (m: RegExpMatchArray, at: number) => `partition ${m[at + 1]} of ${m[at + 2]} of collection ${m[at]}`;

type Rule = readonly [ObjectKind, RegExp, (m: RegExpMatchArray) => RegExp];
/** First match wins: the more specific key patterns come first. */
const RULES: readonly Rule[] = [
  ['extension', /^extension:vector$/, () => /^pgvector \(in schema (extensions|public)\): the vector type and distance operators that the collections/],
  ['extension', /^extension:postgres_fdw$/, () => /^postgres_fdw \(in schema vecscale, executable by its owner only\): the foreign servers and foreign tables/],
  ['extension', /^extension:dblink$/, () => /^dblink \(in schema vecscale, executable by its owner only\): search_<c> sends match_<c>'s whole query to the collection's secondary/],
  ['schema', /^schema:vecs$/, () => /^where the vecs client keeps its collections/],
  ['schema', /^schema:vecscale$/, () => /^vecscale's private schema: on the primary its functions .*; on a secondary the views the primary reads and writes$/],
  ['schema', /^schema:vecscale_remote$/, () => /^private schema of the foreign tables \(and, sharded, the partitioned tables\) that the public\.<c> views and match_\* read/],
  ['schema', /^schema:vecscale_write$/, () => /^private schema of the foreign tables that writes go to/],
  ['schema', /^schema:extensions$/, () => /^the schema pgvector is installed in \(extension_schema: extensions\)$/],
  ['role', /^role:(\w+)$/, (m) => new RegExp(`^wrapper role ${m[1]} \\(cluster-wide\\): the login the primary's foreign servers and dblink use here`)],
  ['grants', /^grants:(\w+)$/, (m) => new RegExp(`^what ${m[1]} may use here of what vecscale does not own: USAGE on schema`)],
  ['settings', /^settings:database$/, () => /^defaults for clients that connect here directly, such as the vecs client \(hnsw\.iterative_scan = /],
  ['table', /^relation:vecs\.(\w+)_p(\d+)of(\d+)$/, (m) => new RegExp(`^the rows of ${part(m, 1)}: vector\\(\\d+\\) embeddings`)],
  ['table', /^relation:vecs\.(\w+)$/, (m) => new RegExp(`^the rows of collection ${m[1]}: vector\\(\\d+\\) embeddings`)],
  ['table', /^relation:vecscale_remote\.(\w+)$/, (m) => new RegExp(`^collection ${m[1]} across its shards, as public\\.${m[1]} reads it \\(extracted columns computed on the shards\\) and upserts reach it: partitioned by HASH \\(id\\) over 4`)],
  ['table', /^relation:vecscale_write\.(\w+)$/, (m) => new RegExp(`^routes each write through public\\.${m[1]} \\(INSERT, COPY, UPDATE, DELETE\\) to its partition table`)],
  ['index', /^index:vecs\.(\w+)_p(\d+)of(\d+)$/, (m) => new RegExp(`^similarity index of ${part(m, 1)}: hnsw`)],
  ['index', /^index:vecs\.(\w+)$/, (m) => new RegExp(`^similarity index of collection ${m[1]}: (hnsw|ivfflat) \\(`)],
  ['view', /^relation:public\.(\w+)$/, (m) => new RegExp(`^collection ${m[1]} for applications \\(SQL, PostgREST\\): reads vecscale_remote\\.${m[1]}, writes go through vecscale\\.write_${m[1]}`)],
  ['view', /^relation:vecscale\.(\w+)_p(\d+)of(\d+)$/, (m) => new RegExp(`^what the primary reads of ${part(m, 1)} \\(extracted columns computed here\\) and its upserts into it: its INSTEAD OF INSERT trigger`)],
  ['view', /^relation:vecscale\.(big)$/, (m) => new RegExp(`^the rows of collection ${m[1]} that this shard holds`)],
  ['view', /^relation:vecscale\.(\w+)$/, (m) => new RegExp(`^what the primary reads of collection ${m[1]}: vecs\\.${m[1]} with embedding = vec`)],
  ['server', /^server:(\w+)$/, (m) => new RegExp(`^foreign server for secondary ${m[1]} \\(`)],
  ['user_mapping', /^user_mapping:(\w+):public$/, (m) => new RegExp(`^every role reaches ${m[1]} as vecscale_fdw \\(FOR PUBLIC\\)`)],
  ['foreign_table', /^relation:vecscale_remote\.((\w+)_p(\d+)of(\d+))$/, (m) => new RegExp(`^partition ${m[3]} of ${m[4]} of vecscale_remote\\.${m[2]}: reads and upserts into vecscale\\.${m[1]} on pod_`)],
  ['foreign_table', /^relation:vecscale_write\.((\w+)_p(\d+)of(\d+))$/, (m) => new RegExp(`^partition ${m[3]} of ${m[4]} of vecscale_write\\.${m[2]}: writes vecs\\.${m[1]} on pod_`)],
  ['foreign_table', /^relation:vecscale_remote\.(\w+)$/, (m) => new RegExp(`^what public\\.${m[1]} reads: vecscale\\.${m[1]} on pod_`)],
  ['foreign_table', /^relation:vecscale_write\.(\w+)$/, (m) => new RegExp(`^where writes on public\\.${m[1]} go: vecs\\.${m[1]} on pod_`)],
  ['function', /^function:public\.match_(\w+)$/, (m) => new RegExp(`^similarity search over collection ${m[1]} \\(vecs' match API\\)`)],
  ['function', /^function:public\.upsert_(\w+)\(rows\)$/, (m) => new RegExp(`^batch form of upsert_${m[1]}: a JSON array`)],
  ['function', /^function:public\.upsert_(\w+)$/, (m) => new RegExp(`^insert or update by id \\(vecs' upsert\\) in collection ${m[1]}, where the row lives`)],
  ['function', /^function:vecscale\.filter_sql$/, () => /^compiles vecs' filter language into the SQL condition match_\* runs/],
  ['function', /^function:vecscale\.match_sql_(\w+)$/, (m) => new RegExp(`^builds the statement match_${m[1]} runs`)],
  ['function', /^function:vecscale\.search_(\w+)$/, (m) => new RegExp(`^runs match_${m[1]}'s query on the secondary over dblink`)],
  ['function', /^function:vecscale\.write_(\w+)$/, (m) => new RegExp(`^INSTEAD OF trigger of public\\.${m[1]}: sends its INSERT, UPDATE and DELETE`)],
  ['function', /^function:vecscale\.upsert_row$/, () => /^triggers of the upsert views: each INSERT's rows buffered, then one INSERT … ON CONFLICT/],
];

/** Every kind of object: a kind added to the model without a rule here fails to compile. */
const KINDS: Record<ObjectKind, true> = {
  extension: true, settings: true, schema: true, table: true, index: true, view: true, server: true,
  user_mapping: true, foreign_table: true, function: true, role: true, grants: true,
};

for (const extensionSchema of ['extensions', undefined]) {
  test(`every create step's reason says what its object is for (extension schema ${extensionSchema ?? 'public'})`, () => {
    const steps = createSteps(extensionSchema);
    const used = new Set<Rule>();
    for (const s of steps) {
      const key = keyOf(s);
      const rule = RULES.find(([kind, pattern]) => kind === s.kind && pattern.test(key));
      assert.ok(rule, `${s.database}: no rule for ${s.kind} ${key} (reason: ${s.reason})`);
      used.add(rule);
      assert.match(s.reason, rule[2](key.match(rule[1])!), `${s.database}: ${s.object}`);
    }
    const kinds = new Set(steps.map((s) => s.kind));
    assert.deepEqual([...kinds].sort(), Object.keys(KINDS).sort(), 'the topology creates every kind of object');
    const unused = RULES.filter((r) => !used.has(r) && !(extensionSchema === undefined && r[1].source.includes('schema:extensions')));
    assert.deepEqual(unused.map((r) => r[1].source), [], 'every rule is exercised');
  });
}

test('no two different objects share a reason (one object on several databases may)', () => {
  const byReason = new Map<string, Set<string>>();
  for (const s of createSteps('extensions')) byReason.set(s.reason, new Set([...(byReason.get(s.reason) ?? []), s.object]));
  for (const [reason, objects] of byReason) assert.equal(objects.size, 1, `${[...objects].join(', ')} share "${reason}"`);
});

test("the issue's examples: vecscale_write is not pgvector's schema; dblink is not postgres_fdw", () => {
  const steps = createSteps('extensions');
  const reason = (id: string) => steps.find((s) => s.id === id)!.reason;
  assert.doesNotMatch(reason('primary/schema:vecscale_write'), /pgvector/);
  assert.doesNotMatch(reason('primary/extension:dblink'), /postgres_fdw/);
  assert.doesNotMatch(reason('primary/extension:postgres_fdw'), /dblink/);
});
