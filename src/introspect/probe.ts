/**
 * A login through each foreign server, as the wrappers make it: the catalogs cannot show that a user mapping's
 * password no longer matches its role's (a rotation cut off after the secondary committed, or `ALTER ROLE … PASSWORD`
 * by hand — the wrapper role may do that to itself), and then every query through the primary fails while both
 * databases look right. Reading one row of one foreign table per server logs in through its mapping; it runs in the
 * introspection's read-only transaction, each under a savepoint so a failure leaves the rest intact.
 */
import type { Db } from '../db/connect.js';
import { qualified } from '../sql/quote.js';
import { byCodePoint } from '../util/fingerprint.js';

export interface RawProbe {
  readonly srvname: string;
  /** null: the login (and the read) worked. */
  readonly error: { readonly message: string; readonly passwordRefused: boolean } | null;
}

/** Logs in through each server, by one foreign table of it (`schema`, `name`). Call inside a transaction. */
export async function probeServers(db: Db, tables: ReadonlyMap<string, { readonly schema: string; readonly name: string }>): Promise<RawProbe[]> {
  const out: RawProbe[] = [];
  for (const [srvname, t] of [...tables].sort(([a], [b]) => byCodePoint(a, b))) {
    await db.query('SAVEPOINT vecscale_probe');
    try {
      // NOTE: LIMIT 1 is shipped; the remote reads at most one row. `WHERE false` would never connect.
      await db.query(`SELECT 1 FROM ONLY ${qualified(t.schema, t.name)} LIMIT 1`);
      await db.query('RELEASE SAVEPOINT vecscale_probe');
      out.push({ srvname, error: null });
    } catch (err) {
      await db.query('ROLLBACK TO SAVEPOINT vecscale_probe');
      const e = err as { message?: string; detail?: string };
      // postgres_fdw: "could not connect to server …" with libpq's own message (never the password) as DETAIL.
      const message = [e.message, e.detail].filter(Boolean).join(': ').split('\n')[0] ?? String(err);
      out.push({ srvname, error: { message, passwordRefused: /password authentication failed|password is required/i.test(message) } });
    }
  }
  return out;
}
