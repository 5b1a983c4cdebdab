/**
 * Hostile or broken input through the real CLI: secret files that never end or block, topology files that are too
 * large or expand through aliases, keys that carry terminal escape sequences, URLs that would mean two things.
 * Every one is exit 6 with a located message, promptly; nothing raw reaches the terminal. No database needed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CliResult, vecscale } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vecscale-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Generous: a hang is what is tested, not speed. */
const PROMPTLY_MS = 10_000;

const HEAD = 'version: 1\nprimary:\n  url: postgres://postgres@db.primary/postgres\n';

async function timed(args: readonly string[]): Promise<CliResult & { ms: number }> {
  const started = performance.now();
  const r = await vecscale(args, { cwd: dir });
  return { ...r, ms: performance.now() - started };
}

function file(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

test('password: file:/dev/zero and a FIFO without a writer: exit 6 at once, located, in validate and plan', async () => {
  execFileSync('mkfifo', [join(dir, 'pw.fifo')]);
  const cases: Array<[string, RegExp]> = [
    ['/dev/zero', /^error: zero\.yaml:4:13: primary\.password: cannot read file:\/dev\/zero: it is a character device, not a regular file$/m],
    ['pw.fifo', /^error: fifo\.yaml:4:13: primary\.password: cannot read file:pw\.fifo: it is a named pipe \(FIFO\), not a regular file$/m],
  ];
  for (const [secret, message] of cases) {
    const name = secret === '/dev/zero' ? 'zero.yaml' : 'fifo.yaml';
    file(name, `${HEAD}  password: file:${secret}\n`);
    for (const command of ['validate', 'plan']) {
      const r = await timed([command, name]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, message);
      assert.ok(r.ms < PROMPTLY_MS, `${command} ${secret} took ${r.ms} ms`);
    }
  }
});

test('the topology itself: a FIFO, a device, a file over 4 MiB: exit 6 without reading it', async () => {
  execFileSync('mkfifo', [join(dir, 'topology.fifo')]);
  file('huge.yaml', `${HEAD}# ${'x'.repeat(4 * 1024 * 1024)}\n`);
  const cases: Array<[string, RegExp]> = [
    ['topology.fifo', /cannot read the topology file: it is a named pipe \(FIFO\), not a regular file/],
    ['/dev/zero', /cannot read the topology file: it is a character device, not a regular file/],
    ['huge.yaml', /^error: huge\.yaml: cannot read the topology file: it is larger than 4 MiB, the most vecscale reads$/m],
  ];
  for (const [name, message] of cases) {
    const r = await timed(['validate', name]);
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, message);
    assert.ok(r.ms < PROMPTLY_MS, `${name} took ${r.ms} ms`);
  }
});

test('validation is linear: 100,000 collections in just under 4 MiB validate in bounded time (was 254 s)', async () => {
  const lines = Array.from({ length: 100_000 }, (_, i) => `  c${i}: { secondary: p, dimension: 3 }\n`);
  const text = `version: 1\nprimary: { url: "postgres://u@h/p" }\nsecondaries: { p: { url: "postgres://u@h2/s" } }\ncollections:\n${lines.join('')}`;
  assert.ok(Buffer.byteLength(text) <= 4 * 1024 * 1024);
  file('many.yaml', text);
  const r = await timed(['validate', 'many.yaml']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /many\.yaml is valid: 1 secondaries, 100000 collections\./);
  assert.ok(r.ms < 60_000, `took ${r.ms} ms`);
});

test('YAML aliases that expand a small file enormously: exit 6 at the alias, promptly (was 283 s)', async () => {
  const columns = Array.from({ length: 3000 }, (_, i) => `k${i}: text`).join(', ');
  const aliases = Array.from({ length: 20_000 }, (_, i) => `  c${i}: *q\n`).join('');
  file('laughs.yaml', `${HEAD}secondaries: { pod: { url: "postgres://u@h2/db" } }\ncollections:\n  base: &q { secondary: pod, dimension: 3, index: { method: none }, columns: { ${columns} } }\n${aliases}`);
  const r = await timed(['validate', 'laughs.yaml']);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /^error: laughs\.yaml:\d+:\d+: YAML aliases expand this file too far/m);
  assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
});

// ESC [31m, ESC ] 0 ; … BEL (window title), CSI as one C1 character, DEL, a right-to-left override.
const HOSTILE_KEY = '\x1b[31mred\x1b]0;title\x07\u009b2J\x7f\u202eevil';
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

const escapeYaml = (): string =>
  file('escape.yaml', `${HEAD}${JSON.stringify(HOSTILE_KEY)}: 1\ncollections:\n  ${JSON.stringify(`x${HOSTILE_KEY}`)}: { secondary: p, dimension: 3 }\n`);

