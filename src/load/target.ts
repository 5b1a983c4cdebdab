/**
 * One table `vecscale load` writes into — a collection's table on its secondary, or one partition of a sharded one —
 * on vecscale's own admin connection to that secondary. Its rows go in in one transaction, committed only when every
 * table's rows are in: a failure anywhere rolls every table back.
 *
 * - connect, inspect: the table is the collection's (vector(n) of the topology's dimension, writable); read-only.
 * - dropIndexes: when the table is empty and has vector indexes (HNSW, IVFFlat) that can be rebuilt exactly, a short
 *   transaction of its own locks it (ACCESS EXCLUSIVE, waited for at most LOCK_WAIT_MS — else the index stays and
 *   the rows go through it), looks again, and drops them, remembering pg_get_indexdef() and the comment (vecscale's
 *   ownership mark). Committed at once, so neither readers nor `vecscale plan` wait for the load: while it runs, the
 *   plan shows the index missing.
 * - begin, write: a batch of rows. Ids already in the table are found first (one `= ANY` probe of the primary key):
 *   without --upsert they are bad lines, with it they are deleted, so the COPY that follows replaces them — the same
 *   end state as INSERT … ON CONFLICT (id) DO UPDATE, without a staging table's second copy of every row.
 * - rebuildIndexes: after the commit, or after a failure (the caller's `finally`), builds each dropped index again
 *   from its definition (unless something — an apply — made it meanwhile) and puts its comment back, in one
 *   transaction per index, on a new connection if the load's is gone. No statement timeout: a build may take hours
 *   (progress polled by src/apply/index-progress.ts).
 */
import type { IndexSpec } from '../config/types.js';
import { rebuildSettings } from './index-settings.js';
import { backendPid, withIndexProgress } from '../apply/index-progress.js';
import { close, connect, type Db, describeTarget, queryUnbounded, silentOr, type Target, usable } from '../db/connect.js';
import { VecscaleError } from '../errors.js';
import type { ProgressSink } from '../model/progress.js';
import { MANAGED_COMMENT, VECS_SCHEMA } from '../model/state.js';
import { literal, qualified } from '../sql/quote.js';
import { copyErrorLine, copyFrom, copyLine } from './copy.js';
import type { BadLine, Row } from './input.js';

/** How long a load waits for the lock that lets it drop an empty table's index (else it keeps the index). */
export const LOCK_WAIT_MS = 5_000;

export interface TargetSpec {
  readonly secondary: string;
  readonly url: string;
  readonly table: string;
  readonly dimension: number;
  /** The collection's index as the topology has it: its `build` settings apply to the rebuild. */
  readonly index?: IndexSpec;
}

/** A batch of rows for one table. */
export interface Batch {
  readonly rows: readonly Row[];
  /** The rows as COPY text. */
  readonly data: Buffer;
  /** Look up every id in the table first (it had rows before the load, or the caller stopped tracking ids). */
  readonly probe: boolean;
  /** Without `probe`, --upsert: ids an earlier batch of this load wrote, to delete before the COPY. */
  readonly replace: readonly string[];
}

/** Rows as COPY text. */
export const encodeRows = (rows: readonly Row[]): Buffer => Buffer.from(rows.map(copyLine).join(''), 'utf8');

export interface DroppedIndex {
  readonly name: string;
  readonly definition: string;
  readonly comment: string | null;
}

export interface WriteResult {
  readonly copied: number;
  /** --upsert: rows of the table before the load that the batch replaced. */
  readonly replaced: number;
  /** --upsert: rows an earlier line of this load had written that the batch replaced. */
  readonly superseded: number;
  /** Rows refused: their id is in the table already (without --upsert). */
  readonly bad: readonly BadLine[];
}

interface IndexRow {
  name: string;
  definition: string;
  comment: string | null;
  valid: boolean;
  special: boolean;
}

export interface ConnectOpts {
  readonly connectTimeoutMs?: number;
  readonly statementTimeoutMs?: number;
}

const connectOptions = (o: ConnectOpts) => ({
  applicationName: 'vecscale load',
  requireSession: true,
  ...(o.connectTimeoutMs !== undefined ? { timeoutMs: o.connectTimeoutMs } : {}),
  ...(o.statementTimeoutMs !== undefined ? { statementTimeoutMs: o.statementTimeoutMs } : {}),
});

