/**
 * Owned rows (`access: { owner_key, claim }`, README "Permission-aware search"), reads of public.<c> and writes, on
 * Supabase-shaped databases, replaying PostgREST's requests (a transaction, set_config role and request.jwt.claims):
 * for a collection on one secondary and a sharded one,
 *
 * - a restricted caller (authenticated, anon) sees exactly the rows whose metadata.owner_id is the JSON string of its
 *   `sub` claim (not a number, not an array holding it, not a row without one), none without the claim; service_role
 *   (write_roles, not api_roles) sees all; a hostile filter with OR cannot widen that; the condition is in the Remote
 *   SQL postgres_fdw sends (every partition's, sharded);
 * - authenticated (an api role that also writes) writes only its own rows: INSERT/upsert of another owner's row
 *   refused (42501), upsert of another owner's existing id refused and that row unchanged, UPDATE/DELETE of another
 *   owner's row change nothing, UPDATE giving its row away refused, no claim → every write refused; service_role
 *   writes anything.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { sql } from '../harness.js';
import { type ApiRole, Rest, supabaseDatabases } from '../supabase.js';
import { topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('owned_rows');
const COLLECTIONS_YAML = `  docs:
    secondary: pod_a
    dimension: 3
    index: { method: none }
    access: { owner_key: owner_id, claim: sub }
  shdocs:
    shards: [pod_a, pod_b]
    dimension: 3
    index: { method: none }
    access: { owner_key: owner_id, claim: sub }
`;
const file = topologyFile(
  dbs,
  COLLECTIONS_YAML,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [authenticated, service_role]\n',
);
await apply(file.load(), { approve: async () => true });

const COLLECTIONS = ['docs', 'shdocs'] as const;
/** Every seeded row, by id: A's, B's, and owners that are no claim's string. */
const SEED: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
  ['a1', { owner_id: 'A', n: 1 }],
  ['a2', { owner_id: 'A', n: 2 }],
  ['a3', { owner_id: 'A', n: 3 }],
  ['b1', { owner_id: 'B', n: 1 }],
  ['b2', { owner_id: 'B', n: 2 }],
  ['num', { owner_id: 123 }],
  ['arr', { owner_id: ['A', 'B'] }],
  ['obj', { owner_id: { sub: 'A' } }],
  ['none', { n: 0 }],
  ['nested', { x: { owner_id: 'A' } }],
];
const emb = (i: number) => `[${i},${i + 1},${i + 2}]`;
for (const c of COLLECTIONS) {
  // As the applying login (trusted with every row).
  await sql(dbs.primary, `INSERT INTO public.${c} (id, embedding, metadata) SELECT * FROM unnest($1::text[], $2::extensions.vector[], $3::jsonb[])`, [
    SEED.map(([id]) => id),
    SEED.map((_, i) => emb(i)),
    SEED.map(([, m]) => JSON.stringify(m)),
  ]);
}

let rest: Rest;
before(async () => {
  rest = await Rest.connect(dbs.primary);
});
after(async () => {
  await rest?.end();
});

const claimsOf = (role: ApiRole, sub?: unknown): Record<string, unknown> => (sub === undefined ? { role } : { role, sub });
const ids = (body: unknown[]) => (body as Array<{ id: string }>).map((r) => r.id).sort();
const get = (c: string, role: ApiRole, sub?: unknown) => rest.request(role, false, (q) => q.select(c, ['id', 'embedding', 'metadata']), claimsOf(role, sub));
/** A row as the primary's admin sees it (trusted), or undefined. */
async function rowOf(c: string, id: string): Promise<{ metadata: Record<string, unknown>; embedding: string } | undefined> {
  const [r] = await sql<{ metadata: Record<string, unknown>; embedding: string }>(dbs.primary, `SELECT metadata, embedding::text AS embedding FROM public.${c} WHERE id = $1`, [id]);
  return r;
}
const denied = (message?: RegExp) => (e: { code?: string; message?: string }) => {
  assert.equal(e.code, '42501', `42501 expected, got ${e.code}: ${e.message}`);
  if (message) assert.match(e.message ?? '', message, 'the message names the key or the claim');
  return true;
};
const NOT_OWNED = /metadata "owner_id" equal to the request's JWT claim "sub"/;

