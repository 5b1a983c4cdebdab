import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { formatProblem, loadTopology, parseTopology, type ReadSecretFile } from '../../src/config/index.js';
import { MAX_SECRET_BYTES } from '../../src/config/secrets.js';
import type { LoadResult, Topology } from '../../src/config/types.js';
import { parsePgUrl } from '../../src/util/url.js';

const env = { PW: 'env-pw-1', FDW: 'fdw-pw-2' };
const FILE = '/etc/vecscale/topology.yaml';

/** A topology whose primary takes `primary` as extra lines and whose one secondary takes `secondary`. */
const doc = (primary: string, secondary = ''): string =>
  `version: 1\nprimary:\n  url: postgres://postgres@db.primary/postgres\n${primary}secondaries:\n  pod:\n    url: postgres://admin:\${PW}@db.pod/vectors\n${secondary}`;

/** A reader over an in-memory directory; records every path it is asked for. */
function files(contents: Record<string, string>): { read: ReadSecretFile; asked: string[] } {
  const asked: string[] = [];
  const read: ReadSecretFile = (path) => {
    asked.push(path);
    const text = contents[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
  return { read, asked };
}

function ok(r: LoadResult): Topology {
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  return r.topology;
}
const lines = (r: LoadResult): string[] => (r.ok ? r.warnings : r.problems).map(formatProblem);

test('file: a relative path is read next to the topology file, an absolute one as written, ${ENV} works in the path', () => {
  const { read, asked } = files({ '/etc/vecscale/secrets/primary.pw': 's3cret-primary\n', '/run/creds/fdw': 'fdw-from-file', '/run/creds/pod': 'pod-from-file' });
  const text = doc('  password: file:secrets/primary.pw\n', '    fdw_password: file:/run/creds/fdw\n').replace('admin:${PW}@', 'admin@') +
    '  other:\n    url: postgres://admin@db.other/vectors\n    password: file:${CREDENTIALS_DIRECTORY}/pod\n';
  const t = ok(parseTopology(text, FILE, { ...env, CREDENTIALS_DIRECTORY: '/run/creds' }, { readSecretFile: read }));
  assert.deepEqual(asked, ['/etc/vecscale/secrets/primary.pw', '/run/creds/fdw', '/run/creds/pod']);
  assert.equal(parsePgUrl(t.primary.url).password, 's3cret-primary');
  assert.equal(t.secondaries[0]?.fdwPassword, 'fdw-from-file');
  assert.equal(parsePgUrl(t.secondaries[1]?.url ?? '').password, 'pod-from-file');
});

test('file: exactly one trailing newline is dropped, \\n or \\r\\n', () => {
  const secret = (content: string): string | undefined => {
    const { read } = files({ '/etc/vecscale/fdw.pw': content });
    return ok(parseTopology(doc('', '    fdw_password: file:fdw.pw\n'), FILE, env, { readSecretFile: read })).secondaries[0]?.fdwPassword;
  };
  assert.equal(secret('pw-a'), 'pw-a');
  assert.equal(secret('pw-a\n'), 'pw-a');
  assert.equal(secret('pw-a\r\n'), 'pw-a');
  assert.equal(secret('pw-a\n\n'), 'pw-a\n');
  assert.equal(secret(' pw a \n'), ' pw a ');
});

test('file: a missing, unreadable or empty file is an error at the key; nothing else is said about it', () => {
  const text = doc('  password: file:missing.pw\n', '    fdw_password: file:empty.pw\n').replace('admin:${PW}@', 'admin@');
  const { read } = files({ '/etc/vecscale/empty.pw': '\n' });
  assert.deepEqual(lines(parseTopology(text, FILE, env, { readSecretFile: read })).map((l) => l.replace(/^.*topology\.yaml:/, 't.yaml:')), [
    't.yaml:4:13: primary.password: cannot read file:missing.pw: no such file',
    't.yaml:8:19: secondaries.pod.fdw_password: file:empty.pw is empty: write the password in it, or leave fdw_password out',
  ]);
  const denied: ReadSecretFile = () => {
    throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
  };
  assert.match(lines(parseTopology(doc('', '    fdw_password: file:/root/pw\n'), 't.yaml', env, { readSecretFile: denied }))[0] ?? '',
    /secondaries\.pod\.fdw_password: cannot read file:\/root\/pw: permission denied$/);
  assert.match(lines(parseTopology(doc('', '    fdw_password: "file:"\n'), 't.yaml', env))[0] ?? '', /fdw_password: file: needs a path/);
  // A missing variable in the path is reported once, as a missing variable; the file is not read.
  const { read: never, asked } = files({});
  assert.deepEqual(lines(parseTopology(doc('', '    fdw_password: file:${SECRETS}/fdw\n'), 't.yaml', env, { readSecretFile: never })),
    ['t.yaml:7:24: secondaries.pod.fdw_password: missing environment variables: SECRETS (t.yaml:7:24)']);
  assert.deepEqual(asked, []);
});

test('file: loadTopology reads real files relative to the topology, wherever the process runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-secrets-'));
  try {
    writeFileSync(join(dir, 'fdw.pw'), 'real-file-secret\n');
    writeFileSync(join(dir, 'topology.yaml'), doc('', '    fdw_password: file:fdw.pw\n'));
    const t = ok(loadTopology(join(dir, 'topology.yaml'), env));
    assert.equal(t.secondaries[0]?.fdwPassword, 'real-file-secret');
    writeFileSync(join(dir, 'broken.yaml'), doc('', '    fdw_password: file:nope.pw\n'));
    const r = loadTopology(join(dir, 'broken.yaml'), env);
    assert.ok(!r.ok);
    assert.deepEqual(r.problems.map((p) => [p.path, p.line, p.column, p.message]), [['secondaries.pod.fdw_password', 7, 19, 'cannot read file:nope.pw: no such file']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a literal password, in a key or in a URL, is a warning with code literal_secret that never shows it', () => {
  const text = doc('  password: hunter2-primary\n', '    fdw_password: pre-${FDW}\n').replace('admin:${PW}@', 'admin:hunter2-pod@');
  const r = parseTopology(text, 't.yaml', env);
  assert.ok(r.ok, lines(r).join('\n'));
  assert.deepEqual(r.warnings.map((p) => [p.severity, p.code, formatProblem(p)]), [
    ['warning', 'literal_secret', 'warning: t.yaml:4:13: primary.password: literal password in primary.password: use ${ENV_VAR} or file:<path>'],
    ['warning', 'literal_secret', 'warning: t.yaml:7:10: secondaries.pod.url: literal password in secondaries.pod.url: use ${ENV_VAR}'],
    ['warning', 'literal_secret', 'warning: t.yaml:8:19: secondaries.pod.fdw_password: literal password in secondaries.pod.fdw_password: use ${ENV_VAR} or file:<path>'],
  ]);
  assert.ok(!lines(r).join('\n').includes('hunter2'));
  // Pure references (several, or with a default) and file: are not literal.
  const clean = parseTopology(doc('  password: ${PW}${FDW}\n', '    fdw_password: ${NOPE:-fallback}\n').replace('admin:${PW}@', 'admin@'), 't.yaml', env);
  assert.deepEqual(lines(clean), []);
});

test('--strict: literal passwords are errors with the same message; everything else is unchanged', () => {
  const text = doc('  password: hunter2-primary\n');
  const loose = parseTopology(text, 't.yaml', env);
  const strict = parseTopology(text, 't.yaml', env, { strict: true });
  assert.ok(loose.ok && !strict.ok);
  if (!loose.ok || strict.ok) return;
  assert.deepEqual(strict.problems.map((p) => ({ ...p, severity: 'warning' })), loose.warnings);
  assert.deepEqual(strict.problems.map((p) => [p.severity, p.code]), [['error', 'literal_secret']]);
  assert.deepEqual(lines(strict), ['t.yaml:4:13: primary.password: literal password in primary.password: use ${ENV_VAR} or file:<path>']);
  ok(parseTopology(doc('  password: ${PW}\n'), 't.yaml', env, { strict: true }));
  // Other warnings (YAML's own) stay warnings.
  const yaml = parseTopology(`%FOO bar\n---\n${doc('')}`, 't.yaml', env, { strict: true });
  assert.deepEqual(yaml.ok ? yaml.warnings.map((p) => p.severity) : 'not ok', ['warning']);
});

test('loadTopology passes strict on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-strict-'));
  try {
    writeFileSync(join(dir, 'topology.yaml'), doc('', '    fdw_password: literal-fdw\n'));
    assert.equal(loadTopology(join(dir, 'topology.yaml'), env).ok, true);
    assert.equal(loadTopology(join(dir, 'topology.yaml'), env, { strict: true }).ok, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Topology.secrets holds every resolved secret: URL passwords, password keys, fdw_password, file contents', () => {
  const { read } = files({ '/etc/vecscale/primary.pw': 'from-the-file\n' });
  const t = ok(parseTopology(doc('  password: file:primary.pw\n', '    fdw_password: ${FDW}\n'), FILE, env, { readSecretFile: read }));
  assert.deepEqual([...t.secrets].sort(), ['env-pw-1', 'fdw-pw-2', 'from-the-file']);
});

test('a password key goes into the URL userinfo, percent-encoded; the rest of the URL is kept as written', () => {
  const password = 'p@ss:w/rd#?% x[]';
  const text = 'version: 1\nprimary:\n  url: postgres://app.user@db.internal:6543/app?sslmode=require\n  password: ${PW}\n';
  const t = ok(parseTopology(text, 't.yaml', { PW: password }));
  assert.equal(t.primary.url, `postgres://app.user:${encodeURIComponent(password)}@db.internal:6543/app?sslmode=require`);
  const parts = parsePgUrl(t.primary.url);
  assert.deepEqual([parts.user, parts.password, parts.host, parts.port, parts.database, parts.sslmode], ['app.user', password, 'db.internal', 6543, 'app', 'require']);
  assert.deepEqual(t.secrets, [password]);
  // A URL with a user and an empty password (`u:@`) takes the key as well.
  assert.equal(ok(parseTopology(text.replace('app.user@', 'app.user:@'), 't.yaml', { PW: 'x-y' })).primary.url.split('?')[0], 'postgres://app.user:x-y@db.internal:6543/app');
  // A whole URL from the environment is a URL like any other.
  const whole = ok(parseTopology('version: 1\nprimary:\n  url: ${URL}\n  password: ${PW}\n', 't.yaml', { URL: 'postgres://u@h/db', PW: 'a@b' }));
  assert.equal(whole.primary.url, 'postgres://u:a%40b@h/db');
});

test('a password both in the URL and in password: is an error at the key', () => {
  assert.deepEqual(lines(parseTopology(doc('', '    password: ${FDW}\n'), 't.yaml', env)), [
    "t.yaml:7:15: secondaries.pod.password: secondaries.pod.url already has a password: write it in one place, the URL's userinfo or password:",
  ]);
});

test('a password query parameter is an error at the URL, in any case, with or without a value', () => {
  const message = "put the password in ${ENV} in the URL's userinfo or in password:, never in URL parameters — they become postgres_fdw server options, which every role can read";
  for (const query of ['?password=${PW}', '?sslmode=require&password=literal', '?PassWord=x', '?password']) {
    const text = `version: 1\nprimary:\n  url: postgres://u@h/db${query}\n`;
    const r = parseTopology(text, 't.yaml', env);
    assert.deepEqual(r.ok ? [] : r.problems.map((p) => [p.path, p.line, p.column, p.message]), [['primary.url', 3, 8, message]], query);
    assert.ok(!lines(r).join('\n').includes('env-pw-1'));
  }
  ok(parseTopology('version: 1\nprimary:\n  url: postgres://u@h/db?sslmode=require\n', 't.yaml', env));
});

test('secrets must be strings, and a wrongly typed one is not echoed', () => {
  assert.deepEqual(lines(parseTopology(doc('  password: 12345678\n', '    fdw_password: { a: 1 }\n'), 't.yaml', env)), [
    't.yaml:4:13: primary.password: must be a string: ${ENV_VAR} or file:<path> (got a number)',
    't.yaml:8:19: secondaries.pod.fdw_password: must be a string: ${ENV_VAR} or file:<path> (got a mapping)',
  ]);
});

test('an empty secret is an error; a missing variable is reported once', () => {
  assert.deepEqual(lines(parseTopology(doc('  password: ${EMPTY}\n'), 't.yaml', { ...env, EMPTY: '' })), [
    't.yaml:4:13: primary.password: is empty: set it, or leave password out',
  ]);
  assert.deepEqual(lines(parseTopology(doc('', '    fdw_password: ${UNSET}\n'), 't.yaml', env)), [
    't.yaml:7:19: secondaries.pod.fdw_password: missing environment variables: UNSET (t.yaml:7:19)',
  ]);
});

test('protect: true or false (default false); anything else is a located type error', () => {
  const protect = (value: string): LoadResult =>
    parseTopology(`${doc('')}collections:\n  docs:\n    secondary: pod\n    dimension: 3\n${value}`, 't.yaml', env);
  assert.deepEqual([ok(protect('    protect: true\n')), ok(protect('    protect: false\n')), ok(protect(''))].map((t) => t.collections[0]?.protect), [true, false, false]);
  assert.deepEqual(ok(protect('    protect: True\n')).collections[0]?.protect, true);
  assert.deepEqual(['"yes"', 'yes', '1', '"true"', '[true]'].map((v) => lines(protect(`    protect: ${v}\n`))[0]), [
    't.yaml:11:14: collections.docs.protect: must be true or false (got "yes")',
    't.yaml:11:14: collections.docs.protect: must be true or false (got "yes")',
    't.yaml:11:14: collections.docs.protect: must be true or false (got 1)',
    't.yaml:11:14: collections.docs.protect: must be true or false (got "true")',
    't.yaml:11:14: collections.docs.protect: must be true or false (got a list)',
  ]);
});

test('fdw_user: default vecscale_fdw; reserved names with their reason; never the URL user', () => {
  assert.equal(ok(parseTopology(doc(''), 't.yaml', env)).secondaries[0]?.fdwUser, 'vecscale_fdw');
  assert.equal(ok(parseTopology(doc('', '    fdw_user: pod_reader\n'), 't.yaml', env)).secondaries[0]?.fdwUser, 'pod_reader');
  const one = (user: string): string | undefined => lines(parseTopology(doc('', `    fdw_user: ${user}\n`), 't.yaml', env))[0];
  assert.equal(one('postgres'), 't.yaml:7:15: secondaries.pod.fdw_user: "postgres" is reserved: the administrator cannot be the wrapper role: vecscale sets its password and limits its privileges');
  assert.equal(one('public'), 't.yaml:7:15: secondaries.pod.fdw_user: "public" is reserved: PUBLIC is every role, not a role one can log in as');
  assert.equal(one('pg_read_all_data'), 't.yaml:7:15: secondaries.pod.fdw_user: "pg_read_all_data" is reserved: pg_* roles are PostgreSQL\'s predefined roles');
  assert.match(one('Bad-Name') ?? '', /fdw_user: must be a name/);
  assert.equal(one('admin'), 't.yaml:7:15: secondaries.pod.fdw_user: "admin" is the user of secondaries.pod.url: the wrapper needs a role of its own (vecscale sets its password and privileges), so choose another fdw_user');
});

test('secondaries on one cluster share the wrapper role: the same fdw_password or none', () => {
  const two = (a: string, b: string, userB = ''): string[] => lines(parseTopology(`${doc('')}  pod_b:\n    url: postgres://admin:\${PW}@DB.pod:5432/other\n${b}${userB}`.replace('    url: postgres://admin:${PW}@db.pod/vectors\n', `    url: postgres://admin:\${PW}@db.pod/vectors\n${a}`), 't.yaml', env));
  assert.deepEqual(two('', ''), []);
  assert.deepEqual(two('    fdw_password: ${FDW}\n', '    fdw_password: ${FDW}\n'), []);
  assert.deepEqual(two('    fdw_password: ${FDW}\n', '    fdw_password: ${PW}\n', '    fdw_user: other_role\n'), []);
  assert.deepEqual(two('    fdw_password: ${FDW}\n', ''), [
    't.yaml:9:5: secondaries.pod_b.fdw_password: shares the role "vecscale_fdw" with secondaries.pod (both on db.pod:5432; roles are cluster-wide): give both the same fdw_password, or leave it out of both',
  ]);
  assert.deepEqual(two('', '    fdw_password: ${FDW}\n'), [
    't.yaml:9:19: secondaries.pod_b.fdw_password: shares the role "vecscale_fdw" with secondaries.pod (both on db.pod:5432; roles are cluster-wide): give both the same fdw_password, or leave it out of both',
  ]);
});

test('a password with an unencoded / ? or # in a URL is named as such, and none of it is shown', () => {
  const r = parseTopology('version: 1\nprimary:\n  url: postgres://u:1234/x-secret@h/db\n', 't.yaml', env);
  assert.deepEqual(lines(r), [
    't.yaml:3:8: primary.url: its user or password holds an unencoded / ? or # (the URL ends its host there): percent-encode it, or use ${ENV} or password:',
  ]);
});

test('file: secrets are regular files of at most 64 KiB, read by the default reader without blocking', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-secret-kinds-'));
  try {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(join(dir, 'big'), 'x'.repeat(MAX_SECRET_BYTES + 1));
    writeFileSync(join(dir, 'max'), 'y'.repeat(MAX_SECRET_BYTES));
    writeFileSync(join(dir, 'latin1'), Buffer.from([0x70, 0xe9, 0x0a]));
    writeFileSync(join(dir, 'bom'), '\ufeffbom-secret\n');
    const problem = (path: string): string[] => lines(parseTopology(doc(`  password: file:${path}\n`), join(dir, 't.yaml'), env));
    const started = performance.now();
    assert.deepEqual(problem('/dev/zero'), [`${relative(process.cwd(), join(dir, 't.yaml'))}:4:13: primary.password: cannot read file:/dev/zero: it is a character device, not a regular file`]);
    assert.match(problem('fifo')[0]!, /primary\.password: cannot read file:fifo: it is a named pipe \(FIFO\), not a regular file$/);
    assert.ok(performance.now() - started < 5_000, 'a FIFO without a writer is not waited on');
    assert.match(problem('.')[0]!, /cannot read file:\.: it is a directory, not a regular file$/);
    assert.match(problem('big')[0]!, /cannot read file:big: it is larger than 64 KiB, the most vecscale reads$/);
    assert.match(problem('latin1')[0]!, /cannot read file:latin1: it is not UTF-8 text$/);
    const t = ok(parseTopology(doc('  password: file:max\n', '    fdw_password: file:bom\n'), join(dir, 't.yaml'), env));
    assert.equal(parsePgUrl(t.primary.url).password, 'y'.repeat(MAX_SECRET_BYTES));
    assert.equal(t.secondaries[0]!.fdwPassword, 'bom-secret');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
