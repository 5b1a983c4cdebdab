/**
 * `vecscale check`: rows of a sharded collection that sit on the wrong partition. Rows written through the primary
 * are routed by PostgreSQL; a row inserted straight into a shard's partition table (vecs on the shard, a script)
 * skips that, and the primary then cannot find it by id. Read-only; runs on the primary, through the partitions'
 * foreign tables, with PostgreSQL's own partition test (satisfies_hash_partition).
 *
 * A misplaced row's id may also exist on the partition it belongs to (a write through the primary after the stray
 * one): moving the stray row there would overwrite that one. So each misplaced row is compared with its partition's
 * copy, and the advice is SQL for the primary that never replaces a row blindly. vecs tables carry no timestamp:
 * which copy is newer cannot be told, only whether and where they differ.
 */
import type { ShardedCollection, Topology } from './config/types.js';
import { connect, type Db } from './db/connect.js';
import { VecscaleError } from './errors.js';
import { partsOf } from './model/placement.js';
import { API_SCHEMA, REMOTE_SCHEMA, WRITE_SCHEMA } from './model/state.js';
import { upsertFunctionName } from './query/write-functions.js';
import { literal, qualified } from './sql/quote.js';

/** At most this many ids are listed per partition (the count is always exact). */
export const MAX_LISTED = 100;

export interface PartitionCheck {
  readonly collection: string;
  readonly partition: string;
  readonly secondary: string;
  /** Rows whose id hashes to another partition. */
  readonly misplaced: number;
  /** The first MAX_LISTED of them (by id), with the partition each belongs to, compared with its copy there. */
  readonly rows: readonly MisplacedRow[];
}

/** One option for a misplaced row: what it keeps, and the SQL that does it, to run on the primary. */
export interface Fix {
  /** `home`: the copy on the partition the id belongs to; `misplaced`: this row, moved there. */
  readonly keep: 'home' | 'misplaced';
  readonly sql: string;
}

export interface MisplacedRow {
  readonly id: string;
  /** The partition the id hashes to. */
  readonly belongs: string;
  /** Whether that partition holds a row with this id, and if so whether it is the same row (vector and metadata). */
  readonly home: 'absent' | 'identical' | 'different';
  /** For `different`: what differs, `vector` and/or `metadata`. */
  readonly differs: ReadonlyArray<'vector' | 'metadata'>;
  /** When the metadata differs and both are objects: the top-level keys whose values differ (missing on one side too). */
  readonly differingKeys: readonly string[];
  /** absent: move it; identical: delete it (a duplicate); different: keep either copy, the user's choice. */
  readonly fixes: readonly Fix[];
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
    const rows = r.rows.map((x) => ({ id: x.id, belongs: parts[x.belongs ?? 0]!.table }));
    out.push({
      collection: c.name,
      partition: p.table,
      secondary: p.secondary,
      misplaced: Number(r.rows[0]?.total ?? 0),
      rows: await compareWithHome(db, c, p.table, rows),
    });
  }
  return out;
}

interface Comparison {
  id: string;
  present: boolean;
  vector_differs: boolean;
  metadata_differs: boolean;
  keys: string[] | null;
}

/**
 * Compares misplaced rows of partition `here` with the rows of the same ids on the partitions they belong to. Both
 * sides are fetched first (MATERIALIZED), then compared on the primary: vectors by their text (pgvector prints the
 * shortest text that reads back the same float4s), metadata as jsonb, key by key when both are objects.
 */
async function compareWithHome(db: Db, c: ShardedCollection, here: string, rows: ReadonlyArray<{ id: string; belongs: string }>): Promise<MisplacedRow[]> {
  const found = new Map<string, Comparison>();
  for (const home of [...new Set(rows.map((x) => x.belongs))]) {
    const ids = rows.filter((x) => x.belongs === home).map((x) => x.id);
    const r = await db.query<Comparison>(
      `WITH stray AS MATERIALIZED (SELECT id, embedding::text AS v, metadata FROM ${qualified(REMOTE_SCHEMA, here)} WHERE id = ANY ($1::text[])),
            home AS MATERIALIZED (SELECT id, embedding::text AS v, metadata FROM ${qualified(REMOTE_SCHEMA, home)} WHERE id = ANY ($1::text[]))
       SELECT s.id, h.id IS NOT NULL AS present,
              h.id IS NOT NULL AND s.v OPERATOR(pg_catalog.<>) h.v AS vector_differs,
              h.id IS NOT NULL AND COALESCE((s.metadata IS NULL) OPERATOR(pg_catalog.<>) (h.metadata IS NULL)
                OR s.metadata OPERATOR(pg_catalog.<>) h.metadata, false) AS metadata_differs,
              CASE WHEN pg_catalog.jsonb_typeof(s.metadata) = 'object' AND pg_catalog.jsonb_typeof(h.metadata) = 'object' THEN
                ARRAY(SELECT k FROM (SELECT pg_catalog.jsonb_object_keys(s.metadata) UNION SELECT pg_catalog.jsonb_object_keys(h.metadata)) AS u(k)
                       WHERE COALESCE((s.metadata OPERATOR(pg_catalog.->) k) OPERATOR(pg_catalog.<>) (h.metadata OPERATOR(pg_catalog.->) k), true)
                       ORDER BY k COLLATE "C")
              END AS keys
         FROM stray s LEFT JOIN home h ON h.id OPERATOR(pg_catalog.=) s.id`,
      [ids],
    );
    for (const x of r.rows) found.set(x.id, x);
  }
  return rows.map((x) => advise(c, here, x.id, x.belongs, found.get(x.id)));
}

