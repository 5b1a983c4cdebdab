/**
 * Statements that carry a password (CREATE/ALTER USER MAPPING … password, CREATE/ALTER ROLE … PASSWORD). The
 * password never appears in the text of any statement vecscale sends, so it is not in `pg_stat_activity.query`,
 * `pg_stat_statements` or a statement log line:
 *
 * 1. each secret is bound as a parameter of `SELECT pg_catalog.set_config('vecscale.secret_<i>', $1, true)` — a
 *    transaction-local setting of this session, which no other session can read;
 * 2. a `DO` block builds the statement in the database with `format('%L', current_setting(…))` and EXECUTEs it; an
 *    error in it is raised again without the statement's text (PL/pgSQL would otherwise quote it in CONTEXT);
 * 3. the settings are cleared.
 *
 * A role's password travels as its SCRAM-SHA-256 verifier (computed here), never as the password. Around all of it the
 * settings that could write a bound parameter or a statement to the server log are turned off for this transaction
 * (`quietly`), where the role may; the plan warns where it may not.
 */
import type { Db } from '../db/connect.js';
import { dollarQuoted, literal, placeholders, replacePlaceholders } from '../sql/quote.js';
import { LOG_SINKS, OPTIONAL_SINKS } from '../model/log-sinks.js';
import { scramVerifier } from '../util/scram.js';

/**
 * Turns the log sinks off for the rest of the transaction (SET LOCAL semantics) and returns a function that puts
 * them back, so the transaction's other DDL is still logged for audit. Returns the settings that could not be set.
 */
async function quiet(db: Db): Promise<{ refused: string[]; restore: () => Promise<void> }> {
  const refused: string[] = [];
  const saved: Array<[string, string]> = [];
  const all = [...LOG_SINKS.map(([n, v]) => [n, v, true] as const), ...OPTIONAL_SINKS.map(([n, v]) => [n, v, false] as const)];
  for (const [name, value, required] of all) {
    const current = await db.query<{ setting: string }>('SELECT setting FROM pg_catalog.pg_settings WHERE name = $1', [name]);
    if (current.rowCount === 0) {
      if (required) refused.push(name);
      continue;
    }
    if (current.rows[0]!.setting === value) continue;
    await db.query('SAVEPOINT vecscale_log');
    try {
      await db.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      await db.query('RELEASE SAVEPOINT vecscale_log');
      saved.push([name, current.rows[0]!.setting]);
    } catch {
      await db.query('ROLLBACK TO SAVEPOINT vecscale_log');
      refused.push(name);
    }
  }
  return {
    refused,
    restore: async () => {
      for (const [name, setting] of saved) await db.query('SELECT pg_catalog.set_config($1, $2, true)', [name, setting]);
    },
  };
}

const slot = (i: number): string => `vecscale.secret_${i}`;

/**
 * The DO block that runs `sql` with each placeholder filled from a session setting. `%` in the statement is doubled
 * for format(); the statement itself is a literal inside a dollar quote whose tag it cannot contain.
 */
export function secretStatementBlock(sql: string): string {
  let i = 0;
  const template = replacePlaceholders(sql.replace(/%/g, '%%'), () => `%${++i}$L`);
  // The placeholders were found before % was doubled; doubling adds no braces, so the same ones are replaced.
  const args = Array.from({ length: i }, (_, k) => `pg_catalog.current_setting(${literal(slot(k))})`);
  const body =
    ` BEGIN EXECUTE pg_catalog.format(${literal(template)}, ${args.join(', ')}); ` +
    // Raised again without the statement's text: PL/pgSQL quotes an EXECUTEd statement in the error's CONTEXT.
    'EXCEPTION WHEN OTHERS THEN RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM; END ';
  return `DO ${dollarQuoted(body)}`;
}

/**
 * Runs one statement carrying placeholders. `secrets` resolves `{{secret:ref}}`; `{{verifier:ref}}` becomes the SCRAM
 * verifier of the same secret. Returns the log settings the role could not turn off (for a warning).
 */
export async function runSecretStatement(db: Db, sql: string, secrets: ReadonlyMap<string, string>): Promise<string[]> {
  const values = placeholders(sql).map((p) => {
    const value = secrets.get(p.ref);
    if (value === undefined) throw new Error(`no secret for placeholder ${p.ref}`);
    return p.form === 'verifier' ? scramVerifier(value) : value;
  });
  const { refused, restore } = await quiet(db);
  try {
    for (const [i, value] of values.entries()) await db.query('SELECT pg_catalog.set_config($1, $2, true)', [slot(i), value]);
    await db.query(secretStatementBlock(sql));
  } finally {
    for (const i of values.keys()) await db.query("SELECT pg_catalog.set_config($1, '', true)", [slot(i)]).catch(() => undefined);
    await restore().catch(() => undefined);
  }
  return refused;
}
