import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatProblem, loadTopology, MAX_TOPOLOGY_BYTES, parseTopology } from '../../src/config/index.js';
import { DEFAULT_QUERY_SETTINGS, type LoadResult, type Topology } from '../../src/config/types.js';
import { parsePgUrl } from '../../src/util/url.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const env = { PRIMARY_PASSWORD: 'pw-primary', POD_TEXT_PASSWORD: 'pw@text/1', POD_IMAGE_PASSWORD: 'pw:image#2', POD_TEXT_FDW_PASSWORD: 'fdw pw/3' };
const head = 'version: 1\nprimary:\n  url: postgres://postgres:${PRIMARY_PASSWORD}@db.primary.internal:5432/postgres\n';

function ok(r: LoadResult): Topology {
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  return r.topology;
}
function problems(r: LoadResult): string[] {
  if (r.ok) assert.fail('expected problems, the topology is valid');
  return r.problems.map(formatProblem);
}

test('every valid fixture loads without warnings', () => {
  for (const f of readdirSync(join(fixtures, 'valid'))) {
    const r = loadTopology(join(fixtures, 'valid', f), env);
    assert.ok(r.ok, `${f}: ${r.ok ? '' : r.problems.map(formatProblem).join('\n')}`);
    assert.deepEqual(r.warnings, [], f);
  }
});

test('every invalid fixture reports its `# expect:` message at a line and column', () => {
  const files = readdirSync(join(fixtures, 'invalid')).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const path = join(fixtures, 'invalid', f);
    const expected = /^# expect: (.+)$/.exec(readFileSync(path, 'utf8').split('\n')[0] ?? '')?.[1];
    assert.ok(expected, `${f}: first line must be "# expect: <message>"`);
    const r = loadTopology(path, env);
    assert.equal(r.ok, false, `${f} should be invalid`);
    if (r.ok) continue;
    const hit = r.problems.find((p) => formatProblem(p).includes(expected));
    assert.ok(hit, `${f}: no problem contains ${JSON.stringify(expected)}; got:\n${r.problems.map(formatProblem).join('\n')}`);
    assert.ok(hit.line !== undefined && hit.column !== undefined, `${f}: the problem has no position`);
    assert.match(formatProblem(hit), /^[^:]+\.yaml:\d+:\d+: /, f);
  }
});

test('minimal.yaml gets empty maps, no extension schema, the absolute file and its password as a secret', () => {
  const t = ok(loadTopology(join(fixtures, 'valid', 'minimal.yaml'), env));
  assert.equal(t.version, 1);
  assert.equal(t.file, join(fixtures, 'valid', 'minimal.yaml'));
  assert.equal(t.primary.url, 'postgres://postgres:pw-primary@db.primary.internal:5432/postgres');
  assert.deepEqual([t.secondaries, t.collections, t.extensionSchema, t.apiRoles, t.secrets], [[], [], undefined, [], ['pw-primary']]);
});

test('full.yaml: file order, defaults, index methods, metrics and canonical column types', () => {
  const t = ok(loadTopology(join(fixtures, 'valid', 'full.yaml'), env));
  assert.equal(t.extensionSchema, 'extensions');
  assert.deepEqual(t.secondaries.map((s) => s.name), ['pod_text', 'pod_image']);
  assert.deepEqual(t.collections.map((c) => [c.name, c.secondary, c.dimension, c.metric, c.index]), [
    ['docs', 'pod_text', 384, 'cosine', { method: 'hnsw', m: 24, efConstruction: 128 }],
    ['images', 'pod_image', 512, 'l2', { method: 'ivfflat', lists: 200 }],
    ['archive', 'pod_image', 3072, 'inner_product', { method: 'none' }],
  ]);
  assert.deepEqual(t.collections[0]?.columns.map((c) => `${c.name}:${c.type}`), [
    'url:text', 'year:integer', 'views:bigint', 'rank:smallint', 'price:numeric', 'score:real', 'weight:double precision',
    'published:boolean', 'day:date', 'created:timestamp without time zone', 'updated:timestamp with time zone', 'ref:uuid', 'extra:jsonb',
  ]);
  assert.deepEqual(t.collections[1]?.columns.map((c) => c.type), [
    'text', 'integer', 'smallint', 'bigint', 'real', 'double precision', 'boolean', 'timestamp without time zone', 'timestamp with time zone',
  ]);
  assert.deepEqual(t.collections[2]?.columns, []);
  assert.deepEqual(t.apiRoles, ['anon', 'authenticated']);
  assert.deepEqual(t.collections.map((c) => c.query), [
    { efSearch: 200, iterativeScan: 'strict_order', probes: 10 },
    { efSearch: 100, iterativeScan: 'off', probes: 20 },
    DEFAULT_QUERY_SETTINGS,
  ]);
  assert.deepEqual([...t.secrets].sort(), ['fdw pw/3', 'pw-primary', 'pw:image#2', 'pw@text/1']);
});