/** A failed statement as the user reads it: the database named, a timeout as such. */
function failOn(db: Db, target: Target, doing: string, err: unknown): VecscaleError {
  if (err instanceof VecscaleError) return err;
  const silent = silentOr(db, doing, err);
  if (silent) return silent;
  const e = err as { message?: string; code?: string };
  // A session the server ended (terminated, restarted) is a lost connection, not a failed statement.
  const lost = e.code === '57P01' || e.code === '57P02' || e.code === '57P03' || /Connection terminated|ECONNRESET|EPIPE|not queryable/i.test(e.message ?? '');
  return new VecscaleError(lost ? 'connection' : 'database', `${describeTarget(target)}: ${doing} failed: ${e.message ?? String(err)}`, {
    meta: { database: target.database, sqlstate: e.code ?? null },
    cause: err,
  });
}

/** A table being loaded, and its open transaction. */
export class LoadTable {
  /** Whether the table had no rows when the load began (so only this load's own lines can repeat an id). */
  empty = false;
  /** The vector indexes dropped for the load, to rebuild before commit. */
  dropped: DroppedIndex[] = [];
  /** Why a vector index of an empty table was kept (the load goes through it), if one was. */
  keptIndex: string | undefined;
  /** Rows copied so far (less those a later line replaced). */
  rows = 0;
  /** The load session's backend, ended before a rebuild on a new connection (it may still hold the table's lock). */
  private pid: number | undefined;

  private constructor(
    readonly spec: TargetSpec,
    readonly db: Db,
    private readonly opts: ConnectOpts,
  ) {}

  get label(): string {
    return `${this.spec.secondary}: ${VECS_SCHEMA}.${this.spec.table}`;
  }

  get qualifiedName(): string {
    return qualified(VECS_SCHEMA, this.spec.table);
  }

  private get target(): Target {
    return { database: this.spec.secondary, url: this.spec.url };
  }

  /** A failed statement as the user reads it: the table named, a timeout as such, nothing was loaded. */
  fail(doing: string, err: unknown): VecscaleError {
    return failOn(this.db, this.target, doing, err);
  }

