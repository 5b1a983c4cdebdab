/**
 * The SQL of a move's machinery: hash-partition predicates, the publication, the staging tables that route rows
 * into targets named otherwise, the mirror trigger of a move inside one database, the locked copy and the
 * checksum. Pure; every name quoted through src/sql/quote.ts, every function and type schema-qualified.
 */
import { MANAGED_COMMENT, MOVE_MARK, type MoveMark, SECONDARY_SCHEMA, VECS_SCHEMA } from '../model/state.js';
import { defineFunction } from '../query/function-object.js';
import type { FunctionObject } from '../model/state.js';
import { dollarQuoted, ident, literal, qualified } from '../sql/quote.js';

/**
 * PostgreSQL's hash-partition routing for one varchar key (partbounds.c, compute_partition_hash_value): the key's
 * `hashtextextended(id, HASH_PARTITION_SEED)`, combined with a zero row hash by `hash_combine64` (which adds
 * 0x49a0f4dd15e5a8e3), taken modulo the modulus as an unsigned 64-bit number. Moduli are powers of two, so the
 * remainder is the low bits, and adding the constant's low bits first keeps every step inside int8 (no overflow).
 */
const HASH_PARTITION_SEED = 8816678312871386365n; // 0x7A5B22367996DCFD
const HASH_COMBINE_OFFSET = 0x49a0f4dd15e5a8e3n;

const int8 = (n: bigint | number): string => `${n}::pg_catalog.int8`;

/** The remainder `column` falls on for a power-of-two `modulus`, as PostgreSQL's hash partitioning computes it. */
export function remainderSql(column: string, modulus: number): string {
  if (modulus <= 1) return int8(0);
  const mask = BigInt(modulus - 1);
  const hash = `pg_catalog.hashtextextended(${column}::pg_catalog.text, ${int8(HASH_PARTITION_SEED)})`;
  return `(((${hash} OPERATOR(pg_catalog.&) ${int8(mask)}) OPERATOR(pg_catalog.+) ${int8(HASH_COMBINE_OFFSET & mask)}) OPERATOR(pg_catalog.&) ${int8(mask)})`;
}

/**
 * An autovacuum of a locked table holds a lock EXCLUSIVE waits for, and PostgreSQL cancels it only once a waiter has
 * waited deadlock_timeout (1 s by default, past our lock_timeout): every attempt would lose to a long vacuum. A
 * superuser's wait is checked after 100 ms (a deadlock found then makes us the one to give up, never a writer).
 */
export const FAST_DEADLOCK_CHECK =
  "SELECT CASE WHEN pg_catalog.current_setting('is_superuser') OPERATOR(pg_catalog.=) 'on' THEN pg_catalog.set_config('deadlock_timeout', '100ms', true) END";

/** Whether `column` belongs to remainder `remainder` of `modulus` (TRUE when there is no filter). */
export function belongsSql(column: string, filter: { readonly modulus: number; readonly remainder: number } | undefined): string {
  return filter ? `${remainderSql(column, filter.modulus)} OPERATOR(pg_catalog.=) ${int8(filter.remainder)}` : 'true';
}

const table = (name: string): string => qualified(VECS_SCHEMA, name);

/**
 * Revokes every privilege a role other than the owner holds on a table, sequence or function the move just made: the
 * applying role's default privileges (on Supabase, everything to anon, authenticated and service_role) apply to it at
 * creation.
 */
export function ownerOnlySql(qualifiedName: string, kind: 'TABLE' | 'SEQUENCE' | 'FUNCTION' = 'TABLE'): string {
  // A function by its signature (`schema.name()`), in pg_proc; a table or sequence in pg_class.
  const grants =
    kind === 'FUNCTION'
      ? `pg_catalog.pg_proc c, pg_catalog.aclexplode(c.proacl) a WHERE c.oid OPERATOR(pg_catalog.=) ${literal(qualifiedName)}::pg_catalog.regprocedure AND a.grantee OPERATOR(pg_catalog.<>) c.proowner`
      : `pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a WHERE c.oid OPERATOR(pg_catalog.=) ${literal(qualifiedName)}::pg_catalog.regclass AND a.grantee OPERATOR(pg_catalog.<>) c.relowner`;
  // A function without an ACL yet is executable by PUBLIC implicitly (aclexplode of NULL shows nothing): revoked first.
  const publicFirst = kind === 'FUNCTION' ? `EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', ${literal(qualifiedName)}); ` : '';
  const body =
    ` DECLARE g record; BEGIN ${publicFirst}FOR g IN SELECT DISTINCT a.grantee FROM ${grants} LOOP ` +
    `EXECUTE pg_catalog.format('REVOKE ALL ON ${kind} %s FROM %s', ${literal(qualifiedName)}, CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ` +
    `ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END); END LOOP; END `;
  return `DO ${dollarQuoted(body)}`;
}

