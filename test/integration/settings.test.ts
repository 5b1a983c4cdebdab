/** Per-collection query settings reach the secondary's session: one server per settings profile. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply } from '../../src/api.js';
import { serverFor } from '../../src/desired/index.js';
import { freshDatabases, sql } from '../harness.js';
import { fdwUserFor, topologyFile } from '../topology-files.js';

const dbs = await freshDatabases('settings');
const podA = Object.values(dbs.secondaries)[0]!;
const file = topologyFile(dbs, `  plain:
    secondary: pod_a
    dimension: 3
  tuned:
    secondary: pod_a
    dimension: 3
    index: { method: ivfflat, lists: 4 }
    query: { ef_search: 250, iterative_scan: strict_order, probes: 3 }
`);
await apply(file.load(), { approve: async () => true });

test('each settings profile has its own server; the settings are what the secondary session sees', async () => {
  const t = file.load();
  const tuned = t.collections.find((c) => c.name === 'tuned')!;
  const plain = t.collections.find((c) => c.name === 'plain')!;
  assert.equal(serverFor('pod_a', plain.query), 'pod_a');
  const tunedServer = serverFor('pod_a', tuned.query);
  assert.match(tunedServer, /^pod_a_q[0-9a-f]{7}$/);
  const [ft] = await sql(dbs.primary, `SELECT s.srvname FROM pg_foreign_table f JOIN pg_foreign_server s ON s.oid = f.ftserver WHERE f.ftrelid = 'vecscale_remote.tuned'::regclass`);
  assert.equal(ft!.srvname, tunedServer);

  // A probe on the secondary, read through each server: what the remote session runs with.
  await sql(podA, `CREATE VIEW public.settings_probe AS SELECT current_setting('hnsw.ef_search', true) AS ef, current_setting('hnsw.iterative_scan', true) AS iter,
    current_setting('ivfflat.probes', true) AS probes, current_setting('cursor_tuple_fraction') AS ctf`);
  // The wrappers connect as the wrapper role, which may read only what vecscale grants it.
  await sql(podA, `GRANT SELECT ON public.settings_probe TO "${fdwUserFor(dbs)}"`);
  // pgvector registers its settings when loaded; the probe loads it first.
  await sql(podA, `ALTER DATABASE "${dbs.name}" SET session_preload_libraries = 'vector'`);
  for (const [server, expected] of [
    ['pod_a', { ef: '100', iter: 'relaxed_order', probes: '10', ctf: '1' }],
    [tunedServer, { ef: '250', iter: 'strict_order', probes: '3', ctf: '1' }],
  ] as const) {
    await sql(dbs.primary, `CREATE FOREIGN TABLE public."probe_${server}" (ef text, iter text, probes text, ctf text) SERVER "${server}" OPTIONS (schema_name 'public', table_name 'settings_probe')`);
    assert.deepEqual((await sql(dbs.primary, `SELECT * FROM public."probe_${server}"`))[0], expected, server);
    // match_* reaches the secondary through dblink, connected from the same server: the same settings apply.
    const [viaDblink] = await sql(dbs.primary, `SELECT * FROM vecscale.dblink('${server}', 'SELECT * FROM public.settings_probe') AS t(ef text, iter text, probes text, ctf text)`);
    assert.deepEqual(viaDblink, expected, `${server} via dblink`);
  }
});
