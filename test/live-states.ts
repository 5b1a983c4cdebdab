/** Live database states for planner tests, without a database: empty ones, and what a perfect apply leaves. */
import { buildDesired } from '../src/desired/index.js';
import type { DbObject, LiveDatabase, LiveFacts } from '../src/model/state.js';
import { topology } from './topologies.js';

export function facts(database: string, over: Partial<LiveFacts> = {}): LiveFacts {
  return { database, currentUser: 'postgres', serverVersion: 150000, vectorSchema: undefined, nonEmpty: new Set(), ...over };
}

export const empty = (database: string, role: 'primary' | 'secondary'): LiveDatabase => ({
  state: { database, role, objects: new Map() },
  facts: facts(database),
});

export function emptyLive(names = ['pod_text', 'pod_img']): Map<string, LiveDatabase> {
  return new Map([['primary', empty('primary', 'primary')], ...names.map((n) => [n, empty(n, 'secondary')] as const)]);
}

/** Everything is owned by the role vecscale applies as (facts.currentUser). */
export const ownersOf = (t: ReturnType<typeof topology>) => new Map(['primary', ...t.secondaries.map((s) => s.name)].map((db) => [db, 'postgres']));

/** The live state after a perfect apply: desired, as introspection would read it back. */
export function converged(t = topology()): Map<string, LiveDatabase> {
  const desired = buildDesired(t, { vectorSchema: 'public', dblinkSchema: 'vecscale', owners: ownersOf(t) });
  return new Map(
    desired.map((d) => {
      const objects = new Map<string, DbObject>(
        [...d.objects].map(([k, o]) => {
          const { dependsOn: _d, ...rest } = o as DbObject & { query?: string; passwordRef?: string };
          const { query: _q, passwordRef: _p, setPassword: _s, build: _b, expression: _e, ...bare } = rest as typeof rest & { query?: string; passwordRef?: string; setPassword?: boolean; build?: unknown; expression?: string };
          // Introspection reads a mapping's password back as a fingerprint: the same one on every mapping of a role.
          if (bare.kind === 'user_mapping') return [k, { ...bare, options: { ...bare.options, password: 'hmac:live' } } as DbObject];
          return [k, bare as DbObject];
        }),
      );
      return [d.database, { state: { ...d, objects }, facts: facts(d.database, { vectorSchema: 'public' }) }];
    }),
  );
}

/** Replication facts of a database ready for a move's logical replication. */
export const logicalReplication: NonNullable<LiveFacts['replication']> = {
  walLevel: 'logical', superuser: true, replication: true, maxReplicationSlots: 10, usedReplicationSlots: 0, maxWalSenders: 10,
  usedWalSenders: 0, maxLogicalReplicationWorkers: 4, enabledSubscriptions: 0, slots: [], publications: [], subscriptions: [],
};
