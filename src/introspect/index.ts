import type { Topology } from '../config/types.js';
import { type ConnectOptions, type Db, silentOr } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import { type LiveDatabase, VECS_SCHEMA } from '../model/state.js';
import { matchFunctionName, matchSqlFunctionName, searchFunctionName } from '../query/match-function.js';
import { upsertFunctionName, writeFunctionName } from '../query/write-functions.js';
import { CATALOG_LOCK_TIMEOUT_MS, readCatalog } from './catalog.js';
import { literal } from '../sql/quote.js';
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
        throw (await lockedBy(db, name, err)) ?? silentOr(db, 'reading its catalogs', err) ?? new VecscaleError('database', `reading the catalogs of ${name} failed: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
  const standbys = await replicas;
  return new Map(results.map(([name, l]) => {
    const r = standbys.get(name);
    return [name, r === undefined ? l : { ...l, facts: { ...l.facts, replicas: r } }] as const;
  }));
}

interface Holder {
  relation: string;
  pid: number;
  application_name: string | null;
  state: string | null;
  seconds: number | null;
}

/**
 * A catalog read that waited past lock_timeout (or the statement timeout) while another session held a table
 * exclusively: the holders, named (pid, application, state, how long its transaction is open; never its query, which
 * may carry a secret), as a `lock` error. undefined: no such holder, or the session cannot be asked.
 */
async function lockedBy(db: Db, name: string, err: unknown): Promise<VecscaleError | undefined> {
  const code = (err as { code?: unknown }).code;
  if (code !== '55P03' && code !== '57014') return undefined;
  let held: Holder[];
  try {
    held = (await db.query<Holder>(
      `SELECT l.relation::pg_catalog.regclass::pg_catalog.text AS relation, a.pid, a.application_name, a.state,
              pg_catalog.date_part('epoch', pg_catalog.now() - a.xact_start)::pg_catalog.float8 AS seconds
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
         -- The tables the read opens (for their sizes): the collections' in vecs. A lock on a catalog is another story.
         JOIN pg_catalog.pg_class c ON c.oid = l.relation
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = ${literal(VECS_SCHEMA)}
        WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
        ORDER BY 1, 2 LIMIT 5`,
    )).rows;
  } catch {
    return undefined;
  }
  if (held.length === 0) return undefined;
  const who = (h: Holder) =>
    `${h.relation} by pid ${h.pid}${h.application_name ? ` (${h.application_name})` : ''}` +
    `${h.state ? `, ${h.state}` : ''}${h.seconds === null ? '' : `, its transaction open for ${Math.round(h.seconds)} s`}`;
  const waited = code === '55P03' ? `${CATALOG_LOCK_TIMEOUT_MS / 1000} s` : 'until the statement timeout';
  return new VecscaleError('lock', `${name}: reading its catalogs waited ${waited} for a table another session holds exclusively (ACCESS EXCLUSIVE): ${held.map(who).join('; ')}`, {
    hint: `wait for that transaction to end, or end it on ${name}: SELECT pg_catalog.pg_terminate_backend(${held[0]!.pid})`,
    meta: { database: name, holders: held.map((h) => ({ relation: h.relation, pid: h.pid, applicationName: h.application_name, state: h.state })) },
    cause: err,
  });
}