export const markSql = (name: string, mark: MoveMark): string => `COMMENT ON TABLE ${table(name)} IS ${literal(MANAGED_COMMENT + MOVE_MARK + mark)}`;

/** One source table of a publication, with its row filter when only some rows go to this target. */
export interface PublishedTable {
  readonly table: string;
  /** The targets' bounds on this database: a row is published when it falls on any of them. */
  readonly filters: readonly { readonly modulus: number; readonly remainder: number }[] | undefined;
}

export function publicationSql(name: string, tables: readonly PublishedTable[]): string {
  const list = tables.map((t) => {
    if (!t.filters) return table(t.table);
    return `${table(t.table)} WHERE (${t.filters.map((f) => `(${belongsSql('id', f)})`).join(' OR ')})`;
  });
  return `CREATE PUBLICATION ${ident(name)} FOR TABLE ${list.join(', ')} WITH (publish = 'insert, update, delete, truncate')`;
}

/**
 * A partitioned table on the target with the source's name: the subscription applies the source's changes to it
 * (logical replication matches tables by name), and hash partitioning routes each row into the target partition
 * attached below it. Its key and columns are those of a vecs table, so its bounds are the targets' own.
 */
export function stagingSql(name: string, dimension: number, vectorSchema: string): string[] {
  return [
    `CREATE TABLE ${table(name)} (id character varying NOT NULL, vec ${qualified(vectorSchema, 'vector')}(${dimension}) NOT NULL, ` +
      `metadata jsonb NOT NULL DEFAULT '{}'::jsonb, PRIMARY KEY (id)) PARTITION BY HASH (id)`,
    markSql(name, 'staging'),
    ownerOnlySql(table(name)),
  ];
}

export const attachSql = (parent: string, child: string, modulus: number, remainder: number): string =>
  `ALTER TABLE ${table(parent)} ATTACH PARTITION ${table(child)} FOR VALUES WITH (MODULUS ${modulus}, REMAINDER ${remainder})`;

export const detachSql = (parent: string, child: string): string => `ALTER TABLE ${table(parent)} DETACH PARTITION ${table(child)}`;

/** One target of a move inside a database: a table on the same database and the rows that go there. */
export interface MirrorTarget {
  readonly table: string;
  readonly filter: { readonly modulus: number; readonly remainder: number } | undefined;
}

/** The change log of a move inside one database: the ids its source's writes touched, in commit-independent order. */
export function changeLogSql(name: string): string[] {
  const log = qualified(SECONDARY_SCHEMA, name);
  return [
    `CREATE TABLE ${log} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id character varying NOT NULL)`,
    `COMMENT ON TABLE ${log} IS ${literal(MANAGED_COMMENT + MOVE_MARK + 'log')}`,
    `REVOKE ALL ON ${log} FROM PUBLIC`,
    ownerOnlySql(log),
    // Its identity sequence too: a default grant on it would let a role setval() every write into failing.
    ownerOnlySql(`${SECONDARY_SCHEMA}.${name}_seq_seq`, 'SEQUENCE'),
  ];
}

/**
 * The trigger function of a move inside one database (logical replication cannot copy between two tables of one
 * database: it matches tables by name). It only records which ids a write touched; the move brings those ids' rows
 * over from the source afterwards (resyncSql). Recording is an INSERT into a table without a unique key, so it never
 * waits on or conflicts with anything — a writer through postgres_fdw runs REPEATABLE READ, where writing the targets
 * directly would fail with serialization errors, or miss rows the copy committed after its snapshot.
 *
 * SECURITY DEFINER: every writer of the source fires it (the wrapper role, the vecs client's role), and none of them
 * may write vecscale's log. Safe: a trigger function cannot be called, only fired, and EXECUTE is revoked anyway.
 */
export function mirrorFunction(name: string): FunctionObject {
  const log = qualified(SECONDARY_SCHEMA, name);
  const body = `
BEGIN
  IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
    INSERT INTO ${log} (id) VALUES (OLD.id);
  END IF;
  IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' AND (TG_OP OPERATOR(pg_catalog.=) 'INSERT' OR NEW.id OPERATOR(pg_catalog.<>) OLD.id) THEN
    INSERT INTO ${log} (id) VALUES (NEW.id);
  END IF;
  RETURN NULL;
END
`;
  return defineFunction({
    schema: SECONDARY_SCHEMA,
    name,
    args: [],
    returns: 'pg_catalog.trigger',
    volatility: 'VOLATILE',
    body,
    acl: {},
    definer: { reason: "every writer of the move's source table fires it, and only vecscale may write the move's change log" },
  });
}

