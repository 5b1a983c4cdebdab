import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem, parseTopology, RULES } from '../../src/config/index.js';
import type { LoadResult } from '../../src/config/types.js';

const env = { PW: 'pw-1', PW2: 'pw-2' };
const base = `version: 1
primary:
  url: postgres://postgres:\${PW}@db.primary:5432/postgres
secondaries:
  pod_text:
    url: postgres://postgres:\${PW}@db.pod1/postgres
  pod_image:
    url: postgres://postgres:\${PW2}@db.pod2:5433/vectors
`;

function lines(r: LoadResult): string[] {
  return r.ok ? r.warnings.map(formatProblem) : r.problems.map(formatProblem);
}
const check = (collections: string, head = base): string[] => lines(parseTopology(`${head}collections:\n${collections}`, 't.yaml', env));

test('the rules are named, and valid input passes all of them', () => {
  assert.deepEqual(Object.keys(RULES), [
    'urlsArePostgres', 'databasesAreDistinct', 'noPasswordParameter', 'urlParametersAreCarried', 'urlsReachTheServer', 'passwordWrittenOnce', 'fdwUserIsNotTheLogin', 'fdwPasswordsAgree',
    'secondaryIsDefined', 'placementIsOne', 'partitionsFitShards',
    'partitionNamesAreFree', 'efConstructionCoversM', 'dimensionIsIndexable', 'columnNamesAreFree',
    'hybridNamesAreFree', 'textAndAccessKeysAreNamed', 'accessHasApiRoles',
    'collectionsVisibleToVecs', 'collectionNamesFit', 'extensionSchemaIsFree', 'rolesListedOnce', 'fdwPasswordIsAscii', 'replicasMatchTheirSecondary',
  ]);
  assert.deepEqual(check('  docs: { secondary: pod_text, dimension: 2000, index: { m: 32, ef_construction: 64 } }\n'), []);
});

test('text and access: parsed with defaults, located errors for empty keys, unknown languages, missing api_roles and reserved columns', () => {
  const roles = base.replace('secondaries:', 'api_roles: [anon, authenticated]\nsecondaries:');
  const ok = parseTopology(`${roles}collections:\n  docs:\n    secondary: pod_text\n    dimension: 3\n    text: { source: content }\n    access: { owner_key: owner_id, claim: sub }\n`, 't.yaml', env);
  assert.ok(ok.ok, `parses: ${lines(ok).join('; ')}`);
  if (ok.ok) {
    assert.deepEqual(ok.topology.collections[0]!.text, { source: 'content', language: 'english' });
    assert.deepEqual(ok.topology.collections[0]!.access, { ownerKey: 'owner_id', claim: 'sub' });
  }
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    text: { source: "", language: klingon }\n', roles), [
    't.yaml:14:21: collections.docs.text.source: must not be empty',
    't.yaml:14:35: collections.docs.text.language: must be one of arabic, armenian, basque, catalan, danish, dutch, english, finnish, french, german, greek, hindi, hungarian, indonesian, irish, italian, lithuanian, nepali, norwegian, portuguese, romanian, russian, serbian, simple, spanish, swedish, tamil, turkish, yiddish (got "klingon")',
  ].sort());
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    text: { language: english }\n', roles), [
    't.yaml:14:5: collections.docs.text: missing required key "source"',
  ]);
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    access: { owner_key: owner_id, claim: sub }\n'), [
    't.yaml:13:5: collections.docs.access: access restricts the callers in api_roles, and api_roles is empty: list the roles whose rows are owned (e.g. api_roles: [anon, authenticated])',
  ]);
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    columns: { score: real }\n    text: { source: content }\n', roles), [
    't.yaml:14:16: collections.docs.columns.score: column name "score" is reserved in a collection with text: score, full_text_rank, semantic_rank, query_text, full_text_weight, semantic_weight, rrf_k are hybrid_<collection>\'s result columns and arguments',
  ]);
});