test('full.yaml: wrapper roles, a password key merged into its URL, protect', () => {
  const t = ok(loadTopology(join(fixtures, 'valid', 'full.yaml'), env));
  assert.deepEqual(t.secondaries.map((s) => [s.name, s.fdwUser, s.fdwPassword]), [
    ['pod_text', 'vecscale_wrapper', 'fdw pw/3'],
    ['pod_image', 'vecscale_fdw', undefined],
  ]);
  assert.equal(t.secondaries[1]?.url, 'postgresql://vecscale:pw%3Aimage%232@db.pod2.internal/vectors');
  assert.equal(parsePgUrl(t.secondaries[1]?.url ?? '').password, 'pw:image#2');
  assert.deepEqual(t.collections.map((c) => c.protect), [true, false, false]);
});

test('index defaults: absent, empty, or without method means hnsw m 16 ef_construction 64', () => {
  const t = ok(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3 }
  b: { secondary: s, dimension: 3, index: }
  c: { secondary: s, dimension: 3, index: { m: 8 } }
  d: { secondary: s, dimension: 3, index: { method: ivfflat } }\n`, 'topology.yaml', env));
  assert.deepEqual(t.collections.map((c) => c.index), [
    { method: 'hnsw', m: 16, efConstruction: 64 },
    { method: 'hnsw', m: 16, efConstruction: 64 },
    { method: 'hnsw', m: 8, efConstruction: 64 },
    { method: 'ivfflat', lists: 100 },
  ]);
  assert.equal(t.collections[0]?.metric, 'cosine');
});

test('index: the method alone is that method with its defaults; anything else says what it may be', () => {
  const t = ok(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3, index: none }
  b: { secondary: s, dimension: 3, index: ivfflat }
  c: { secondary: s, dimension: 3, index: hnsw }\n`, 'topology.yaml', env));
  assert.deepEqual(t.collections.map((c) => c.index), [
    { method: 'none' },
    { method: 'ivfflat', lists: 100 },
    { method: 'hnsw', m: 16, efConstruction: 64 },
  ]);
  const bad = (index: string) => problems(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3, index: ${index} }\n`, 'topology.yaml', env));
  assert.deepEqual(bad('nonee'), ['topology.yaml:8:43: collections.a.index: must be a mapping, or one of hnsw, ivfflat, none (got "nonee"; did you mean "none"?)']);
  assert.deepEqual(bad('5'), ['topology.yaml:8:43: collections.a.index: must be a mapping, or one of hnsw, ivfflat, none (got 5)']);
});

test('index.build: PostgreSQL memory units to kB, workers as written, both optional; absent or empty is no build', () => {
  const t = ok(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3, index: { method: hnsw, m: 16, ef_construction: 64, build: { maintenance_work_mem: 4GB, parallel_workers: 4 } } }
  b: { secondary: s, dimension: 3, index: { method: ivfflat, build: { maintenance_work_mem: 96 MB } } }
  c: { secondary: s, dimension: 3, index: { build: { parallel_workers: 0 } } }
  d: { secondary: s, dimension: 3, index: { build: } }
  e: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 2147483647kB } } }\n`, 'topology.yaml', env));
  assert.deepEqual(t.collections.map((c) => c.index), [
    { method: 'hnsw', m: 16, efConstruction: 64, build: { maintenanceWorkMemKb: 4 * 1024 * 1024, parallelWorkers: 4 } },
    { method: 'ivfflat', lists: 100, build: { maintenanceWorkMemKb: 96 * 1024 } },
    { method: 'hnsw', m: 16, efConstruction: 64, build: { parallelWorkers: 0 } },
    { method: 'hnsw', m: 16, efConstruction: 64 },
    { method: 'hnsw', m: 16, efConstruction: 64, build: { maintenanceWorkMemKb: 2_147_483_647 } },
  ]);
});

