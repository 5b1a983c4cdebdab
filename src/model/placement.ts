/**
 * Where a collection's rows live: one table on one secondary, or hash partitions spread round-robin over shards.
 * Pure; desired state, planner checks, `vecscale check` and the bench all read placement through here.
 */
import type { CollectionSpec } from '../config/types.js';

export interface Part {
  /** The collection table in `vecs` on `secondary`: `<c>` on its secondary, or `<c>_p<i>of<n>` for partition i of n. */
  readonly table: string;
  readonly secondary: string;
  /** Hash partition bounds (FOR VALUES WITH (MODULUS n, REMAINDER i)); absent for a collection on one secondary. */
  readonly modulus?: number;
  readonly remainder?: number;
}

/** `<c>_p<i>of<n>`: what `vecs` lists on a shard — the collection, which part, and of how many. */
export const partitionTable = (collection: string, remainder: number, modulus: number): string => `${collection}_p${remainder}of${modulus}`;

/** The collection's tables, in partition order. */
export function partsOf(c: CollectionSpec): Part[] {
  if (c.shards === undefined) return [{ table: c.name, secondary: c.secondary }];
  const n = c.partitions;
  return Array.from({ length: n }, (_, i) => ({
    table: partitionTable(c.name, i, n),
    secondary: c.shards[i % c.shards.length]!,
    modulus: n,
    remainder: i,
  }));
}

/** The secondaries holding any of the collection's rows, in shard order. */
export const secondariesOf = (c: CollectionSpec): string[] => [...new Set(partsOf(c).map((p) => p.secondary))];

/** Whether a table in `vecs` may hold rows of the collection: `<c>` itself, or a partition of any layout. */
export const isTableOf = (collection: string, table: string): boolean =>
  table === collection || (table.startsWith(`${collection}_p`) && /^\d+of\d+$/.test(table.slice(collection.length + 2)));

/** The collection a `vecs` table holds rows of: `<c>` or a partition `<c>_p<i>of<n>`. */
export const collectionOfTable = (table: string): string => table.replace(/_p\d+of\d+$/, '');

/** Where the topology places a collection, as messages say it: `on pod_a`, `in 4 partitions over pod_a, pod_b`. */
export const describeLayout = (c: CollectionSpec): string =>
  c.shards === undefined ? `on ${c.secondary}` : `in ${c.partitions} partitions over ${c.shards.join(', ')}`;