test('rolesListedOnce: a writer is in write_roles only (it reads too)', () => {
  const head = 'version: 1\napi_roles: [anon, service_role]\nwrite_roles: [service_role]\nprimary:\n  url: postgres://u:${PW}@h/db\n';
  assert.deepEqual(check('', head), ['t.yaml:3:15: write_roles[0]: "service_role" is in api_roles too: write_roles read as well, so list it in write_roles only']);
  // With owned rows, a role in both lists is a caller restricted to its own rows that writes them.
  const owned = base.replace('version: 1\n', 'version: 1\napi_roles: [anon, authenticated]\nwrite_roles: [authenticated, service_role]\n');
  assert.deepEqual(check('  docs: { secondary: pod_text, dimension: 3, access: { owner_key: owner_id, claim: sub } }\n', owned), [], 'authenticated in both lists, with access');
});

test('secondaryIsDefined: at the value, with a suggestion or the list of names', () => {
  assert.deepEqual(check('  docs:\n    secondary: pod_x\n    dimension: 3\n'), [
    't.yaml:11:16: collections.docs.secondary: secondary "pod_x" is not defined in secondaries (did you mean "pod_text"?)',
  ]);
  assert.deepEqual(check('  docs: { secondary: other, dimension: 3 }\n'), [
    't.yaml:10:22: collections.docs.secondary: secondary "other" is not defined in secondaries (defined: pod_text, pod_image)',
  ]);
  const none = 'version: 1\nprimary:\n  url: postgres://u:${PW}@h/db\n';
  assert.deepEqual(check('  docs: { secondary: pod, dimension: 3 }\n', none), [
    't.yaml:5:22: collections.docs.secondary: secondary "pod" is not defined in secondaries (none are defined)',
  ]);
});

test('efConstructionCoversM: written or defaulted ef_construction must be at least 2 × m', () => {
  assert.deepEqual(check('  docs: { secondary: pod_text, dimension: 3, index: { m: 24, ef_construction: 47 } }\n'), [
    't.yaml:10:79: collections.docs.index.ef_construction: ef_construction (47) must be at least 2 × m = 48',
  ]);
  // The default ef_construction (64) is too small for m 40: reported where the index is written.
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    index:\n      m: 40\n'), [
    't.yaml:14:7: collections.docs.index.ef_construction: ef_construction (64) must be at least 2 × m = 80',
  ]);
  assert.deepEqual(check('  docs: { secondary: pod_text, dimension: 3, index: { m: 24, ef_construction: 48 } }\n'), []);
});

test('dimensionIsIndexable: over 2000 dimensions only without an index', () => {
  const message = (method: string) =>
    `t.yaml:12:16: collections.docs.dimension: pgvector cannot build an ${method} index over 2000 dimensions; use index: { method: none } or reduce the dimension`;
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 2001\n'), [message('hnsw')]);
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 4000\n    index: { method: ivfflat, lists: 10 }\n'), [message('ivfflat')]);
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 16000\n    index: { method: none }\n'), []);
});

test('columnNamesAreFree: id, embedding and metadata are reserved, reported at the key', () => {
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    columns:\n      title: text\n      metadata: jsonb\n      id: int\n'), [
    't.yaml:15:7: collections.docs.columns.metadata: column name "metadata" is reserved: id, embedding, metadata, vec are vecscale\'s and ctid, xmin, xmax, cmin, cmax, tableoid are PostgreSQL system columns',
    't.yaml:16:7: collections.docs.columns.id: column name "id" is reserved: id, embedding, metadata, vec are vecscale\'s and ctid, xmin, xmax, cmin, cmax, tableoid are PostgreSQL system columns',
  ]);
  // match_<c>'s result column and argument names: its RETURNS TABLE would name them twice.
  assert.deepEqual(check('  docs:\n    secondary: pod_text\n    dimension: 3\n    columns:\n      distance: real\n      filter: text\n'), [
    't.yaml:14:7: collections.docs.columns.distance: column name "distance" is reserved: distance, query_embedding, match_count, filter, ef_search, probes, iterative_scan are match_<collection>\'s result column and arguments',
    't.yaml:15:7: collections.docs.columns.filter: column name "filter" is reserved: distance, query_embedding, match_count, filter, ef_search, probes, iterative_scan are match_<collection>\'s result column and arguments',
  ]);
});