// C0 and C1 control characters, DEL: an id holding one is written as hex, so the advice prints nothing a terminal runs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The id as an SQL expression: a literal, or its UTF-8 bytes in hex when it holds control characters. */
const idSql = (id: string): string =>
  CONTROL.test(id) ? `pg_catalog.convert_from(pg_catalog.decode(${literal(Buffer.from(id, 'utf8').toString('hex'))}, 'hex'), 'UTF8')` : literal(id);

/** The row's options as SQL for the primary: deleting the stray row, or moving it (upsert_<c>, then delete). */
function advise(c: ShardedCollection, here: string, id: string, belongs: string, cmp: Comparison | undefined): MisplacedRow {
  const where = `WHERE id = ${idSql(id)}`;
  // vecscale_write's partitions are the partition tables (vecscale_remote's are their views, which take upserts only).
  const remove = `DELETE FROM ${qualified(WRITE_SCHEMA, here)} ${where};`;
  const move =
    `BEGIN; SELECT ${qualified(API_SCHEMA, upsertFunctionName(c.name))}(id, embedding, metadata) FROM ${qualified(REMOTE_SCHEMA, here)} ${where}; ` +
    `${remove} COMMIT;`;
  // A row gone since it was listed (a concurrent delete) compares as absent: moving nothing is harmless.
  if (!cmp?.present) return { id, belongs, home: 'absent', differs: [], differingKeys: [], fixes: [{ keep: 'misplaced', sql: move }] };
  const differs = [...(cmp.vector_differs ? ['vector' as const] : []), ...(cmp.metadata_differs ? ['metadata' as const] : [])];
  if (differs.length === 0) return { id, belongs, home: 'identical', differs, differingKeys: [], fixes: [{ keep: 'home', sql: remove }] };
  return {
    id,
    belongs,
    home: 'different',
    differs,
    differingKeys: cmp.metadata_differs ? (cmp.keys ?? []) : [],
    fixes: [{ keep: 'home', sql: remove }, { keep: 'misplaced', sql: move }],
  };
}

/** At most this many differing metadata keys are named in the advice. */
const KEYS_SHOWN = 10;

/**
 * The advice for one misplaced row, as lines of plain text (the CLI indents and prints them): whether its partition
 * holds a copy, how the two differ, and the SQL of each option. Never advises replacing a different row unasked.
 */
export function adviceLines(row: MisplacedRow): string[] {
  const head = `id ${JSON.stringify(row.id)} belongs to ${row.belongs}`;
  const sql = (keep: Fix['keep']) => row.fixes.find((f) => f.keep === keep)!.sql;
  if (row.home === 'absent') {
    return [`${head}, which has no row with this id: move it there (on the primary):`, `  ${sql('misplaced')}`];
  }
  if (row.home === 'identical') {
    return [`${head}, which holds the same row (same vector and metadata): this copy is a duplicate, safe to delete (on the primary):`, `  ${sql('home')}`];
  }
  // Keys are listed only when the metadata differs (differingKeys is empty otherwise).
  const keys = row.differingKeys.length === 0 ? '' : ` (keys ${row.differingKeys.slice(0, KEYS_SHOWN).join(', ')}${row.differingKeys.length > KEYS_SHOWN ? ', …' : ''})`;
  return [
    `${head}, which holds a different row with this id: ${row.differs.join(' and ')}${keys} ${row.differs.length > 1 ? 'differ' : 'differs'}.`,
    `  vecs tables carry no timestamp: which copy is newer cannot be told. Choose one (on the primary):`,
    `  keep the row on ${row.belongs}, delete this copy:  ${sql('home')}`,
    `  keep this copy, replacing the row on ${row.belongs}:  ${sql('misplaced')}`,
  ];
}

export async function check(topology: Topology, opts: { connectTimeoutMs?: number; statementTimeoutMs?: number } = {}): Promise<CheckReport> {
  const db = await connect(
    { database: 'primary', url: topology.primary.url },
    { timeoutMs: opts.connectTimeoutMs, readOnly: true, ...(opts.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: opts.statementTimeoutMs }) },
  );
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
