/**
 * Connection URLs carry passwords. Everything vecscale prints goes through `redactUrl`, which keeps
 * `postgres://user@host:port/db` and drops the password and every query parameter that could hold one.
 */
/** decodeURIComponent that keeps a malformed escape as written instead of throwing. */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<invalid url>';
  }
  const user = u.username ? `${safeDecode(u.username)}@` : '';
  const port = u.port ? `:${u.port}` : '';
  return `${u.protocol}//${user}${u.hostname}${port}${u.pathname}`;
}

/** Removes every occurrence of each secret from a text (error messages from drivers may echo input). */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}

export interface PgUrlParts {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Decoded; undefined when the URL has none (trust, peer or .pgpass authentication). */
  readonly password: string | undefined;
  /** libpq parameters from the query string that a foreign server should carry too. */
  readonly sslmode: string | undefined;
}

/** Splits a postgres:// URL (already validated by the config stage) into what a foreign server needs. */
export function parsePgUrl(url: string): PgUrlParts {
  const u = new URL(url);
  return {
    host: safeDecode(u.hostname).replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 5432,
    // NOTE: like libpq (and node-pg), a URL without a database means the database named after the user.
    database: safeDecode(u.pathname.replace(/^\//, '')) || safeDecode(u.username) || 'postgres',
    user: safeDecode(u.username),
    password: u.password ? safeDecode(u.password) : undefined,
    sslmode: u.searchParams.get('sslmode') ?? undefined,
  };
}