test('index.build: a size needs a unit PostgreSQL knows, within its bounds; workers 0–1024; no build for method none', () => {
  const lines = problems(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 4096 } } }
  b: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 4gb } } }
  c: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 512kB } } }
  d: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 2TB } } }
  e: { secondary: s, dimension: 3, index: { build: { parallel_workers: 1025 } } }
  f: { secondary: s, dimension: 3, index: { build: { maintenance_work_mem: 1.5GB, workers: 2 } } }
  g: { secondary: s, dimension: 3, index: { method: none, build: { parallel_workers: 2 } } }\n`, 'x.yaml', env));
  assert.deepEqual(lines, [
    'x.yaml:8:76: collections.a.index.build.maintenance_work_mem: must be a size with a unit, as PostgreSQL writes it: a whole number and kB, MB, GB or TB (e.g. 4GB); PostgreSQL would read 4096 as 4096 kB: write the unit, e.g. 4096kB (got 4096)',
    'x.yaml:9:76: collections.b.index.build.maintenance_work_mem: must be a size with a unit, as PostgreSQL writes it: a whole number and kB, MB, GB or TB (e.g. 4GB) (got "4gb")',
    "x.yaml:10:76: collections.c.index.build.maintenance_work_mem: must be 1MB–2147483647kB, PostgreSQL's bounds (got 512kB)",
    "x.yaml:11:76: collections.d.index.build.maintenance_work_mem: must be 1MB–2147483647kB, PostgreSQL's bounds (got 2TB)",
    'x.yaml:12:72: collections.e.index.build.parallel_workers: must be an integer 0–1024 (got 1025)',
    'x.yaml:13:76: collections.f.index.build.maintenance_work_mem: must be a size with a unit, as PostgreSQL writes it: a whole number and kB, MB, GB or TB (e.g. 4GB) (got "1.5GB")',
    'x.yaml:13:83: collections.f.index.build.workers: unknown key "workers" (allowed: maintenance_work_mem, parallel_workers)',
    'x.yaml:14:59: collections.g.index.build: build is not a key of a none index (method none takes no other keys)',
  ]);
});

test('query defaults: absent, empty or partly written, every key falls back to DEFAULT_QUERY_SETTINGS', () => {
  const t = ok(parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:
  a: { secondary: s, dimension: 3 }
  b: { secondary: s, dimension: 3, query: }
  c: { secondary: s, dimension: 3, query: { probes: 1 } }
  d: { secondary: s, dimension: 3, query: { ef_search: 1000, iterative_scan: off, probes: 32768 } }\n`, 'topology.yaml', env));
  assert.deepEqual(t.collections.map((c) => c.query), [
    DEFAULT_QUERY_SETTINGS,
    DEFAULT_QUERY_SETTINGS,
    { ...DEFAULT_QUERY_SETTINGS, probes: 1 },
    { efSearch: 1000, iterativeScan: 'off', probes: 32768 },
  ]);
});

test('api_roles: flow or block list in written order; empty or absent is no roles', () => {
  const roles = (text: string) => ok(parseTopology(`${head}${text}`, 'topology.yaml', env)).apiRoles;
  assert.deepEqual(roles('api_roles: [anon, authenticated, service_role]\n'), ['anon', 'authenticated', 'service_role']);
  assert.deepEqual(roles('api_roles:\n  - authenticated\n  - anon\n'), ['authenticated', 'anon']);
  assert.deepEqual(roles('api_roles: []\n'), []);
  assert.deepEqual(roles('api_roles:\n'), []);
  assert.deepEqual(roles(''), []);
});

