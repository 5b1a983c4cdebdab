/**
 * The one module that escapes SQL. Every identifier goes through `ident`, every literal through `literal`;
 * nothing from a topology file reaches SQL any other way. Secrets never enter SQL text at plan time: `secret`
 * writes a placeholder that only the executor resolves (see `resolveSecrets`).
 */

/** Quotes an identifier, always (so a reserved word or a mixed-case name is safe too). */
export function ident(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.name`, both quoted. */
export const qualified = (schema: string, name: string): string => `${ident(schema)}.${ident(name)}`;

/** A standard-conforming string literal ('' doubles quotes; E'' is never needed with standard_conforming_strings). */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('literal contains a NUL byte');
  return `'${value.replace(/'/g, "''")}'`;
}

/** `OPTIONS (k v, …)` in the order given; values are already rendered (a `literal` or a `secret` placeholder). */
export function options(opts: ReadonlyArray<readonly [string, string]>): string {
  return `OPTIONS (${opts.map(([k, v]) => `${ident(k)} ${v}`).join(', ')})`;
}

const SECRET_OPEN = '{{secret:';
const SECRET_RE = /\{\{secret:([a-z0-9_.]+)\}\}/g;

/** A placeholder standing for a secret literal; plans, renders and plan files carry only this. */
export const secret = (ref: string): string => `${SECRET_OPEN}${ref}}}`;

/** Shows a statement for humans and plan files: placeholders become a visible redaction. */
export const redactSecrets = (sql: string): string => sql.replace(SECRET_RE, "'<redacted>'");

/** Whether a statement carries a secret (such statements get log suppression around them). */
export const hasSecret = (sql: string): boolean => new RegExp(SECRET_RE.source).test(sql);

/** Replaces placeholders with quoted literals, just before execution. An unknown reference is a bug: it throws. */
export function resolveSecrets(sql: string, secrets: ReadonlyMap<string, string>): string {
  return sql.replace(SECRET_RE, (_, ref: string) => {
    const value = secrets.get(ref);
    if (value === undefined) throw new Error(`no secret for placeholder ${ref}`);
    return literal(value);
  });
}