test('urlsArePostgres: scheme, host and user, quoted without the password', () => {
  const head = (url: string) => `version: 1\nprimary:\n  url: ${url}\n`;
  const only = (url: string) => check('  {}\n', head(url)).filter((l) => l.includes('primary.url'));
  assert.deepEqual(only('https://u:${PW}@db/x'), ['t.yaml:3:8: primary.url: must be a postgres:// or postgresql:// URL (got https://u@db/x)']);
  assert.deepEqual(only('postgresql:/x'), ['t.yaml:3:8: primary.url: has no host (got postgresql:///x)']);
  assert.deepEqual(only('postgres://db:5432'), ['t.yaml:3:8: primary.url: has no user: write postgres://USER@host/database (got postgres://db:5432)']);
  assert.deepEqual(only('postgres://u:${PW}@db:70000/x'), ['t.yaml:3:8: primary.url: is not a valid URL: write postgres://user:${PASSWORD}@host:5432/database']);
  assert.deepEqual(only('postgres://u@db'), []);
});

test('databasesAreDistinct: defaults applied (no database = the user\'s, as libpq), host case ignored, reported at the later URL', () => {
  const head = `version: 1
primary:
  url: postgres://postgres:\${PW}@db.primary/postgres
secondaries:
  a:
    url: postgres://x:\${PW}@db.pod1/vectors
  b:
    url: postgresql://y:\${PW2}@DB.POD1:5432/vectors
  c:
    url: postgres://postgres:\${PW2}@db.primary:5432
  e:
    url: postgres://z:\${PW2}@db.primary:5432
  d:
    url: postgres://z:\${PW2}@db.pod1/other
`;
  assert.deepEqual(check('  {}\n', head).filter((l) => !l.includes('collections')), [
    't.yaml:8:10: secondaries.b.url: points at the same database as secondaries.a (db.pod1:5432/vectors)',
    't.yaml:10:10: secondaries.c.url: points at the same database as primary (db.primary:5432/postgres)',
  ]);
});

test('rules still run on the valid parts of a file with shape errors', () => {
  const out = check('  docs:\n    secondary: pod_x\n    dimension: 3\n    metric: hamming\n  big:\n    secondary: pod_text\n    dimension: 3000\n    index: { lists: 5 }\n');
  assert.deepEqual(out.map((l) => l.split(': ').slice(0, 2).join(': ')), [
    't.yaml:11:16: collections.docs.secondary',
    't.yaml:13:13: collections.docs.metric',
    't.yaml:16:16: collections.big.dimension',
    't.yaml:17:14: collections.big.index.lists',
  ]);
});

test('a value missing an environment variable is not checked again as a URL', () => {
  const r = parseTopology('version: 1\nprimary:\n  url: ${DATABASE_URL}\n', 't.yaml', {});
  assert.deepEqual(lines(r), ['t.yaml:3:8: primary.url: missing environment variables: DATABASE_URL (t.yaml:3:8)']);
});

