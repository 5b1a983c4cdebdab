import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { vecscale } from '../cli.js';
import { freshDatabases, sql, testClusters } from '../harness.js';

test('the test clusters are real PostgreSQL with vector and postgres_fdw available', async () => {
  const clusters = await testClusters();
  assert.ok(Object.keys(clusters.secondaries).length >= 2);
  for (const url of [clusters.primary, ...Object.values(clusters.secondaries)]) {
    const rows = await sql<{ name: string }>(
      url,
      "SELECT name FROM pg_available_extensions WHERE name IN ('vector', 'postgres_fdw') ORDER BY name",
    );
    assert.deepEqual(rows.map((r) => r.name), ['postgres_fdw', 'vector']);
  }
});

test('fresh databases are isolated and can load both extensions', async () => {
  const dbs = await freshDatabases('harness');
  await sql(dbs.primary, 'CREATE EXTENSION vector');
  await sql(dbs.primary, 'CREATE EXTENSION postgres_fdw');
  const [row] = await sql<{ d: number }>(dbs.primary, "SELECT '[1,0]'::vector <-> '[0,0]'::vector AS d");
  assert.equal(row?.d, 1);
});

test('sandbox up / status / down / down --purge through the CLI, in a folder of its own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-sb-'));
  const env = { VECSCALE_SANDBOX_DIR: dir, VECSCALE_SANDBOX_PORT: '56400' };
  after(async () => {
    await vecscale(['sandbox', 'down', '--purge'], { env });
    rmSync(dir, { recursive: true, force: true });
  });

  const up = await vecscale(['sandbox', 'up', '--secondaries', '1', '--fast', '--json'], { env });
  assert.equal(up.code, 0, up.stderr);
  const urls = JSON.parse(up.stdout) as { primary: string; secondaries: Record<string, string> };
  assert.deepEqual(Object.keys(urls.secondaries), ['pod_1']);
  // SQLAlchemy, and so vecs.create_client(), refuses postgres:// (no dialect of that name).
  for (const url of [urls.primary, ...Object.values(urls.secondaries)]) assert.match(url, /^postgresql:\/\//);
  await sql(urls.primary, 'SELECT 1');
  await sql(urls.secondaries.pod_1!, 'SELECT 1');
  assert.equal(statSync(join(dir, 'sandbox.json')).mode & 0o777, 0o600);

  const again = await vecscale(['sandbox', 'up', '--json'], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), urls, 'up is idempotent and keeps ports');

  const status = await vecscale(['sandbox', 'status'], { env });
  assert.equal(status.code, 0);
  assert.match(status.stderr, /primary\s+primary\s+running/);
  assert.doesNotMatch(status.stderr, /postgres:postgres@/, 'human output shows URLs without password');

  const down = await vecscale(['sandbox', 'down'], { env });
  assert.equal(down.code, 0, down.stderr);
  const stopped = await vecscale(['sandbox', 'status', '--json'], { env });
  const list = JSON.parse(stopped.stdout) as Array<{ name: string; status: string }>;
  assert.deepEqual(list.map((c) => [c.name, c.status]), [['primary', 'stopped'], ['pod_1', 'stopped']]);
  await assert.rejects(sql(urls.primary, 'SELECT 1'));

  const purge = await vecscale(['sandbox', 'down', '--purge'], { env });
  assert.equal(purge.code, 0);
  const none = await vecscale(['sandbox', 'status'], { env });
  assert.match(none.stderr, /No sandbox here/);
});

test('two concurrent `sandbox up` runs agree and leave one sandbox', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-sb-'));
  const env = { VECSCALE_SANDBOX_DIR: dir, VECSCALE_SANDBOX_PORT: '56500' };
  after(async () => {
    await vecscale(['sandbox', 'down', '--purge'], { env });
    rmSync(dir, { recursive: true, force: true });
  });
  const [a, b] = await Promise.all([
    vecscale(['sandbox', 'up', '--secondaries', '1', '--fast', '--json'], { env }),
    vecscale(['sandbox', 'up', '--secondaries', '1', '--fast', '--json'], { env }),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(JSON.parse(a.stdout), JSON.parse(b.stdout));
});