  private async q<R extends Record<string, unknown>>(doing: string, sql: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.db.query<R>(sql, values)).rows;
    } catch (err) {
      throw this.fail(doing, err);
    }
  }

  /** Connects; changes nothing. */
  static async connect(spec: TargetSpec, opts: ConnectOpts): Promise<LoadTable> {
    return new LoadTable(spec, await connect({ database: spec.secondary, url: spec.url }, connectOptions(opts)), opts);
  }

  /** Checks that the table is the collection's and writable; read-only. */
  async inspect(upsert: boolean): Promise<void> {
    const name = `${VECS_SCHEMA}.${this.spec.table}`;
    const [table] = await this.q<{
      oid: string;
      vec_type: string | null;
      vec_typname: string | null;
      dims: number | null;
      id_type: string | null;
      metadata_type: string | null;
      owner: boolean;
      can_write: boolean;
      relkind: string;
    }>(
      `checking ${name}`,
      `SELECT c.oid::pg_catalog.int8::pg_catalog.text AS oid, c.relkind::pg_catalog.text AS relkind,
              pg_catalog.format_type(v.atttypid, v.atttypmod) AS vec_type, ty.typname::pg_catalog.text AS vec_typname, v.atttypmod AS dims,
              (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) 'id' AND NOT a.attisdropped) AS id_type,
              (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) 'metadata' AND NOT a.attisdropped) AS metadata_type,
              pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owner,
              pg_catalog.has_table_privilege(c.oid, 'INSERT') AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                AND ($2 OR pg_catalog.has_table_privilege(c.oid, 'DELETE')) AS can_write
         FROM pg_catalog.pg_class c
         LEFT JOIN pg_catalog.pg_attribute v ON v.attrelid OPERATOR(pg_catalog.=) c.oid AND v.attname OPERATOR(pg_catalog.=) 'vec' AND NOT v.attisdropped
         LEFT JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) v.atttypid
        WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)`,
      [this.qualifiedName, !upsert],
    );
    const where = describeTarget(this.target);
    if (!table || table.relkind !== 'r') {
      throw new VecscaleError('precondition', `${where} has no table ${name}: the collection is not applied there`, {
        hint: 'run `vecscale apply` first (`vecscale plan` shows what it would create)',
        meta: { database: this.spec.secondary, table: name },
      });
    }
    if (table.vec_typname !== 'vector' || table.id_type !== 'character varying' || table.metadata_type !== 'jsonb') {
      throw new VecscaleError('precondition', `${where}: ${name} is not a vecs collection table (id varchar, vec vector(n), metadata jsonb)`, {
        hint: 'run `vecscale plan` to see how it differs from the topology',
        meta: { database: this.spec.secondary, table: name },
      });
    }
    if (table.dims !== this.spec.dimension) {
      throw new VecscaleError('precondition', `${where}: ${name} holds ${table.vec_type}, but the topology says dimension ${this.spec.dimension}`, {
        hint: 'run `vecscale plan` to see the difference; load once the collection matches the topology',
        meta: { database: this.spec.secondary, table: name, dimension: table.dims },
      });
    }
    if (!table.can_write) {
      throw new VecscaleError('precondition', `${where}: the role of this URL may not ${upsert ? 'SELECT, INSERT and DELETE' : 'SELECT and INSERT'} on ${name}`, {
        meta: { database: this.spec.secondary, table: name },
      });
    }
    this.oid = table.oid;
    this.owner = table.owner;
  }

  private oid = '0';
  private owner = false;

  private isEmpty(): Promise<boolean> {
    return this.q<{ empty: boolean }>(`reading whether ${VECS_SCHEMA}.${this.spec.table} is empty`, `SELECT NOT EXISTS (SELECT FROM ${this.qualifiedName}) AS empty`).then(
      (r) => r[0]!.empty,
    );
  }

  /** An empty table's vector indexes dropped (committed), to be built once its rows are in; see the file's header. */
  async dropIndexes(): Promise<void> {
    const name = `${VECS_SCHEMA}.${this.spec.table}`;
    const indexes = await this.q<IndexRow & Record<string, unknown>>(
      `reading the indexes of ${name}`,
      `SELECT ic.relname::pg_catalog.text AS name, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
              pg_catalog.obj_description(i.indexrelid, 'pg_class') AS comment, i.indisvalid AS valid,
              (ic.reltablespace OPERATOR(pg_catalog.<>) 0 OR i.indisclustered OR i.indisreplident) AS special
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
         JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
        WHERE i.indrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND am.amname OPERATOR(pg_catalog.=) ANY ('{hnsw,ivfflat}'::pg_catalog.name[])
        ORDER BY 1`,
      [this.oid],
    );
    if (indexes.length === 0 || !(await this.isEmpty())) return;
    if (!this.owner) {
      this.keptIndex = 'the role of this URL does not own the table (only its owner may drop and rebuild the index): its index is kept';
      return;
    }
    // Only indexes `apply` would make again if the rebuild never runs (a crash, a kill): vecscale's own.
    const foreign = indexes.find((i) => i.comment === null || !i.comment.startsWith(MANAGED_COMMENT));
    if (foreign) {
      this.keptIndex = `index ${foreign.name} is not vecscale's (apply could not make it again): it is kept, and the load goes through it`;
      return;
    }
    const odd = indexes.find((i) => !i.valid || i.special);
    if (odd) {
      this.keptIndex = `index ${odd.name} is ${!odd.valid ? 'invalid' : 'in its own tablespace, clustered on, or the replica identity'}: it is kept as it is`;
      return;
    }
    await this.q('beginning', 'BEGIN');
    try {
      await this.db.query("SELECT pg_catalog.set_config('lock_timeout', $1, true)", [String(LOCK_WAIT_MS)]);
      await this.db.query(`LOCK TABLE ${this.qualifiedName} IN ACCESS EXCLUSIVE MODE`);
    } catch (err) {
      await this.db.query('ROLLBACK').catch(() => undefined);
      if ((err as { code?: string }).code !== '55P03') throw this.fail(`locking ${name}`, err);
      this.keptIndex = `${name} is in use (its lock was not granted within ${LOCK_WAIT_MS / 1000} s): its index is kept, and the load goes through it`;
      return;
    }
    try {
      // Rows written before the lock was granted make the table non-empty after all.
      if (!(await this.isEmpty())) {
        await this.q('ending', 'ROLLBACK');
        return;
      }
      for (const i of indexes) {
        await this.q(`dropping index ${VECS_SCHEMA}.${i.name} for the load`, `DROP INDEX ${qualified(VECS_SCHEMA, i.name)} RESTRICT`);
      }
      await this.q(`committing the drop of the index of ${name}`, 'COMMIT');
    } catch (err) {
      await this.db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.dropped = indexes.map((i) => ({ name: i.name, definition: i.definition, comment: i.comment }));
  }

  /** Begins the load's transaction. */
  async begin(): Promise<void> {
    this.pid = await backendPid(this.db);
    await this.q('beginning the load', 'BEGIN');
    this.empty = await this.isEmpty();
  }

  /**
   * Writes one batch (ids unique within it; `data` its rows as COPY text, encoded while the previous batch was
   * written). With `probe`, ids already in the table are looked up first — without --upsert they become bad lines,
   * with it they are deleted, so the COPY replaces them; without it (an empty table, whose earlier lines the caller
   * tracks), only `replace` — ids this load wrote before — are deleted. Returns what became of the rows; throws a
   * `database` error naming the input line the server refused, or the connection's error.
   */
  async write(batch: Batch, upsert: boolean, source: string): Promise<WriteResult> {
    const name = `${VECS_SCHEMA}.${this.spec.table}`;
    let rows = batch.rows;
    let data = batch.data;
    let replaced = 0;
    let superseded = 0;
    const bad: BadLine[] = [];
    const ids = batch.probe ? rows.map((r) => r.id) : upsert ? batch.replace : [];
    if (ids.length > 0 && upsert) {
      const gone = await this.q<{ ours: boolean }>(
        `replacing existing ids in ${name}`,
        `DELETE FROM ${this.qualifiedName} WHERE id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.varchar[])
         RETURNING xmin OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()::pg_catalog.xid AS ours`,
        [ids],
      );
      for (const g of gone) {
        if (g.ours) superseded++;
        else replaced++;
      }
    } else if (ids.length > 0) {
      const found = await this.q<{ id: string; ours: boolean }>(
        `looking up existing ids in ${name}`,
        `SELECT id::pg_catalog.text AS id, xmin OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()::pg_catalog.xid AS ours
           FROM ${this.qualifiedName} WHERE id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.varchar[])`,
        [ids],
      );
      if (found.length > 0) {
        const seen = new Map(found.map((f) => [f.id, f.ours]));
        rows = rows.filter((r) => {
          const ours = seen.get(r.id);
          if (ours === undefined) return true;
          bad.push({
            line: r.line,
            reason: ours ? 'the id repeats an earlier line' : `the id is already in ${name} on ${this.spec.secondary} (--upsert replaces it)`,
          });
          return false;
        });
        data = encodeRows(rows);
      }
    }
    if (rows.length === 0) return { copied: 0, replaced, superseded, bad };
    let copied: number;
    try {
      copied = await copyFrom(this.db, `COPY ${this.qualifiedName} (id, vec, metadata) FROM STDIN`, data);
    } catch (err) {
      const at = copyErrorLine(err);
      const row = at === undefined ? undefined : rows[at - 1];
      const e = err as { code?: string; message?: string };
      if (row && e.code === '23505') {
        throw new VecscaleError(
          'database',
          `${describeTarget(this.target)}: line ${row.line} of ${source}: another session wrote the id ${JSON.stringify(row.id)} into ${name} during the load`,
          { hint: 'nothing was loaded; run the load again', meta: { database: this.spec.secondary, table: name, line: row.line, sqlstate: e.code } },
        );
      }
      if (row) {
        throw new VecscaleError('database', `${describeTarget(this.target)}: line ${row.line} of ${source}: ${e.message ?? String(err)}`, {
          hint: 'nothing was loaded: fix or remove that line and load again',
          meta: { database: this.spec.secondary, table: name, line: row.line, sqlstate: e.code ?? null },
          cause: err,
        });
      }
      throw this.fail(`copying rows into ${name}`, err);
    }
    if (copied !== rows.length) {
      throw new VecscaleError('internal', `${describeTarget(this.target)}: COPY into ${name} took ${copied} rows of ${rows.length}`);
    }
    // A row this load wrote before and the batch replaced is one row, not two.
    this.rows += copied - superseded;
    return { copied, replaced, superseded, bad };
  }

  /**
   * Builds the indexes dropped for the load again, each with its comment, in a transaction of its own (the load's
   * has ended, committed or not); an index that exists by now (an apply made it) is left alone. Uses a new
   * connection when the load's no longer answers. Throws when one cannot be built: it stays missing, and the next
   * plan shows it.
   */
  async rebuildIndexes(sink: ProgressSink | undefined): Promise<Array<{ name: string; ms: number }>> {
    const built: Array<{ name: string; ms: number }> = [];
    if (this.dropped.length === 0) return built;
    let db = this.db;
    let own: Db | undefined;
    const alive = usable(db) && (await db.query('SELECT 1').then(() => true, () => false));
    if (!alive) {
      own = await connect(this.target, connectOptions(this.opts));
      db = own;
      // The load's session may live on (a half-open socket, a stopped backend) holding the table's lock: end it, or
      // CREATE INDEX would wait for it without bound.
      if (this.pid !== undefined) await db.query('SELECT pg_catalog.pg_terminate_backend($1, $2)', [this.pid, LOCK_WAIT_MS]).catch(() => undefined);
    }
    try {
      for (const i of [...this.dropped]) {
        const index = `${VECS_SCHEMA}.${i.name}`;
        const doing = `rebuilding index ${index}`;
        const run = async (sql: string, values: unknown[] = []) => {
          try {
            return (await db.query<Record<string, unknown>>(sql, values)).rows;
          } catch (err) {
            throw failOn(db, this.target, doing, err);
          }
        };
        const t0 = performance.now();
        const [{ there }] = (await run('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS there', [qualified(VECS_SCHEMA, i.name)])) as [{ there: boolean }];
        if (there) {
          this.dropped = this.dropped.filter((d) => d !== i);
          continue;
        }
        // The same settings as apply's builds: index.build, or maintenance_work_mem raised to what the build needs.
        const settings = this.spec.index === undefined
          ? { statements: [], label: '' }
          : await rebuildSettings(db, this.spec.table, i.definition, this.spec.index, this.spec.dimension).catch((err: unknown) => {
              throw failOn(db, this.target, doing, err);
            });
        const build = async () => {
          await run('BEGIN');
          try {
            // The build may take hours; waiting for the table's lock may not.
            await run("SELECT pg_catalog.set_config('lock_timeout', $1, true)", [String(this.opts.statementTimeoutMs ?? 30_000)]);
            for (const set of settings.statements) await run(set);
            await queryUnbounded(db, i.definition, { local: true });
            if (i.comment !== null) await run(`COMMENT ON INDEX ${qualified(VECS_SCHEMA, i.name)} IS ${literal(i.comment)}`);
            await run('COMMIT');
          } catch (err) {
            if (usable(db)) await db.query('ROLLBACK').catch(() => undefined);
            throw failOn(db, this.target, doing, err);
          }
        };
        const pid = sink ? await backendPid(db) : undefined;
        if (sink && pid !== undefined) {
          await withIndexProgress(this.target, pid, { id: `index:${this.spec.secondary}:${index}`, label: `building index ${index} on ${this.spec.secondary}${settings.label}` }, sink, build);
        } else {
          await build();
        }
        this.dropped = this.dropped.filter((d) => d !== i);
        built.push({ name: i.name, ms: Math.round(performance.now() - t0) });
      }
    } finally {
      if (own) await close(own);
    }
    return built;
  }

  async commit(): Promise<void> {
    await this.q(`committing the load into ${VECS_SCHEMA}.${this.spec.table}`, 'COMMIT');
  }

  /**
   * After a committed load: fresh planner statistics for the table (autovacuum would take its time), so the first
   * filtered searches and the primary's estimates see the rows. Best effort: false when it could not run.
   *
   * SKIP_LOCKED: when another session holds the table's SHARE UPDATE EXCLUSIVE lock — an apply's CREATE INDEX
   * CONCURRENTLY — the table is skipped (autovacuum analyzes it later). Waiting would deadlock: ANALYZE takes its
   * snapshot before the lock, and the build's last phase waits for every older snapshot to go; PostgreSQL then
   * cancelled the build, which left an INVALID index.
   */
  async analyze(): Promise<boolean> {
    if (!usable(this.db)) return false;
    return this.db.query(`ANALYZE (SKIP_LOCKED) ${qualified(VECS_SCHEMA, this.spec.table)}`).then(() => true, () => false);
  }

  /** Rolls back the load's transaction, when the connection still answers. Never throws. */
  async rollback(): Promise<void> {
    if (usable(this.db)) await this.db.query('ROLLBACK').catch(() => undefined);
  }

  async close(): Promise<void> {
    await close(this.db);
  }
}
