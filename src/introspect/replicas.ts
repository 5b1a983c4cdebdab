/**
 * The standbys a topology names (secondaries.<s>.replicas): is each one really a physical standby of its secondary?
 * Read-only, one short session per standby (vecscale never writes to a replica), concurrently with the catalogs.
 * `plan` turns what is found into blockers and notes (src/plan/planner.ts, replicaProblems).
 */
import type { Topology } from '../config/types.js';
import { close, connect, type ConnectOptions, type Db } from '../db/connect.js';
import type { ReplicaFact } from '../model/state.js';
import { redactUrl } from '../util/url.js';

const IDENTITY = 'SELECT pg_catalog.pg_is_in_recovery() AS standby, (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s)::pg_catalog.text AS system';

async function identity(db: Db): Promise<{ standby: boolean; system: string }> {
  const r = await db.query<{ standby: boolean; system: string }>(IDENTITY);
  return r.rows[0]!;
}

/** Per secondary with standbys, what each standby is (in topology order); secondaries without any are absent. */
export async function inspectReplicas(topology: Topology, dbs: ReadonlyMap<string, Db>, opts: ConnectOptions = {}): Promise<Map<string, ReplicaFact[]>> {
  const out = new Map<string, ReplicaFact[]>();
  await Promise.all(topology.secondaries.filter((s) => s.replicas.length > 0).map(async (s) => {
    const pod = dbs.get(s.name);
    let podSystem: string | undefined;
    try {
      if (pod) podSystem = (await identity(pod)).system;
    } catch {
      podSystem = undefined; // the catalog read reports a secondary that cannot answer
    }
    const facts = await Promise.all(s.replicas.map(async (url, index): Promise<ReplicaFact> => {
      const shown = redactUrl(url);
      let db: Db | undefined;
      try {
        db = await connect({ database: `${s.name} replica ${index + 1}`, url }, { ...opts, readOnly: true, applicationName: 'vecscale replica check' });
        const r = await identity(db);
        if (!r.standby) return { index, url: shown, status: 'not_standby', system: r.system };
        if (podSystem !== undefined && r.system !== podSystem) return { index, url: shown, status: 'other_system', system: r.system, secondarySystem: podSystem };
        return { index, url: shown, status: 'standby', system: r.system };
      } catch (err) {
        return { index, url: shown, status: 'unreachable', message: (err as Error).message.split('\n')[0] ?? String(err) };
      } finally {
        if (db) await close(db);
      }
    }));
    out.set(s.name, facts);
  }));
  return out;
}
