/**
 * The rows of vecs tables, asked only where they decide something. Introspection reads sizes from the catalog: a table
 * without pages holds no row. Whether one with pages holds a row — a drop is destructive or not, a layout change is a
 * move or a re-create — and how many rows a never-analyzed table has — an index build's memory note — is asked of the
 * database only for the tables a plan's decisions looked up: `consulting` records those lookups, `probeRows` asks them
 * (one statement per database, whatever the number), `answered` puts the answers into the facts, and the plan is made
 * again (src/api.ts). A converged plan looks nothing up and asks nothing.
 */
import { type Db, silentOr } from '../db/connect.js';
import { type LiveDatabase, type LiveFacts, VECS_SCHEMA } from '../model/state.js';
import { qualified } from '../sql/quote.js';

/** Of one table (by relation key): whether it holds a row, or (`count`) exactly how many. */
export interface RowQuestion {
  readonly key: string;
  readonly count: boolean;
}

/** A set that records the lookups of `watched` keys. */
class Watched extends Set<string> {
  constructor(items: Iterable<string>, private readonly watched: ReadonlySet<string>, private readonly asked: Set<string>) {
    super(items);
  }
  override has(key: string): boolean {
    if (this.watched?.has(key)) this.asked.add(key);
    return super.has(key);
  }
}

/** A map that records the lookups of `watched` keys. */
class WatchedMap<V> extends Map<string, V> {
  constructor(entries: Iterable<readonly [string, V]>, private readonly watched: ReadonlySet<string>, private readonly asked: Set<string>) {
    super(entries);
  }
  override get(key: string): V | undefined {
    if (this.watched?.has(key)) this.asked.add(key);
    return super.get(key);
  }
}

/**
 * The facts, with every lookup of a table not yet asked recorded: `exists` gets those whose holding a row was looked
 * up, `count` those whose row estimate was (never analyzed, small enough to count).
 */
export function consulting(facts: LiveFacts, asked: { readonly exists: Set<string>; readonly count: Set<string> }): LiveFacts {
  const unprobed = facts.unprobed ?? new Set<string>();
  const uncounted = facts.uncounted ?? new Set<string>();
  return {
    ...facts,
    nonEmpty: unprobed.size === 0 ? facts.nonEmpty : new Watched(facts.nonEmpty, unprobed, asked.exists),
    ...(facts.rowEstimates && uncounted.size > 0 ? { rowEstimates: new WatchedMap(facts.rowEstimates, uncounted, asked.count) } : {}),
  };
}

/** What to ask one database: the recorded lookups, and `exact` (tables to count, e.g. those a destructive step drops). */
export function questionsFor(asked: { readonly exists: ReadonlySet<string>; readonly count: ReadonlySet<string> }, exact: Iterable<string>, facts: LiveFacts): RowQuestion[] {
  const count = new Set([...asked.count, ...[...exact].filter((k) => facts.rowCounts?.get(k) === undefined)]);
  const exists = [...asked.exists].filter((k) => !count.has(k) && facts.unprobed?.has(k));
  return [...[...count].map((key) => ({ key, count: true })), ...exists.map((key) => ({ key, count: false }))].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const tableOf = (key: string): string => key.slice(`relation:${VECS_SCHEMA}.`.length);

/**
 * One statement for every question: each branch reads one row at most, or counts. Returns each table's rows (a count)
 * or, for an existence question, 1 when it holds any and 0 when not.
 */
export async function probeRows(db: Db, questions: readonly RowQuestion[]): Promise<Map<string, number>> {
  if (questions.length === 0) return new Map();
  const sql = questions
    .map((q, i) => {
      const table = qualified(VECS_SCHEMA, tableOf(q.key));
      return q.count
        ? `SELECT $${i + 1}::text AS key, pg_catalog.count(*)::pg_catalog.float8 AS rows FROM ${table}`
        : `SELECT $${i + 1}::text AS key, (SELECT pg_catalog.count(*) FROM (SELECT FROM ${table} LIMIT 1) one)::pg_catalog.float8 AS rows`;
    })
    .join(' UNION ALL ');
  try {
    const { rows } = await db.query<{ key: string; rows: number }>(sql, questions.map((q) => q.key));
    return new Map(rows.map((r) => [r.key, Number(r.rows)]));
  } catch (err) {
    throw silentOr(db, `reading which of ${questions.length} tables hold rows`, err) ?? err;
  }
}

/** The facts with the answers in: asked tables known, counted ones with their rows (and exact counts in `rowCounts`). */
export function answered(live: LiveDatabase, questions: readonly RowQuestion[], answers: ReadonlyMap<string, number>): LiveDatabase {
  const f = live.facts;
  const nonEmpty = new Set(f.nonEmpty);
  const unprobed = new Set(f.unprobed);
  const uncounted = new Set(f.uncounted);
  const rowEstimates = new Map(f.rowEstimates);
  const rowCounts = new Map(f.rowCounts);
  for (const q of questions) {
    const rows = answers.get(q.key) ?? 0;
    if (rows > 0) nonEmpty.add(q.key);
    else nonEmpty.delete(q.key);
    unprobed.delete(q.key);
    if (!q.count) continue;
    rowCounts.set(q.key, rows);
    if (uncounted.delete(q.key)) rowEstimates.set(q.key, { rows });
  }
  return { ...live, facts: { ...f, nonEmpty, unprobed, uncounted, rowEstimates, rowCounts } };
}