for (const c of COLLECTIONS) {
  test(`${c}: PostgREST's GET shows A exactly A's rows, B B's, no claim none, service_role all`, async () => {
    assert.deepEqual(ids(await get(c, 'authenticated', 'A')), ['a1', 'a2', 'a3'], "A's rows only (not the number, the array, the object)");
    assert.deepEqual(ids(await get(c, 'authenticated', 'B')), ['b1', 'b2'], "B's rows only");
    assert.deepEqual(ids(await get(c, 'anon')), [], 'anon without a sub claim: no rows');
    assert.deepEqual(ids(await get(c, 'authenticated')), [], 'authenticated without a sub claim: no rows');
    assert.deepEqual(ids(await get(c, 'authenticated', 123)), [], 'a numeric claim is not a string owner');
    assert.deepEqual(ids(await get(c, 'anon', 'A')), ['a1', 'a2', 'a3'], "anon with A's claim: A's rows (the claim decides)");
    assert.deepEqual(ids(await get(c, 'service_role')), SEED.map(([id]) => id).sort(), 'service_role (write_roles, not api_roles): every row');
    // eq on a column, as supabase-js .eq('id', …): another owner's id finds nothing.
    const other = await rest.request('authenticated', false, (q) => q.select(c, ['id'], ['id', 'b1']), claimsOf('authenticated', 'A'));
    assert.deepEqual(other, [], "A's GET ?id=eq.b1 finds nothing");
    // The same statement again, more than 5 times: PostgREST's prepared statements turn generic.
    for (let i = 0; i < 7; i += 1) {
      assert.deepEqual(ids(await rest.request('authenticated', false, (q) => q.select(c, ['id']), claimsOf('authenticated', i % 2 ? 'A' : 'B'))), i % 2 ? ['a1', 'a2', 'a3'] : ['b1', 'b2'], `request ${i}`);
    }
  });

  test(`${c}: a hostile filter with OR cannot widen what A sees`, async () => {
    const t = `"public"."${c}"`;
    const mine = ['a1', 'a2', 'a3'];
    const hostile: Array<[string, string[], string[]]> = [
      // or=(id.eq.b1,metadata->>owner_id.eq.B)
      [`(${t}."id" = $1 OR ${t}."metadata"->>'owner_id' = $2)`, ['b1', 'B'], []],
      // or=(id.eq.a1,id.eq.b1)
      [`(${t}."id" = $1 OR ${t}."id" = $2)`, ['a1', 'b1'], ['a1']],
      // or=(id.neq.x,id.eq.x): always true
      [`(${t}."id" <> $1 OR ${t}."id" = $2)`, ['x', 'x'], mine],
      // or=(metadata->>owner_id.is.null,metadata->>owner_id.neq.A, …)
      [`(${t}."metadata"->>'owner_id' IS NULL OR ${t}."metadata"->>'owner_id' <> $1 OR ${t}."metadata" @> $2)`, ['A', '{"owner_id":"B"}'], []],
      [`(${t}."metadata"->>'owner_id' IS NULL OR ${t}."metadata"->>'owner_id' <> $1 OR ${t}."id" IS NOT NULL)`, ['A'], mine],
    ];
    for (const [where, values, expected] of hostile) {
      const seen = await rest.request('authenticated', false, (q) => q.selectWhere(c, ['id'], where, values), claimsOf('authenticated', 'A'));
      assert.deepEqual(ids(seen), expected, `only A's rows through ${where}`);
    }
  });

  test(`${c}: EXPLAIN VERBOSE shows the owner condition in every Remote SQL`, async () => {
    const client = new pg.Client({ connectionString: dbs.primary });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"A"}', true)`);
      const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE) SELECT id, metadata FROM public.${c} WHERE id <> 'x'`)).rows.map((r) => r['QUERY PLAN']);
      const remote = plan.filter((l) => /Remote SQL:/.test(l));
      assert.equal(remote.length, c === 'docs' ? 1 : 2, `one Remote SQL per foreign table:\n${plan.join('\n')}`);
      for (const l of remote) assert.match(l, /WHERE .*\(\$\d+::boolean OR \(metadata @> \$\d+::jsonb\)\)/, `the owner condition shipped:\n${plan.join('\n')}`);
      // A superuser's session switched to authenticated is authenticated: restricted.
      const seen = (await client.query<{ id: string }>(`SELECT id FROM public.${c} ORDER BY id`)).rows.map((r) => r.id);
      assert.deepEqual(seen, ['a1', 'a2', 'a3'], "the admin's session as authenticated with sub A sees A's rows");
      await client.query('ROLLBACK');
      // The guard of the trigger's UPDATE/DELETE is shipped too (direct modification on the secondary).
      // As the trigger's statements are planned: custom plans (restricted = true folded in) and generic ones.
      for (const mode of ['force_custom_plan', 'force_generic_plan']) {
        await client.query('BEGIN');
        await client.query(`SET LOCAL plan_cache_mode = ${mode}`);
        for (const [verb, statement] of [
          ['UPDATE', `UPDATE vecscale_write.${c} SET metadata = '{}' WHERE id = $1 AND (NOT $2 OR metadata @> $3)`],
          ['DELETE', `DELETE FROM vecscale_write.${c} WHERE id = $1 AND (NOT $2 OR metadata @> $3)`],
        ] as const) {
          await client.query(`PREPARE guarded (text, bool, jsonb) AS ${statement}`);
          const guard = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE) EXECUTE guarded('a1', true, '{"owner_id":"A"}')`)).rows.map((r) => r['QUERY PLAN']);
          assert.ok(guard.some((l) => new RegExp(`Remote SQL: ${verb} .*metadata @> `).test(l)), `${mode}: the guard in the remote ${verb}:\n${guard.join('\n')}`);
          await client.query('DEALLOCATE guarded');
        }
        await client.query('ROLLBACK');
      }
    } finally {
      await client.end();
    }
  });

  test(`${c}: A's writes through PostgREST reach only A's rows`, async () => {
    const asA = <T>(fn: Parameters<Rest['request']>[2]) => rest.request('authenticated', true, fn, claimsOf('authenticated', 'A')) as Promise<T>;
    // INSERT of a row owned by B, by nobody, by a number: refused.
    for (const metadata of [{ owner_id: 'B' }, {}, { owner_id: ['A'] }]) {
      await assert.rejects(asA((q) => q.insert(c, [{ id: 'new-x', embedding: '[1,1,1]', metadata }])), denied(NOT_OWNED), `insert of ${JSON.stringify(metadata)}`);
    }
    assert.equal(await rowOf(c, 'new-x'), undefined, 'nothing inserted');
    // Own rows insert.
    assert.equal(await asA((q) => q.insert(c, [{ id: 'a-new', embedding: '[1,1,1]', metadata: { owner_id: 'A', k: 'v' } }])), 1, "A's insert of its own row");
    assert.deepEqual((await rowOf(c, 'a-new'))?.metadata, { owner_id: 'A', k: 'v' }, 'inserted');
    // Inserting an id B holds: a plain INSERT, never an overwrite.
    await assert.rejects(asA((q) => q.insert(c, [{ id: 'b1', embedding: '[9,9,9]', metadata: { owner_id: 'A' } }])), (e: { code?: string }) => e.code === '23505', 'duplicate id');
    assert.deepEqual((await rowOf(c, 'b1'))?.metadata, { owner_id: 'B', n: 1 }, "B's row unchanged");
    // UPDATE of B's row: nothing.
    assert.equal(await asA((q) => q.update(c, { metadata: { owner_id: 'A', stolen: true } }, ['id', 'b1'])), 0, "A's UPDATE of b1 reaches no row");
    assert.deepEqual((await rowOf(c, 'b1'))?.metadata, { owner_id: 'B', n: 1 }, "B's row unchanged");
    // UPDATE giving its own row away: refused; keeping it: done.
    await assert.rejects(asA((q) => q.update(c, { metadata: { owner_id: 'B' } }, ['id', 'a1'])), denied(NOT_OWNED), 'update setting owner B');
    assert.deepEqual((await rowOf(c, 'a1'))?.metadata, { owner_id: 'A', n: 1 }, 'a1 unchanged');
    assert.equal(await asA((q) => q.update(c, { metadata: { owner_id: 'A', n: 10 } }, ['id', 'a1'])), 1, "A's UPDATE of its own row");
    assert.deepEqual((await rowOf(c, 'a1'))?.metadata, { owner_id: 'A', n: 10 }, 'a1 updated');
    // DELETE of B's row: nothing; of its own: done.
    assert.equal(await asA((q) => q.delete(c, ['id', 'b2'])), 0, "A's DELETE of b2 reaches no row");
    assert.ok(await rowOf(c, 'b2'), 'b2 still there');
    assert.equal(await asA((q) => q.delete(c, ['id', 'a3'])), 1, "A's DELETE of its own row");
    assert.equal(await rowOf(c, 'a3'), undefined, 'a3 deleted');
  });

  test(`${c}: A's upsert_${c} writes only A's rows and never overwrites another owner's`, async () => {
    const upsert = (sub: string | undefined, id: string, embedding: number[], metadata: unknown, role: ApiRole = 'authenticated') =>
      rest.request(role, true, (q) => q.rpc(`upsert_${c}`, [['id', 'text', id], ['embedding', 'extensions.vector', embedding], ['metadata', 'jsonb', metadata]], false), claimsOf(role, sub));
    const upsertRows = (sub: string | undefined, rows: unknown[]) =>
      rest.request('authenticated', true, (q) => q.rpc(`upsert_${c}`, [['rows', 'jsonb', rows]], false), claimsOf('authenticated', sub));
    const b1 = await rowOf(c, 'b1');
    // Owner B, as A: refused.
    await assert.rejects(upsert('A', 'u-x', [1, 2, 3], { owner_id: 'B' }), denied(NOT_OWNED), 'upsert with owner B');
    // B's existing id, with A as owner: refused, B's row unchanged.
    await assert.rejects(upsert('A', 'b1', [7, 7, 7], { owner_id: 'A' }), denied(/id b1 is a row the request does not own/), "upsert of B's id");
    assert.deepEqual(await rowOf(c, 'b1'), b1, "B's row unchanged");
    // No claim: refused.
    await assert.rejects(upsert(undefined, 'u-y', [1, 2, 3], { owner_id: 'A' }), denied(/no JWT claim "sub"/), 'upsert without a claim');
    await assert.rejects(
      rest.request('authenticated', true, (q) => q.insert(c, [{ id: 'u-y', embedding: '[1,1,1]', metadata: { owner_id: 'A' } }])),
      denied(/no JWT claim "sub"/),
      'insert without a claim',
    );
    // Its own: a new id inserted, an existing one updated.
    await upsert('A', 'u-a', [1, 2, 3], { owner_id: 'A', v: 1 });
    assert.deepEqual((await rowOf(c, 'u-a'))?.metadata, { owner_id: 'A', v: 1 }, 'new own row upserted');
    await upsert('A', 'u-a', [3, 2, 1], { owner_id: 'A', v: 2 });
    assert.deepEqual(await rowOf(c, 'u-a'), { metadata: { owner_id: 'A', v: 2 }, embedding: '[3,2,1]' }, 'own row updated');
    // Batch: one row of B's among A's refuses the whole call.
    await assert.rejects(
      upsertRows('A', [{ id: 'u-b1', embedding: [1, 1, 1], metadata: { owner_id: 'A' } }, { id: 'b1', embedding: [5, 5, 5], metadata: { owner_id: 'A' } }]),
      denied(/id b1 is a row the request does not own/),
      "batch with B's id",
    );
    await assert.rejects(upsertRows('A', [{ id: 'u-b2', embedding: [1, 1, 1], metadata: { owner_id: 'B' } }]), denied(NOT_OWNED), 'batch with owner B');
    await assert.rejects(upsertRows('A', [{ id: 'u-b3', embedding: [1, 1, 1] }]), denied(NOT_OWNED), 'batch row without metadata');
    assert.equal(await rowOf(c, 'u-b1'), undefined, 'nothing of a refused batch written');
    assert.deepEqual(await rowOf(c, 'b1'), b1, "B's row unchanged");
    // Batch of its own: new and existing ids, a duplicate (the last wins).
    await upsertRows('A', [
      { id: 'u-a', embedding: [4, 4, 4], metadata: { owner_id: 'A', v: 3 } },
      { id: 'u-c', embedding: [5, 5, 5], metadata: { owner_id: 'A', v: 1 } },
      { id: 'u-c', embedding: [6, 6, 6], metadata: { owner_id: 'A', v: 2 } },
    ]);
    assert.deepEqual(await rowOf(c, 'u-a'), { metadata: { owner_id: 'A', v: 3 }, embedding: '[4,4,4]' }, 'existing own row updated by the batch');
    assert.deepEqual(await rowOf(c, 'u-c'), { metadata: { owner_id: 'A', v: 2 }, embedding: '[6,6,6]' }, 'new row, the last of its id');
    // service_role (trusted) writes anything: B's row given to A, as before owned rows.
    await upsert(undefined, 'b1', [8, 8, 8], { owner_id: 'A', by: 'service' }, 'service_role');
    assert.deepEqual((await rowOf(c, 'b1'))?.metadata, { owner_id: 'A', by: 'service' }, 'service_role overwrote b1');
    await upsert(undefined, 'b1', [0, 1, 2], { owner_id: 'B', n: 1 }, 'service_role');
  });
}

const steps = async () => (await plan(file.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`));

test('the applied state converges: after apply and the writes above, nothing to do', async () => {
  assert.deepEqual(await steps(), [], 'nothing to do');
});

test('dropping access converges, and adding it back', async () => {
  // Without access a role is in one list only: service_role writes, authenticated reads.
  const open = topologyFile(dbs, COLLECTIONS_YAML.replace(/ {4}access: .*\n/g, ''), 'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n');
  await apply(open.load(), { approve: async () => true });
  assert.deepEqual((await plan(open.load())).databases.flatMap((d) => d.steps.map((s) => `${d.database}: ${s.action} ${s.object}`)), [], 'converged without access');
  const fns = await sql<{ n: number }>(dbs.primary, `SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = 'vecscale'::regnamespace AND proname IN ('sees_all_rows', 'jwt_claim', 'owner_metadata')`);
  assert.equal(fns[0]!.n, 0, 'the access functions dropped');
  await apply(file.load(), { approve: async () => true });
  assert.deepEqual(await steps(), [], 'converged with access again');
  assert.deepEqual(ids(await get('docs', 'authenticated', 'B')), ['b1', 'b2'], "B's rows only again");
});