test('api_roles: every bad item is located at its index, with the reason', () => {
  const lines = problems(parseTopology(`${head}api_roles: [anon, Anon, anon, public, pg_monitor, postgres]\n`, 'x.yaml', env));
  assert.deepEqual(lines, [
    'x.yaml:4:19: api_roles[1]: must be a name: a lowercase letter or underscore, then up to 62 lowercase letters, digits or underscores (got "Anon")',
    'x.yaml:4:25: api_roles[2]: duplicate role "anon" (already api_roles[0])',
    'x.yaml:4:31: api_roles[3]: "public" is reserved: granting to PUBLIC is granting to every role',
    'x.yaml:4:39: api_roles[4]: "pg_monitor" is reserved: pg_* roles are PostgreSQL\'s predefined roles',
    'x.yaml:4:51: api_roles[5]: "postgres" is reserved: the administrator role needs no grants',
  ]);
  assert.deepEqual(problems(parseTopology(`${head}api_roles: { anon: true }\n`, 'x.yaml', env)), ['x.yaml:4:12: api_roles: must be a list of roles (got a mapping)']);
});

test('all missing variables are one error at the first occurrence, each listed with file:line:column', () => {
  const text = 'version: 1\nprimary:\n  url: postgres://u:${PRIMARY_PASSWORD}@h1/db\nsecondaries:\n  pod_text:\n    url: postgres://u:${POD_TEXT_PASSWORD}@h2/db\n  pod_b:\n    url: postgres://u:${PRIMARY_PASSWORD}@h3/db\n';
  const r = parseTopology(text, 'topology.yaml', {});
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.problems.length, 1);
  assert.deepEqual({ ...r.problems[0], file: undefined }, {
    severity: 'error', path: 'primary.url', file: undefined, line: 3, column: 21,
    message: 'missing environment variables: PRIMARY_PASSWORD (topology.yaml:3:21, topology.yaml:8:23), POD_TEXT_PASSWORD (topology.yaml:6:23)',
  });
});

test('a password from the environment is percent-encoded in the userinfo and decoded again as a secret', () => {
  const password = 'p@ss/w:rd#?% x';
  const t = ok(parseTopology('version: 1\nprimary:\n  url: postgres://${U}:${PW}@${HOST}:5433/app?sslmode=require\n', 'topology.yaml', { U: 'me@corp', PW: password, HOST: 'db.internal' }));
  const parts = parsePgUrl(t.primary.url);
  assert.deepEqual([parts.user, parts.password, parts.host, parts.port, parts.database, parts.sslmode], ['me@corp', password, 'db.internal', 5433, 'app', 'require']);
  assert.deepEqual(t.secrets, [password]);
});

test('defaults, empty values and escapes follow the shell', () => {
  const url = (value: string, e: Record<string, string>) =>
    ok(parseTopology(`version: 1\nprimary:\n  url: "${value}"\n`, 'topology.yaml', e)).primary.url;
  assert.equal(url('postgres://u:${PW:-dev}@h/db', {}), 'postgres://u:dev@h/db');
  assert.equal(url('postgres://u:${PW:-dev}@h/db', { PW: '' }), 'postgres://u:dev@h/db');
  assert.equal(url('postgres://u:${PW}@h/db', { PW: '' }), 'postgres://u:@h/db');
  assert.equal(url('postgres://u:${PW}@h/$${db}', { PW: 'x' }), 'postgres://u:x@h/${db}');
  assert.equal(url('${DATABASE_URL}', { DATABASE_URL: 'postgres://u:a%40b@h/db' }), 'postgres://u:a%40b@h/db');
});

test('only free-text values are interpolated: names and numbers are taken as written', () => {
  const r = parseTopology(`${head}secondaries:\n  s:\n    url: postgres://u@h2/db\ncollections:\n  a:\n    secondary: \${POD}\n    dimension: \${DIM}\n`, 't.yaml', { ...env, POD: 's', DIM: '3' });
  const lines = problems(r);
  assert.ok(lines.some((l) => l.includes('t.yaml:9:16: collections.a.secondary: must be a name')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('t.yaml:10:16: collections.a.dimension: must be an integer 1–16000 (got "${DIM}")')), lines.join('\n'));
});