test('sharded collections: shards defined, one placement, partitions a power of two ≥ shards, no partition-like names', () => {
  assert.deepEqual(check('  img: { shards: [pod_text, pod_image], partitions: 4, dimension: 3 }\n'), []);
  assert.deepEqual(check('  img: { shards: [pod_text, pod_imag], dimension: 3 }\n'), [
    't.yaml:10:29: collections.img.shards[1]: secondary "pod_imag" is not defined in secondaries (did you mean "pod_image"?)',
  ]);
  assert.deepEqual(check('  img: { secondary: pod_text, shards: [pod_image], dimension: 3 }\n'), [
    't.yaml:10:39: collections.img.shards: write secondary (one database) or shards (split across several), not both',
  ]);
  assert.deepEqual(check('  img: { dimension: 3 }\n'), ['t.yaml:10:3: collections.img: needs secondary: <name>, or shards: [<name>, …] to split it across several secondaries']);
  assert.deepEqual(check('  img: { shards: [pod_text, pod_image], partitions: 3, dimension: 3 }\n'), ['t.yaml:10:53: collections.img.partitions: must be a power of two (got 3; try 4)']);
  assert.deepEqual(check('  img: { shards: [pod_text, pod_image], partitions: 1, dimension: 3 }\n'), [
    't.yaml:10:53: collections.img.partitions: must be at least the number of shards (2), so every shard holds a partition',
  ]);
  assert.deepEqual(check('  img: { secondary: pod_text, partitions: 2, dimension: 3 }\n'), [
    't.yaml:10:43: collections.img.partitions: partitions applies to a sharded collection: write shards: [...] instead of secondary',
  ]);
  assert.deepEqual(check('  img: { shards: [pod_text], dimension: 3, columns: { year: int } }\n'), []);
  assert.match(check('  img_p0of2: { secondary: pod_text, dimension: 3 }\n').join('\n'), /reserved for the partitions of sharded collections/);
});

test('urlParametersAreCarried: a parameter but sslmode is an error at its URL, naming it; sslmode values are checked', () => {
  const head = (query: string, secondaryQuery = '') =>
    `version: 1\nprimary:\n  url: postgres://postgres:\${PW}@db.primary:5432/postgres${query}\nsecondaries:\n  pod_text:\n    url: postgres://postgres:\${PW}@db.pod1/postgres${secondaryQuery}\n`;
  assert.deepEqual(check('', head('?sslmode=verify-full', '?sslmode=disable')), []);
  assert.deepEqual(check('', head('', '?port=5433')), [
    "t.yaml:6:10: secondaries.pod_text.url: has parameter port: write it in the URL itself (postgres://user@host:port/database): as a parameter it would change vecscale's own connection but not the wrapper's (URLs take only sslmode)",
  ]);
  assert.match(check('', head('?options=-c%20default_transaction_read_only%3Doff'))[0]!, /^t\.yaml:3:8: primary\.url: has parameter options: /);
  assert.match(check('', head('?application_name=x'))[0]!, /^t\.yaml:3:8: primary\.url: has parameter application_name: /);
  assert.deepEqual(check('', head('?sslmode=on')), ['t.yaml:3:8: primary.url: has sslmode="on"; sslmode is one of disable, allow, prefer, require, verify-ca, verify-full']);
});

test('urlsReachTheServer: Supabase transaction pooler URLs are refused at the URL, with the direct URL', () => {
  const head = 'version: 1\nprimary:\n  url: postgres://postgres.abcdefghij:${PW}@aws-0-eu-central-1.pooler.supabase.com:6543/postgres\n';
  const [line, ...rest] = check('', head);
  assert.deepEqual(rest, []);
  assert.match(line!, /^t\.yaml:3:8: primary\.url: goes through Supabase's transaction pooler \(port 6543\).*Use the direct URL \(postgres:\/\/postgres@db\.abcdefghij\.supabase\.co:5432\/postgres\)/);
  assert.deepEqual(check('', head.replace(':6543/', ':5432/')), []);
});

test('secondaryIsDefined stays linear: with many secondaries no suggestion is computed and no list is printed', () => {
  const many = Array.from({ length: 200 }, (_, i) => `  pod_${i}:\n    url: postgres://postgres:\${PW}@db.pod${i}/postgres\n`).join('');
  const head = `version: 1\nprimary:\n  url: postgres://postgres:\${PW}@db.primary:5432/postgres\nsecondaries:\n${many}`;
  assert.deepEqual(check('  docs: { secondary: pod_x, dimension: 3 }\n', head), [
    `t.yaml:${6 + 400}:22: collections.docs.secondary: secondary "pod_x" is not defined in secondaries`,
  ]);
});
