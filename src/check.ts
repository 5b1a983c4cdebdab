/**
 * `vecscale check`: rows of a sharded collection that sit on the wrong partition. Rows written through the primary
 * are routed by PostgreSQL; a row inserted straight into a shard's partition table (vecs on the shard, a script)
 * skips that, and the primary then cannot find it by id. Read-only; runs on the primary, through the partitions'
 * foreign tables, with PostgreSQL's own partition test (satisfies_hash_partition).
 */
import type { ShardedCollection, Topology } from './config/types.js';
import { connect, type Db } from './db/connect.js';
import { VecscaleError } from './errors.js';
import { partsOf } from './model/placement.js';
import { REMOTE_SCHEMA } from './model/state.js';
import { literal, qualified } from './sql/quote.js';

/** At most this many ids are listed per partition (the count is always exact). */
export const MAX_LISTED = 100;

export interface PartitionCheck {
  readonly collection: string;
  readonly partition: string;
  readonly secondary: string;
  /** Rows whose id hashes to another partition. */
  readonly misplaced: number;
  /** The first MAX_LISTED of them (by id), with the partition each belongs to. */
  readonly rows: ReadonlyArray<{ readonly id: string; readonly belongs: string }>;
}

export interface CheckReport {
  readonly partitions: readonly PartitionCheck[];
  /** Collections on one secondary: nothing to check. */
  readonly unsharded: readonly string[];
  readonly healthy: boolean;
}

async function checkCollection(db: Db, c: ShardedCollection): Promise<PartitionCheck[]> {
  const parent = `${literal(`${REMOTE_SCHEMA}.${c.name}`)}::pg_catalog.regclass`;
  const parts = partsOf(c);
  const exists = await db.query(`SELECT pg_catalog.to_regclass($1) IS NOT NULL AS ok`, [`${REMOTE_SCHEMA}.${c.name}`]);
  if (!exists.rows[0]?.ok) {
    throw new VecscaleError('precondition', `collection ${c.name} has no partitioned table on the primary (${REMOTE_SCHEMA}.${c.name})`, {
      hint: 'run vecscale apply first',
    });
  }
  const out: PartitionCheck[] = [];
  for (const p of parts) {
    // NOTE: the ids are fetched first (MATERIALIZED): satisfies_hash_partition names a relation of the primary, and
    // postgres_fdw would otherwise ship the call to the shard.
    const r = await db.query<{ id: string; belongs: number | null; total: string }>(
      `WITH ids AS MATERIALIZED (SELECT id FROM ${qualified(REMOTE_SCHEMA, p.table)}),
            wrong AS (SELECT id FROM ids WHERE NOT pg_catalog.satisfies_hash_partition(${parent}, $1, $2, id))
       SELECT w.id, (SELECT r FROM pg_catalog.generate_series(0, $1 - 1) r
                      WHERE pg_catalog.satisfies_hash_partition(${parent}, $1, r, w.id)) AS belongs,
              count(*) OVER () AS total
         FROM wrong w ORDER BY w.id LIMIT ${MAX_LISTED}`,
      [p.modulus, p.remainder],
    );
    out.push({
      collection: c.name,
      partition: p.table,
      secondary: p.secondary,
      misplaced: Number(r.rows[0]?.total ?? 0),
      rows: r.rows.map((x) => ({ id: x.id, belongs: parts[x.belongs ?? 0]!.table })),
    });
  }
  return out;
}

export async function check(topology: Topology, opts: { connectTimeoutMs?: number } = {}): Promise<CheckReport> {
  const db = await connect({ database: 'primary', url: topology.primary.url }, { timeoutMs: opts.connectTimeoutMs, readOnly: true });
  try {
    const partitions: PartitionCheck[] = [];
    for (const c of topology.collections) {
      if (c.shards !== undefined) partitions.push(...(await checkCollection(db, c)));
    }
    return {
      partitions,
      unsharded: topology.collections.filter((c) => c.shards === undefined).map((c) => c.name),
      healthy: partitions.every((p) => p.misplaced === 0),
    };
  } catch (err) {
    if (err instanceof VecscaleError) throw err;
    throw new VecscaleError('database', `check failed on the primary: ${(err as Error).message}`, { cause: err });
  } finally {
    await db.end().catch(() => undefined);
  }
}
