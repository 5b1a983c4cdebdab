/**
 * What a failed step outside the transaction left behind. CREATE INDEX CONCURRENTLY commits its catalog entry
 * before it builds: interrupted (the server stopped, the session was killed, a cancel, a unique violation), it
 * leaves an INVALID index under its name — queries do not use it, writes still maintain it, and it stays until
 * dropped. Its step's mark (COMMENT ON INDEX, vecscale's ownership) comes after the build and never ran, so the next
 * plan would see an index vecscale did not make, and refuse to touch it: the mark is set on the leftover here, where
 * the database can be asked, and the next plan replaces it (`index is invalid`) — the next apply rebuilds it.
 */
import { close, connect, type Db, targetOf, usable } from '../db/connect.js';

/** `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] <name> ON <schema>.<table> …` as vecscale writes it. */
const CONCURRENT_BUILD =
  /^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][\w$]*)\s+ON\s+(?:ONLY\s+)?("(?:[^"]|"")+"|[A-Za-z_][\w$]*)\./i;

/** An identifier as PostgreSQL reads it: quoted as written, unquoted folded to lower case. */
const unquoteIdent = (id: string): string => (id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id.toLowerCase());

/** How long asking about the leftover may take: it only refines a message. */
const ASK_MS = 5_000;

type IndexState = 'valid' | 'invalid' | 'absent';

async function indexState(db: Db, regclass: string): Promise<IndexState> {
  const r = await db.query<{ valid: boolean | null }>(
    'SELECT (SELECT i.indisvalid FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass($1)) AS valid',
    [regclass],
  );
  const v = r.rows[0]?.valid;
  return v === true ? 'valid' : v === false ? 'invalid' : 'absent';
}

/** Runs the step's COMMENT ON INDEX statements for the index `regclass` (the mark that never ran). */
async function mark(db: Db, statements: readonly string[], regclass: string): Promise<boolean> {
  const marks = statements.filter((x) => x.startsWith(`COMMENT ON INDEX ${regclass} `));
  for (const x of marks) await db.query(x);
  return marks.length > 0;
}

/**
 * A sentence for the failure message about what `failed` (the failed statement of a step whose statements are
 * `statements`) left, or undefined when it leaves nothing of note. Asks the database — on the same connection when
 * it still answers, else briefly on a new one — and marks an INVALID leftover as vecscale's; when the database
 * cannot be asked, says what may be left and how to remove it.
 */
export async function describeLeftover(db: Db, statements: readonly string[], failed: string): Promise<string | undefined> {
  const m = CONCURRENT_BUILD.exec(failed);
  if (!m) return undefined;
  const name = `${m[2]!}.${m[1]!}`;
  const shown = `${unquoteIdent(m[2]!)}.${unquoteIdent(m[1]!)}`;
  const ask = async (on: Db): Promise<{ state: IndexState; marked: boolean }> => {
    const state = await indexState(on, name);
    return { state, marked: state === 'invalid' && (await mark(on, statements.slice(statements.indexOf(failed) + 1), name)) };
  };
  let found: { state: IndexState; marked: boolean } | undefined;
  // The same connection when it still answers (a cancel, a unique violation), else a new one (the session was
  // killed, the server restarted).
  if (usable(db)) found = await ask(db).catch(() => undefined);
  const target = targetOf(db);
  if (found === undefined && target) {
    try {
      const fresh = await connect(target, { timeoutMs: ASK_MS, statementTimeoutMs: ASK_MS, applicationName: 'vecscale apply' });
      try {
        found = await ask(fresh);
      } finally {
        await close(fresh);
      }
    } catch {
      // The database cannot be asked (stopped, unreachable): say what may be left.
    }
  }
  switch (found?.state) {
    case 'invalid':
      return found.marked
        ? `the interrupted build left the INVALID index ${shown} (queries do not use it; marked as vecscale's: the next apply drops and rebuilds it)`
        : `the interrupted build left the INVALID index ${shown} (queries do not use it; DROP INDEX CONCURRENTLY ${name} removes it)`;
    case 'absent':
      return `the interrupted build left no index ${shown}`;
    case 'valid':
      return undefined;
    default:
      return `the interrupted build may have left the INVALID index ${shown} (the database could not be asked; if it is there, DROP INDEX CONCURRENTLY ${name} removes it, and the next apply builds it again)`;
  }
}