test('a literal password is a warning that never shows the password, and still a secret', () => {
  const r = parseTopology('version: 1\nprimary:\n  url: postgres://postgres:hunter2-secret@db/postgres\n', 'topology.yaml', {});
  const t = ok(r);
  assert.ok(r.ok);
  assert.deepEqual(r.warnings.map(formatProblem), ['warning: topology.yaml:3:8: primary.url: literal password in primary.url: use ${ENV_VAR}']);
  assert.deepEqual(t.secrets, ['hunter2-secret']);
});

test('no problem ever quotes a password', () => {
  const texts = [
    'version: 1\nprimary: postgres://u:hunter2-secret@h/db\n',
    'version: 1\nprimary:\n  url: mysql://u:hunter2-secret@h/db\n',
    'version: 1\nprimary:\n  url: postgres://u:${PW}@h/db\nsecondaries:\n  a:\n    url: postgres://v:${PW}@H:5432/db\n',
    'version: 2\nprimary:\n  url: postgres://u:${PW}\n',
  ];
  for (const text of texts) {
    const r = parseTopology(text, 'topology.yaml', { PW: 'hunter2-secret' });
    const shown = (r.ok ? r.warnings : r.problems).map(formatProblem).join('\n');
    assert.ok(shown.length > 0);
    assert.ok(!shown.includes('hunter2'), shown);
  }
});

test('every problem comes at once, sorted by line then column', () => {
  const text = `version: 3\n${head.slice(11)}collections:\n  a: { secondary: nope, dimension: 0, metric: cosin }\n  B: { secondary: nope, dimension: 3 }\nextra: 1\n`;
  const r = parseTopology(text, 'topology.yaml', env);
  assert.ok(!r.ok);
  if (r.ok) return;
  assert.deepEqual(r.problems.map((p) => `${p.line}:${p.column} ${p.path}`), [
    '1:10 version', '5:19 collections.a.secondary', '5:36 collections.a.dimension', '5:47 collections.a.metric', '6:3 collections.B', '7:1 extra',
  ]);
});

test('YAML errors, duplicate keys and a root that is not a mapping are located problems', () => {
  assert.match(problems(parseTopology('version: 1\nprimary: [\n', 'x.yaml', {}))[0] ?? '', /^x\.yaml:3:1: invalid YAML: /);
  assert.deepEqual(problems(parseTopology(`${head}version: 1\n`, 'x.yaml', env)), ['x.yaml:4:1: version: duplicate key "version"']);
  assert.deepEqual(problems(parseTopology('just text', 'x.yaml', {})), ['x.yaml:1:1: the topology must be a mapping of version, primary, secondaries and collections (got "just text")']);
  assert.deepEqual(problems(parseTopology(`${head}other:\n  a: 1\n  a: 2\n`, 'x.yaml', env)), ['x.yaml:4:1: other: unknown key "other" (allowed: version, extension_schema, api_roles, write_roles, primary, secondaries, collections)', 'x.yaml:6:3: duplicate key "a"']);
});

test('wrong types say what was expected and what was given', () => {
  const lines = problems(parseTopology(`${head}secondaries: 3\ncollections:\n  a:\n    secondary: [x]\n    dimension: 2.5\n    columns: text\n`, 'x.yaml', env));
  assert.deepEqual(lines, [
    'x.yaml:4:14: secondaries: must be a mapping (got 3)',
    'x.yaml:7:16: collections.a.secondary: must be a name: a lowercase letter or underscore, then up to 62 lowercase letters, digits or underscores (got a list)',
    'x.yaml:8:16: collections.a.dimension: must be an integer 1–16000 (got 2.5)',
    'x.yaml:9:14: collections.a.columns: must be a mapping (got "text")',
  ]);
});

test('loadTopology reports an unreadable file as a problem without a position', () => {
  const r = loadTopology(join(fixtures, 'does-not-exist.yaml'), {});
  assert.ok(!r.ok);
  if (r.ok) return;
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]?.line, undefined);
  assert.equal(formatProblem(r.problems[0]!), `${relative(process.cwd(), join(fixtures, 'does-not-exist.yaml'))}: cannot read the topology file: no such file`);
});