test('keys with terminal escape sequences are printed escaped, in text and in JSON', async () => {
  escapeYaml();
  const text = await vecscale(['validate', 'escape.yaml'], { cwd: dir });
  assert.equal(text.code, 6);
  assert.doesNotMatch(text.stderr, RAW_CONTROL);
  assert.ok(text.stderr.includes('unknown key "\\x1b[31mred\\x1b]0;title\\x07\\u009b2J\\x7f\\u202eevil"'), text.stderr);
  assert.ok(text.stderr.includes('collections.x\\x1b[31mred'), text.stderr);

  const json = await vecscale(['validate', 'escape.yaml', '--json'], { cwd: dir });
  assert.equal(json.code, 6);
  assert.doesNotMatch(json.stdout, RAW_CONTROL);
  assert.doesNotMatch(json.stderr, RAW_CONTROL);
  const doc = JSON.parse(json.stdout) as { problems: { path: string; message: string }[] };
  // The same characters, JSON-escaped: a JSON reader gets the key back as written.
  assert.ok(doc.problems.some((p) => p.path === HOSTILE_KEY), json.stdout);
  assert.ok(json.stdout.includes('\\u001b[31mred') && json.stdout.includes('\\u009b2J') && json.stdout.includes('\\u202eevil'));
});

test('arguments echoed by the command line parser are escaped too', async () => {
  const option = await vecscale(['validate', `--x${HOSTILE_KEY}`], { cwd: dir });
  assert.equal(option.code, 6);
  assert.match(option.stderr, /unknown option '--x\\x1b\[31mred/);
  assert.doesNotMatch(option.stderr, RAW_CONTROL);
  const value = await vecscale(['sandbox', 'up', '--secondaries', HOSTILE_KEY], { cwd: dir });
  assert.equal(value.code, 6);
  assert.match(value.stderr, /expected a whole number 1–16, got "\\x1b\[31mred/);
  assert.doesNotMatch(value.stderr, RAW_CONTROL);
});

test('on a terminal, colour is vecscale\'s own: a key\'s escape sequence is still escaped', { skip: !hasScript() && 'no script(1) for a pseudo-terminal' }, () => {
  escapeYaml();
  // script(1) gives the CLI a terminal, so colour is on.
  const r = spawnSync('script', ['-qec', `${process.execPath} ${join(import.meta.dirname, '..', '..', 'bin', 'vecscale')} validate escape.yaml`, '/dev/null'], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' },
    encoding: 'utf8',
  });
  const out = r.stdout.replace(/\r/g, '');
  // vecscale's red "error:" label, and nothing but SGR sequences of its own styles.
  assert.ok(out.includes('\x1b[31merror:\x1b[39m'), JSON.stringify(out));
  const sequences = out.match(/\x1b\[[0-9;]*[A-Za-z]/g) ?? [];
  assert.deepEqual([...new Set(sequences)].sort(), ['\x1b[31m', '\x1b[39m']);
  assert.ok(out.includes('unknown key "\\x1b[31mred'), JSON.stringify(out));
});

function hasScript(): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
}

test('URL parameters that would mean two things, and a transaction pooler: exit 6 naming them', async () => {
  const cases: Array<[string, RegExp]> = [
    ['postgres://postgres@db.pod/v?port=5433', /^error: url\.yaml:6:10: secondaries\.pod\.url: has parameter port: write it in the URL itself/m],
    ['postgres://postgres@db.pod/v?options=-c%20default_transaction_read_only%3Doff', /secondaries\.pod\.url: has parameter options: /],
    ['postgres://postgres@db.pod/v?application_name=x', /secondaries\.pod\.url: has parameter application_name: /],
    ['postgres://postgres@db.pod/v?sslmode=strict', /secondaries\.pod\.url: has sslmode="strict"; sslmode is one of disable, allow, prefer, require, verify-ca, verify-full/],
    ['postgres://postgres.abcdefghij@aws-0-eu-west-1.pooler.supabase.com:6543/postgres', /secondaries\.pod\.url: goes through Supabase's transaction pooler \(port 6543\).*db\.abcdefghij\.supabase\.co:5432/],
  ];
  for (const [url, message] of cases) {
    file('url.yaml', `${HEAD}secondaries:\n  pod:\n    url: ${url}\ncollections: {}\n`);
    const r = await vecscale(['validate', 'url.yaml'], { cwd: dir });
    assert.equal(r.code, 6, `${url}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  file('url.yaml', `${HEAD}secondaries:\n  pod:\n    url: postgres://postgres@db.pod/v?sslmode=verify-full\ncollections: {}\n`);
  assert.equal((await vecscale(['validate', 'url.yaml'], { cwd: dir })).code, 0);
});
