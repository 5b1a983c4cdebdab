import type { Topology } from '../config/types.js';
import { type ConnectOptions, type Db, silentOr } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import type { LiveDatabase } from '../model/state.js';
import { matchFunctionName, matchSqlFunctionName, searchFunctionName } from '../query/match-function.js';
import { upsertFunctionName, writeFunctionName } from '../query/write-functions.js';
import { readCatalog } from './catalog.js';
import { partsOf } from '../model/placement.js';
import { UPSERT_ROW_FUNCTION } from '../query/sharded.js';
import { toState } from './map.js';
import { roleHome } from '../model/fdw-role.js';
import { inspectReplicas } from './replicas.js';

/**
 * Introspects every database of the topology (concurrently), keyed by database name; a secondary's facts say what
 * each of its standbys is (connected to with `replicaConnect`, read-only).
 */
export async function introspectAll(topology: Topology, dbs: ReadonlyMap<string, Db>, replicaConnect: ConnectOptions = {}): Promise<Map<string, LiveDatabase>> {
  const replicas = inspectReplicas(topology, dbs, replicaConnect);
  const scope = {
    relationNames: topology.collections.flatMap((c) => [c.name, ...partsOf(c).map((p) => p.table)]),
    functionNames: [
      'filter_sql',
      UPSERT_ROW_FUNCTION,
      ...topology.collections.flatMap((c) => [
        matchFunctionName(c.name),
        matchSqlFunctionName(c.name),
        searchFunctionName(c.name),
        writeFunctionName(c.name),
        upsertFunctionName(c.name),
      ]),
    ],
    grantees: [...topology.apiRoles, ...topology.writeRoles],
  };
  const names = ['primary', ...topology.secondaries.map((s) => s.name)];
  const results = await Promise.all(
    names.map(async (name) => {
      const db = dbs.get(name);
      if (!db) throw new Error(`no connection for ${name}`);
      const s = topology.secondaries.find((x) => x.name === name);
      const role = s ? { name: s.fdwUser, home: roleHome(topology, s) === s.name } : undefined;
      try {
        const raw = await readCatalog(db, { ...scope, ...(role ? { role } : {}) });
        return [name, toState(name, name === 'primary' ? 'primary' : 'secondary', raw, { roleHome: role?.home ?? false })] as const;
      } catch (err) {
        throw silentOr(db, 'reading its catalogs', err) ?? new VecscaleError('database', `reading the catalogs of ${name} failed: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
  const standbys = await replicas;
  return new Map(results.map(([name, l]) => {
    const r = standbys.get(name);
    return [name, r === undefined ? l : { ...l, facts: { ...l.facts, replicas: r } }] as const;
  }));
}
