import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vecscale } from '../cli.js';

test('--help lists the commands and exits 0', async () => {
  const r = await vecscale(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /sandbox/);
});

test('a bad flag value is a usage error: exit 6, a plain message, no stack trace', async () => {
  const r = await vecscale(['sandbox', 'up', '--secondaries', 'many']);
  assert.equal(r.code, 6);
  assert.match(r.stderr, /expected a whole number 1–16, got "many"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('an unknown command exits 6', async () => {
  const r = await vecscale(['frobnicate']);
  assert.equal(r.code, 6);
  assert.match(r.stderr, /unknown command/);
});

test('a missing PostgreSQL names the setup script, exit 1, no stack trace', async () => {
  const r = await vecscale(['sandbox', 'up', '--json'], { env: { PG_BIN: '/nonexistent/bin' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /PG_BIN=\/nonexistent\/bin holds no initdb/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const doc = JSON.parse(r.stdout) as { error: { code: string } };
  assert.equal(doc.error.code, 'environment');
});
