/**
 * Attacks on hybrid_<c> and owned rows (review of the hybrid / owned-rows commit): hostile metadata keys in the
 * topology (quotes, % and $1 in text.source, access.owner_key and access.claim: they go through format() templates
 * and replace('$1')), the caller's identity (SET ROLE, roles that inherit an API role, SECURITY DEFINER wrappers),
 * PostgREST's GET path (READ ONLY), the view public.<c>, late input checks, and a silent pod.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { apply, plan } from '../../src/api.js';
import { hasChanges } from '../../src/plan/types.js';
import { freezeSessions, outcome, sql } from '../harness.js';
import { Rest, supabaseDatabases } from '../supabase.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await supabaseDatabases('hyatk');
const [podA, podB] = Object.values(dbs.secondaries) as [string, string];
const DIM = 4;
// Keys that break naive templating: a quote, %s / %1$s (format()), $1 (the vector placeholder), a double quote.
const OWNER_KEY = `o'w%s$1"n%1$s`;
const CLAIM = `s'u%b$1`;
const SOURCE = `c'%1$s$1"t%%`;
const yamlString = (s: string) => JSON.stringify(s);
const file = topologyFile(
  dbs,
  `  odd:
    secondary: pod_a
    dimension: ${DIM}
    index: { method: none }
    text: { source: ${yamlString(SOURCE)} }
    access: { owner_key: ${yamlString(OWNER_KEY)}, claim: ${yamlString(CLAIM)} }
  sodd:
    shards: [pod_a, pod_b]
    partitions: 2
    dimension: ${DIM}
    index: { method: none }
    text: { source: ${yamlString(SOURCE)} }
    access: { owner_key: ${yamlString(OWNER_KEY)}, claim: ${yamlString(CLAIM)} }
  plain:
    secondary: pod_b
    dimension: ${DIM}
    index: { method: none }
    text: { source: content }
    access: { owner_key: owner_id, claim: sub }
`,
  'extension_schema: extensions\napi_roles: [anon, authenticated]\nwrite_roles: [service_role]\n',
);
await apply(file.load(), { approve: async () => true });

const WORDS = ['fox', 'dog', 'cat', 'vector', 'search', 'rank'];
let seed = 11;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const vec = (): number[] => Array.from({ length: DIM }, () => Number((rand() * 2 - 0.9).toFixed(4)));
interface Row { id: string; embedding: number[]; metadata: Record<string, unknown> }
const owners = ['u1', 'u2', 'u3'];
function rows(key: string, source: string): Row[] {
  return Array.from({ length: 300 }, (_, i) => ({
    id: `r${String(i).padStart(3, '0')}`,
    embedding: vec(),
    metadata: { [source]: `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]}`, [key]: owners[i % 3] },
  }));
}
for (const [c, key, source] of [['odd', OWNER_KEY, SOURCE], ['sodd', OWNER_KEY, SOURCE], ['plain', 'owner_id', 'content']] as const) {
  await sql(dbs.primary, `SELECT public.upsert_${c}($1::jsonb)`, [JSON.stringify(rows(key, source))]);
}

const rest = await Rest.connect(dbs.primary);
test.after(() => rest.end());
type Hit = { id: string; metadata: Record<string, unknown> };
const q = () => JSON.stringify(vec());

test('hostile text.source / owner_key / claim names: match_<c> and hybrid_<c> still work and restrict to the claim', async () => {
  for (const c of ['odd', 'sodd']) {
    const claims = { role: 'authenticated', [CLAIM]: 'u1' };
    const m = (await rest.request('authenticated', true, (x) => x.rpc(`match_${c}`, [['query_embedding', 'extensions.vector', JSON.parse(q())], ['match_count', 'integer', 10]]), claims)) as Hit[];
    assert.equal(m.length, 10, `${c}: match gives 10 rows: ${JSON.stringify(m)}`);
    assert.ok(m.every((r) => r.metadata[OWNER_KEY] === 'u1'), `${c}: match rows are u1's: ${JSON.stringify(m.map((r) => r.metadata[OWNER_KEY]))}`);
    const h = (await rest.request('authenticated', true, (x) => x.rpc(`hybrid_${c}`, [['query_text', 'text', 'fox'], ['query_embedding', 'extensions.vector', JSON.parse(q())], ['match_count', 'integer', 10]]), claims)) as Array<Hit & { full_text_rank: number | null }>;
    assert.equal(h.length, 10, `${c}: hybrid gives 10 rows: ${JSON.stringify(h)}`);
    assert.ok(h.every((r) => r.metadata[OWNER_KEY] === 'u1'), `${c}: hybrid rows are u1's`);
    assert.ok(h.some((r) => r.full_text_rank !== null), `${c}: the full-text leg found 'fox' under the key ${SOURCE}: ${JSON.stringify(h)}`);
    assert.ok(h.filter((r) => r.full_text_rank !== null).every((r) => String(r.metadata[SOURCE]).includes('fox')), `${c}: full-text hits contain fox`);
  }
});

test('owned rows: the view public.<c> read through PostgREST shows a caller only its own rows (schema.ts promises it)', async () => {
  const mine = (await rest.request('authenticated', false, (x) => x.select('plain', ['id', 'metadata']), { role: 'authenticated', sub: 'u1' })) as Hit[];
  const owners = [...new Set(mine.map((r) => r.metadata.owner_id))];
  assert.deepEqual(owners, ['u1'], `GET /plain as u1 returns only u1's rows, got owners ${JSON.stringify(owners)} (${mine.length} rows)`);
  const anon = (await rest.request('anon', false, (x) => x.select('plain', ['id', 'metadata']), { role: 'anon' })) as Hit[];
  assert.equal(anon.length, 0, `GET /plain as anon without a claim returns nothing, got ${anon.length} rows`);
  const anonSub = (await rest.request('anon', false, (x) => x.select('plain', ['id', 'metadata']), { role: 'anon', sub: 'u2' })) as Hit[];
  assert.ok(anonSub.length === 100 && anonSub.every((r) => r.metadata.owner_id === 'u2'), `GET /plain as anon with sub u2: u2's 100 rows, got ${anonSub.length}`);
  const all = (await rest.request('service_role', false, (x) => x.select('plain', ['id']), { role: 'service_role' })) as Hit[];
  assert.equal(all.length, 300, 'service_role reads every row through the view');
  assert.equal((await sql(dbs.primary, `SELECT id FROM public.plain`)).length, 300, 'the applying login reads every row');
  // Hostile keys, sharded: the same through the view.
  const odd = (await rest.request('authenticated', false, (x) => x.select('sodd', ['id', 'metadata']), { role: 'authenticated', [CLAIM]: 'u3' })) as Hit[];
  assert.ok(odd.length === 100 && odd.every((r) => r.metadata[OWNER_KEY] === 'u3'), `GET /sodd as u3: u3's 100 rows, got ${odd.length}`);
  // The condition runs on the secondary (shipped), not as a filter over every row fetched.
  const plan = await rest.request('authenticated', false, async () => (await rest.raw.query(`EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM public.plain`)).rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n'), { role: 'authenticated', sub: 'u1' });
  assert.match(plan, /Remote SQL: .*WHERE .*metadata @> \$\d+::jsonb/, `the owner condition is in the remote SQL:\n${plan}`);
  assert.doesNotMatch(plan, /^\s*Filter:/m, `no local filter:\n${plan}`);
});

test('PostgREST GET (READ ONLY transaction): match_<c> and hybrid_<c> run, the view lock included', async () => {
  for (const c of ['plain', 'sodd']) {
    const claims = c === 'plain' ? { role: 'authenticated', sub: 'u2' } : { role: 'authenticated', [CLAIM]: 'u2' };
    const key = c === 'plain' ? 'owner_id' : OWNER_KEY;
    const m = (await rest.request('authenticated', false, (x) => x.rpc(`match_${c}`, [['query_embedding', 'extensions.vector', JSON.parse(q())], ['match_count', 'integer', 5]]), claims)) as Hit[];
    assert.ok(m.length === 5 && m.every((r) => r.metadata[key] === 'u2'), `${c}: GET match gives u2's 5 rows: ${JSON.stringify(m)}`);
    const h = (await rest.request('authenticated', false, (x) => x.rpc(`hybrid_${c}`, [['query_text', 'text', 'dog'], ['query_embedding', 'extensions.vector', JSON.parse(q())], ['match_count', 'integer', 5]]), claims)) as Hit[];
    assert.ok(h.length === 5 && h.every((r) => r.metadata[key] === 'u2'), `${c}: GET hybrid gives u2's 5 rows: ${JSON.stringify(h)}`);
  }
});

test('who the caller is: SET ROLE, an inheriting login, a SECURITY DEFINER wrapper, a trusted wrapper', async () => {
  const db = new URL(dbs.primary).pathname.slice(1);
  const member = `hyatk_member_${db}`.slice(0, 60);
  await sql(dbs.primary, `DO $$ BEGIN CREATE ROLE ${member} LOGIN PASSWORD 'pw-member' IN ROLE authenticated; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  const count = async (session: string[], url = dbs.primary): Promise<number> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (const s of session) await c.query(s);
      const r = await c.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE metadata->>'owner_id' <> 'u3')::int AS others FROM public.match_plain($1::extensions.vector, 50)`, [q()]);
      const { n, others } = r.rows[0] as { n: number; others: number };
      return others > 0 ? -n : n;
    } finally {
      await c.end();
    }
  };
  // postgres (the applying login, trusted) switched to authenticated: restricted; no claim, nothing; a claim, its rows.
  assert.equal(await count(['SET ROLE authenticated']), 0, 'SET ROLE authenticated without a claim sees nothing');
  assert.equal(await count(['SET ROLE authenticated', `SELECT set_config('request.jwt.claims', '{"sub":"u3"}', false)`]), 50, 'SET ROLE authenticated with sub u3 sees 50 of u3 only');
  // A login that inherits authenticated without being listed: restricted (default deny).
  const u = new URL(dbs.primary);
  u.username = member;
  u.password = 'pw-member';
  assert.equal(await count([], u.toString()), 0, 'a login inheriting authenticated, no claim: nothing');
  assert.equal(await count([`SELECT set_config('request.jwt.claims', '{"sub":"u3"}', false)`], u.toString()), 50, 'inheriting login with a claim: its rows only');
  // A SECURITY DEFINER function of postgres called by authenticated: still the request's role, restricted.
  await sql(dbs.primary, `CREATE OR REPLACE FUNCTION public.wrapped_match(v extensions.vector) RETURNS SETOF text LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT metadata->>'owner_id' FROM public.match_plain(v, 50) $$`);
  const wrapped = (await rest.request('authenticated', true, (x) => x.rpc('wrapped_match', [['v', 'extensions.vector', JSON.parse(q())]]), { role: 'authenticated', sub: 'u2' })) as Array<string | Record<string, string>>;
  const seen = new Set(wrapped.map((r) => (typeof r === 'string' ? r : Object.values(r)[0])));
  assert.deepEqual([...seen], ['u2'], `a SECURITY DEFINER wrapper of postgres does not widen: ${JSON.stringify([...seen])}`);
});

test('owner claims: JSON null, empty object, non-JSON claims, a number', async () => {
  const call = (claims: string) => sql<{ n: number }>(dbs.primary,
    `SELECT count(*)::int AS n FROM (SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', $2, true)) s, LATERAL public.match_plain($1::extensions.vector, 20)`, [q(), claims]);
  for (const claims of ['{"sub": null}', '{}', 'not json', '[]', '"u1"', '{"sub": {"x": 1}}']) {
    const [r] = await call(claims);
    assert.equal(r!.n, 0, `claims ${claims}: nothing`);
  }
});

test('hybrid_<c> checks rrf_k and the weights before any round trip (a bad call does not drop the kept connections)', async () => {
  const wrapper = fdwUserFor(dbs);
  const podPids = async () => (await sql<{ pid: number }>(podB, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = $1`, [wrapper])).map((r) => r.pid);
  const c = new pg.Client({ connectionString: dbs.primary });
  await c.connect();
  try {
    await c.query(`SELECT * FROM public.hybrid_plain('fox', $1::extensions.vector, 5)`, [q()]); // the session's connection is open
    const before = await podPids();
    assert.ok(before.length > 0, 'the kept connection is on the pod');
    for (const [w1, w2, k] of [['1', '1', -1], [null, '1', 50], ['1', '1', null]] as const) {
      await c.query(`SELECT * FROM public.hybrid_plain('fox', $1::extensions.vector, 5, '{}', $2, $3, $4)`, [q(), w1, w2, k]).then(
        () => assert.fail(`weights ${w1}/${w2}, rrf_k ${k} must be refused`),
        (e: Error) => assert.match(e.message, /rrf_k must be 0 or more/, 'the message'),
      );
    }
    await c.query(`SELECT * FROM public.hybrid_plain('fox', $1::extensions.vector, 5)`, [q()]);
    const after = await podPids();
    const dropped = before.filter((p) => !after.includes(p));
    assert.deepEqual(dropped, [], `bad arguments dropped the pod connections ${JSON.stringify(dropped)} (a round trip and a reconnect per bad call)`);
  } finally {
    await c.end();
  }
});

test('hybrid_<c>: NaN, Infinity and negative weights, rrf_k 0 and huge, a huge query_text, pure negation', async () => {
  const v = q();
  for (const [w1, w2, k] of [['NaN', '1', 50], ['Infinity', '1', 50], ['-1', '2', 0], ['1', '1', 2147483647]] as const) {
    const r = await sql<{ score: number }>(dbs.primary, `SELECT score FROM public.hybrid_plain('fox dog', $1::extensions.vector, 10, '{}', $2::float8, $3::float8, $4)`, [v, w1, w2, k]);
    assert.equal(r.length, 10, `weights ${w1}/${w2}, rrf_k ${k}: 10 rows`);
  }
  const long = Array.from({ length: 20000 }, (_, i) => `w${i}`).join(' or ');
  const c = new pg.Client({ connectionString: dbs.primary });
  await c.connect();
  await c.query(`SET statement_timeout = '5s'`);
  const r = await outcome(c.query(`SELECT count(*) FROM public.hybrid_plain($2, $1::extensions.vector, 10)`, [v, long]));
  await c.end();
  assert.ok(r.ms < 8000, `a 20000-word OR query answers or fails within the budget (${r.ms} ms, ${r.error?.message ?? 'ok'})`);
  const neg = await sql(dbs.primary, `SELECT * FROM public.hybrid_plain('-fox -dog', $1::extensions.vector, 10)`, [v]);
  assert.equal(neg.length, 10, 'a pure negation is a valid query');
});

test('a silent pod: hybrid_<c> ends within the caller\'s statement_timeout, as match_<c>', async () => {
  const podDb = new URL(podB).pathname.slice(1);
  const holder = new pg.Client({ connectionString: podB });
  await holder.connect();
  try {
    // The pod's table locked: the statement waits there (a pod that does not answer).
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE vecs.plain IN ACCESS EXCLUSIVE MODE`);
    const c = new pg.Client({ connectionString: dbs.primary });
    await c.connect();
    try {
      await c.query(`SET statement_timeout = '1500ms'`);
      const r = await outcome(c.query(`SELECT * FROM public.hybrid_plain('fox', $1::extensions.vector, 5)`, [q()]));
      assert.ok(r.error !== undefined && r.ms < 3500, `hybrid_plain on a stuck pod fails within ~1.5 s: ${r.ms} ms, ${r.error?.message}`);
    } finally {
      await c.end();
    }
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
  }
  void podDb;
  void freezeSessions;
  void podA;
});

test('the topology converges: a second plan has nothing to do (the owned view included)', async () => {
  const again = await plan(file.load());
  assert.equal(hasChanges(again), false, `a second plan changes nothing: ${JSON.stringify(again).slice(0, 2000)}`);
});

test('owned rows: trusted writers still write through the view (its WHERE does not hide rows from them)', async () => {
  const n = await rest.request('service_role', true, (x) => x.update('plain', { metadata: { content: 'fox', owner_id: 'u9' } }, ['id', 'r000']), { role: 'service_role' });
  assert.equal(n, 1, 'service_role updates u1\'s row r000 through the view');
  const seen = (await rest.request('authenticated', false, (x) => x.select('plain', ['id'], ['id', 'r000']), { role: 'authenticated', sub: 'u9' })) as Hit[];
  assert.equal(seen.length, 1, 'u9 now sees r000');
  const gone = (await rest.request('authenticated', false, (x) => x.select('plain', ['id'], ['id', 'r000']), { role: 'authenticated', sub: 'u1' })) as Hit[];
  assert.equal(gone.length, 0, 'u1 no longer does');
  assert.equal(await rest.request('service_role', true, (x) => x.delete('plain', ['id', 'r000']), { role: 'service_role' }), 1, 'service_role deletes it through the view');
});