export const mirrorTriggerSql = (name: string, source: string): string =>
  `CREATE TRIGGER ${ident(name)} AFTER INSERT OR UPDATE OR DELETE ON ${table(source)} FOR EACH ROW EXECUTE FUNCTION ${qualified(SECONDARY_SCHEMA, name)}()`;

/**
 * One chunk of the initial copy inside a database, in id order after `$1` (the first chunk: every id). Rows changed
 * while the copy runs are in the change log (the trigger exists before the copy starts) and resynced afterwards.
 */
export function copyChunkSql(source: string, targets: readonly MirrorTarget[], first: boolean, limit: number): string {
  const inserts = targets.map(
    (t, i) =>
      `w${i} AS (INSERT INTO ${table(t.table)} (id, vec, metadata) SELECT id, vec, metadata FROM chunk WHERE ${belongsSql('id', t.filter)} ON CONFLICT (id) DO NOTHING)`,
  );
  return (
    `WITH chunk AS (SELECT id, vec, metadata FROM ${table(source)}${first ? '' : ' WHERE id OPERATOR(pg_catalog.>) $1::pg_catalog.varchar'} ` +
    `ORDER BY id LIMIT ${limit}), ${inserts.join(', ')} ` +
    `SELECT pg_catalog.max(id) AS last, pg_catalog.count(*) AS n FROM chunk`
  );
}

/**
 * Takes up to `limit` entries off the change log and makes each logged id's row on its target what it is on the
 * source now: upserted if the source has it, deleted if not. Idempotent per id, so the log's order does not matter,
 * and a write committed after this statement's snapshot logs its id again for the next round. Once the source is
 * write-locked and the log is empty, the targets equal the source.
 */
export function resyncSql(log: string, source: string, targets: readonly MirrorTarget[], limit: number): string {
  const parts = targets.flatMap((t, i) => [
    `u${i} AS (INSERT INTO ${table(t.table)} (id, vec, metadata) SELECT s.id, s.vec, s.metadata FROM ${table(source)} s JOIN ids USING (id) ` +
      `WHERE ${belongsSql('s.id', t.filter)} ON CONFLICT (id) DO UPDATE SET vec = EXCLUDED.vec, metadata = EXCLUDED.metadata)`,
    `d${i} AS (DELETE FROM ${table(t.table)} t USING ids WHERE t.id OPERATOR(pg_catalog.=) ids.id AND NOT EXISTS ` +
      `(SELECT FROM ${table(source)} s WHERE s.id OPERATOR(pg_catalog.=) ids.id AND ${belongsSql('s.id', t.filter)}))`,
  ]);
  const q = qualified(SECONDARY_SCHEMA, log);
  return (
    `WITH taken AS (DELETE FROM ${q} WHERE seq IN (SELECT seq FROM ${q} ORDER BY seq LIMIT ${limit}) RETURNING id), ` +
    `ids AS (SELECT DISTINCT id FROM taken), ${parts.join(', ')} SELECT pg_catalog.count(*) AS n FROM taken`
  );
}

/**
 * Row count and an order-independent checksum over (id, metadata, vec) of a table's rows, or those on one side: the
 * XOR of each row's 64-bit hash. Ids are unique on both sides and the counts are compared too, so XOR loses nothing
 * a sum would catch, and it stays in int8 (a numeric sum cost a third of the time). The vector is hashed as its
 * binary form (`vector_send`: one hash over its bytes, not one per element as a float4[] costs): 2-4× faster,
 * measured on 100k × 384, and this runs while writes wait.
 */
export function checksumSql(name: string, filter: { readonly modulus: number; readonly remainder: number } | undefined, vectorSchema: string): string {
  return (
    `SELECT pg_catalog.count(*)::pg_catalog.int8 AS n, ` +
    `COALESCE(pg_catalog.bit_xor(pg_catalog.hash_record_extended(ROW(id, metadata, ${qualified(vectorSchema, 'vector_send')}(vec)), ${int8(0)})), 0)::pg_catalog.text AS h ` +
    `FROM ONLY ${table(name)}${filter ? ` WHERE ${belongsSql('id', filter)}` : ''}`
  );
}
