/**
 * Seeing a transaction-mode pooler (PgBouncer `pool_mode = transaction`, Supabase's Supavisor on port 6543) over the
 * live connection. Through one, a client's statements run on whichever server session is free, so a session advisory
 * lock, a session setting or a multi-statement DDL run is not what vecscale thinks it is.
 *
 * 1. Free, on every connection: PostgreSQL's BackendKeyData carries the backend's pid, and `pg_backend_pid()` names
 *    the same process. A pooler or proxy in between hands out cancel keys of its own, so the two differ. A proxy that
 *    keeps one server session per client (a session-mode pooler, Neon's proxy) differs too, and is safe: so,
 * 2. only when they differ: a second connection opens a transaction (holding a server session) and reads its pid;
 *    then the first connection reads its pid again. A transaction pooler shows itself either way — the second client
 *    got the first one's server session (PgBouncer reuses the most recently freed one), or the first client had to
 *    move to another. A session-mode pooler keeps the first client's session: same pid, a different one for the
 *    second.
 *
 * A pooler that has a single idle server session and another client grabbing it in between could be missed; a direct
 * connection is never refused (step 1 costs nothing and settles it).
 */
import { VecscaleError } from '../errors.js';
import { redactUrl } from '../util/url.js';
import { close, connect, type ConnectOptions, type Db, describeTarget, type Target } from './connect.js';

const ADVICE =
  'use the database\'s direct URL (Supabase: db.<project>.supabase.co:5432, or the session pooler on port 5432), ' +
  'not a transaction pooler (PgBouncer pool_mode = transaction, Supabase port 6543)';

const pidOf = async (db: Db): Promise<number> => (await db.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0]!.pid;

/** Throws `config` (exit 6) when `db`, whose backend said `backendPid`, goes through a transaction-mode pooler. */
export async function refuseTransactionPooler(db: Db, t: Target, backendPid: number, opts: ConnectOptions): Promise<void> {
  // pg keeps BackendKeyData's pid as processID (not in its type declarations).
  const keyPid = (db as unknown as { processID?: number | null }).processID;
  if (typeof keyPid !== 'number' || keyPid === backendPid) return;
  const other = await connect(t, { ...opts, requireSession: false });
  let evidence: string | undefined;
  try {
    await other.query('BEGIN');
    const held = await pidOf(other);
    const again = await pidOf(db);
    if (held === backendPid) evidence = 'another connection was handed this connection\'s server session';
    else if (again !== backendPid) evidence = 'its server session changed between two transactions';
    await other.query('ROLLBACK');
  } finally {
    await close(other);
  }
  if (evidence === undefined) return;
  throw new VecscaleError(
    'config',
    `${describeTarget(t)} goes through a transaction-mode connection pooler (${evidence}): vecscale holds a session ` +
      'advisory lock and runs DDL across statements, which needs a session of the server\'s own',
    { hint: ADVICE, meta: { database: t.database, url: redactUrl(t.url), reason: 'transaction_pooler' } },
  );
}
