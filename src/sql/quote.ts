/**
 * The one module that escapes SQL. Every identifier goes through `ident`, every literal through `literal`;
 * nothing from a topology file reaches SQL any other way. Secrets never enter SQL text at plan time: `secret` and
 * `verifier` write placeholders that only the executor fills, and it never puts their values into statement text
 * either (see src/apply/secrets.ts).
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

/**
 * `$tag$body$tag$` with a tag that does not occur in `body`, so nothing inside (a name, a literal) can end the
 * quoted text early.
 */
export function dollarQuoted(body: string, tag = 'vecscale'): string {
  let t = tag;
  for (let i = 1; body.includes(`$${t}$`); i++) t = `${tag}${i}`;
  return `$${t}$${body}$${t}$`;
}

/** What a placeholder stands for: the secret itself, or (for a role's password) its SCRAM-SHA-256 verifier. */
export type SecretForm = 'secret' | 'verifier';

/** A placeholder standing for a secret literal; plans, renders and plan files carry only this. */
export const secret = (ref: string): string => `{{secret:${ref}}}`;
/** A placeholder standing for the SCRAM-SHA-256 verifier of a secret (`CREATE/ALTER ROLE … PASSWORD`). */
export const verifier = (ref: string): string => `{{verifier:${ref}}}`;

export interface Placeholder {
  readonly form: SecretForm;
  readonly ref: string;
  /** Offsets in the statement, end exclusive. */
  readonly start: number;
  readonly end: number;
}

const PLACEHOLDER = /\{\{(secret|verifier):([a-z0-9_.]+)\}\}/y;

/**
 * The placeholders of a statement, found only where SQL code is: never inside a quoted literal or identifier,
 * a dollar-quoted body or a comment. Every value that comes from a topology reaches SQL quoted (`literal`,
 * `ident`), so a database name like `x{{secret:pod.fdw_password}}` stays the text it is and is never filled in.
 */
export function placeholders(sql: string): Placeholder[] {
  const out: Placeholder[] = [];
  let i = 0;
  const skipTo = (closing: string, from: number): number => {
    const at = sql.indexOf(closing, from);
    return at < 0 ? sql.length : at + closing.length;
  };
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      // '' and "" inside are escapes: scanning on from the next quote handles both.
      let j = i + 1;
      for (;;) {
        j = sql.indexOf(ch, j);
        if (j < 0) return out;
        if (sql[j + 1] === ch) j += 2;
        else break;
      }
      i = j + 1;
    } else if (ch === '-' && sql[i + 1] === '-') {
      i = skipTo('\n', i);
    } else if (ch === '/' && sql[i + 1] === '*') {
      i = skipTo('*/', i + 2);
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      i = tag ? skipTo(tag[0], i + tag[0].length) : i + 1;
    } else if (ch === '{') {
      PLACEHOLDER.lastIndex = i;
      const m = PLACEHOLDER.exec(sql);
      if (m) {
        out.push({ form: m[1] as SecretForm, ref: m[2]!, start: i, end: i + m[0].length });
        i += m[0].length;
      } else i++;
    } else i++;
  }
  return out;
}

/** Whether a statement carries a secret (such statements run through the executor's secret path). */
export const hasSecret = (sql: string): boolean => placeholders(sql).length > 0;

/** Replaces each placeholder with `render(p)`, leaving everything else as it is. */
export function replacePlaceholders(sql: string, render: (p: Placeholder) => string): string {
  let out = '';
  let at = 0;
  for (const p of placeholders(sql)) {
    out += sql.slice(at, p.start) + render(p);
    at = p.end;
  }
  return out + sql.slice(at);
}

/** Shows a statement for humans and plan files: placeholders become a visible redaction. */
export const redactSecrets = (sql: string): string => replacePlaceholders(sql, () => "'<redacted>'");
