/**
 * Where a collection's rows live now, and what a move has to carry where. Pure.
 *
 * The truth about "now" is the primary: its wrappers point at the tables applications read and write, and the
 * primary switches them in one transaction at a move's cutover. So the live layout is read from the primary's
 * foreign tables, never guessed from which pod holds a table of the collection (an interrupted move leaves copies).
 */
import type { CollectionSpec, Topology } from '../config/types.js';
import { type Part, partitionTable, partsOf } from '../model/placement.js';
import { type DatabaseState, keys, REMOTE_SCHEMA, VECS_SCHEMA, WRITE_SCHEMA } from '../model/state.js';

/**
 * The secondary a foreign server of vecscale's reaches: `<secondary>`, `<secondary>_q<hash>` or its write server
 * `<secondary>_w<hash>` (src/desired/servers.ts).
 */
export function secondaryOfServer(topology: Topology, server: string): string | undefined {
  return topology.secondaries.find((s) => server === s.name || new RegExp(`^${s.name.slice(0, 53)}_[qw][0-9a-f]+$`).test(server))?.name;
}

/**
 * The tables the primary's wrappers of `collection` point at, or undefined when the primary has no wrappers for it
 * (a first apply) or they point at a secondary the topology no longer names.
 */
export function liveLayout(topology: Topology, primary: DatabaseState, collection: string): Part[] | undefined {
  const write = primary.objects.get(keys.relation(WRITE_SCHEMA, collection));
  if (write?.kind === 'foreign_table' && write.managed && write.partition === undefined) {
    const secondary = secondaryOfServer(topology, write.server);
    const table = write.options.table_name ?? collection;
    return secondary && table === collection ? [{ table, secondary }] : undefined;
  }
  const remote = primary.objects.get(keys.relation(REMOTE_SCHEMA, collection));
  if (remote?.kind !== 'table' || !remote.managed || remote.partitions === undefined) return undefined;
  const parts: Part[] = [];
  for (const qualifiedName of remote.partitions) {
    const name = qualifiedName.slice(`${REMOTE_SCHEMA}.`.length);
    const p = primary.objects.get(keys.relation(REMOTE_SCHEMA, name));
    if (p?.kind !== 'foreign_table' || p.partition === undefined) return undefined;
    const secondary = secondaryOfServer(topology, p.server);
    const { modulus, remainder } = p.partition;
    if (!secondary || p.options.table_name !== partitionTable(collection, remainder, modulus)) return undefined;
    parts.push({ table: p.options.table_name, secondary, modulus, remainder });
  }
  const modulus = parts[0]?.modulus;
  // A layout vecscale made: one modulus, every remainder once.
  if (modulus === undefined || parts.length !== modulus || parts.some((p) => p.modulus !== modulus)) return undefined;
  return parts.sort((a, b) => a.remainder! - b.remainder!);
}

const partKey = (p: Part): string => `${p.secondary}/${p.table}`;

export const sameLayout = (a: readonly Part[], b: readonly Part[]): boolean =>
  a.length === b.length && a.map(partKey).sort().join() === b.map(partKey).sort().join();

/** The collection spec placed as `parts` says (round-robin over its shards), or undefined if no spec can say it. */
export function specWithLayout(c: CollectionSpec, parts: readonly Part[]): CollectionSpec | undefined {
  const first = parts[0];
  if (!first) return undefined;
  const { name, dimension, metric, index, query, columns, protect, text, access } = c;
  const base = { name, dimension, metric, index, query, columns, protect, ...(text ? { text } : {}), ...(access ? { access } : {}) };
  if (parts.length === 1 && first.modulus === undefined) return { ...base, secondary: first.secondary };
  const shards: string[] = [];
  for (const p of parts) if (!shards.includes(p.secondary)) shards.push(p.secondary);
  if (parts.some((p, i) => p.secondary !== shards[i % shards.length])) return undefined;
  return { ...base, shards, partitions: parts.length };
}

/** One stream of rows: from a live table to a new one, all its rows or (a split) those whose hash says so. */
export interface Flow {
  readonly source: Part;
  readonly target: Part;
  /** across databases: logical replication; inside one: a change-log trigger, a copy and resyncs (logical replication cannot). */
  readonly method: 'replication' | 'trigger';
  /** Only the source's rows with hash(id) mod `modulus` = `remainder` (the target's bounds); absent: every row. */
  readonly filter?: { readonly modulus: number; readonly remainder: number };
}

const mod = (p: Part): number => p.modulus ?? 1;
const rem = (p: Part): number => p.remainder ?? 0;

/**
 * The flows of a move from `from` to `to`. Moduli are powers of two (a single table is modulus 1), so a source and a
 * target share rows exactly when their remainders agree modulo the smaller modulus; a target with the larger
 * modulus takes a filtered part of its source. A table that stays (same name, same secondary) has no flow.
 */
export function flowsOf(from: readonly Part[], to: readonly Part[]): Flow[] {
  const out: Flow[] = [];
  for (const target of to) {
    if (from.some((s) => partKey(s) === partKey(target))) continue;
    for (const source of from) {
      const m = Math.min(mod(source), mod(target));
      if (rem(source) % m !== rem(target) % m) continue;
      out.push({
        source,
        target,
        method: source.secondary === target.secondary ? 'trigger' : 'replication',
        ...(mod(target) > mod(source) ? { filter: { modulus: mod(target), remainder: rem(target) } } : {}),
      });
    }
  }
  return out;
}

/** Tables of the old layout that the new one does not keep: dropped once the move is verified. */
export const retiredParts = (from: readonly Part[], to: readonly Part[]): Part[] => from.filter((s) => !to.some((t) => partKey(s) === partKey(t)));

/** The topology with each named collection placed as its live layout: what "before the move" converges to. */
export function topologyWith(topology: Topology, layouts: ReadonlyMap<string, readonly Part[]>): Topology {
  return {
    ...topology,
    collections: topology.collections.map((c) => {
      const parts = layouts.get(c.name);
      return parts ? (specWithLayout(c, parts) ?? c) : c;
    }),
  };
}

export { partsOf, VECS_SCHEMA };