test('formatProblem: file relative to the working directory, warning prefix, no path for the whole document', () => {
  const file = join(process.cwd(), 'conf', 'topology.yaml');
  assert.equal(formatProblem({ severity: 'error', path: 'collections.docs.dimension', file, line: 12, column: 5, message: 'must be an integer 1–16000 (got "abc")' }),
    `${join('conf', 'topology.yaml')}:12:5: collections.docs.dimension: must be an integer 1–16000 (got "abc")`);
  assert.equal(formatProblem({ severity: 'warning', path: '', file: '<string>', line: 1, column: 1, message: 'm' }), 'warning: <string>:1:1: m');
});

test('duplicate keys are found without yaml\'s quadratic check: walked maps with their path, skipped and flow ones too', () => {
  assert.deepEqual(problems(parseTopology(`${head}collections:\n  a: { shards: [], dimension: 3 }\n  a: { secondary: p, dimension: 4 }\n`, 'x.yaml', env)), [
    'x.yaml:6:3: collections.a: duplicate key "a"',
  ]);
  assert.deepEqual(problems(parseTopology(`${head}other: { k: 1, k: 2 }\n`, 'x.yaml', env)), [
    'x.yaml:4:1: other: unknown key "other" (allowed: version, extension_schema, api_roles, write_roles, primary, secondaries, collections)',
    'x.yaml:4:16: duplicate key "k"',
  ]);
});

test('YAML aliases: reuse works, and expansion past the text\'s size (plus an allowance) is one located problem', () => {
  const secondaries = 'secondaries:\n  pod:\n    url: postgres://u:${PRIMARY_PASSWORD}@db.pod/v\n';
  const reused = ok(parseTopology(`${head}${secondaries}collections:\n  a: &c { secondary: pod, dimension: 3, columns: { year: int } }\n  b: *c\n`, 'x.yaml', env));
  assert.deepEqual(reused.collections.map((c) => [c.name, c.dimension, c.columns.map((x) => x.type)]), [['a', 3, ['integer']], ['b', 3, ['integer']]]);
  // 3,000 columns reused by 2,000 collections: 6 million values from 60 kB.
  const columns = Array.from({ length: 3000 }, (_, i) => `k${i}: text`).join(', ');
  const aliases = Array.from({ length: 2000 }, (_, i) => `  c${i}: *q\n`).join('');
  const text = `${head}${secondaries}collections:\n  base: &q { secondary: pod, dimension: 3, index: { method: none }, columns: { ${columns} } }\n${aliases}`;
  const started = performance.now();
  const lines = problems(parseTopology(text, 'x.yaml', env));
  assert.ok(performance.now() - started < 20_000, 'bounded');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^x\.yaml:\d+:8: YAML aliases expand this file too far \(past \d+ values\): write the repeated parts out, or reuse less$/);
});

test('a topology larger than MAX_TOPOLOGY_BYTES is refused before it is parsed, as text or as a file', () => {
  const big = `${head}# ${'x'.repeat(MAX_TOPOLOGY_BYTES)}\n`;
  assert.deepEqual(problems(parseTopology(big, 'x.yaml', env)), ['x.yaml: the topology file is larger than 4 MiB, the most vecscale reads']);
  // Multi-byte characters count as bytes.
  const wide = `${head}# ${'é'.repeat(MAX_TOPOLOGY_BYTES / 2)}\n`;
  assert.equal(problems(parseTopology(wide, 'x.yaml', env)).length, 1);
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-big-'));
  try {
    writeFileSync(join(dir, 't.yaml'), big);
    const r = loadTopology(join(dir, 't.yaml'), env);
    assert.match(r.ok ? '' : formatProblem(r.problems[0]!), /t\.yaml: cannot read the topology file: it is larger than 4 MiB, the most vecscale reads$/);
    const ofDir = loadTopology(dir, env);
    assert.match(ofDir.ok ? '' : formatProblem(ofDir.problems[0]!), /cannot read the topology file: it is a directory, not a regular file$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
