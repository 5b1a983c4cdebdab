/**
 * Connection URLs carry passwords. Everything vecscale prints goes through `redactUrl`, which keeps
 * `postgres://user@host:port/db` and drops the password, every query parameter (one could be `password=`) and the
 * fragment.
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
  // No user but an `@` later on: an unencoded `/ ? #` in a password ended the authority early, so the "port" or
  // the path holds part of it (postgres://u:1234/x@h/db parses as host u, port 1234). Show none of it.
  if (u.username === '' && u.password === '' && url.slice(url.indexOf('//') + 2).includes('@')) return '<invalid url>';
  const user = u.username ? `${safeDecode(u.username)}@` : '';
  const port = u.port ? `:${u.port}` : '';
  return `${u.protocol}//${user}${u.hostname}${port}${u.pathname}`;
}

/**
 * The URL with `password` in its userinfo, percent-encoded (for a `password:` key). The URL must have a user and
 * no password (the config rules ensure both). It is spliced as text, so nothing else in the URL is re-serialised.
 */
export function withPassword(url: string, password: string): string {
  const scheme = url.indexOf('://');
  const authStart = scheme + 3;
  const rest = url.slice(authStart).search(/[/?#]/);
  const authEnd = rest < 0 ? url.length : authStart + rest;
  const at = url.lastIndexOf('@', authEnd - 1);
  if (scheme < 0 || at < authStart) throw new Error('withPassword: the URL has no user');
  const user = url.slice(authStart, at).split(':')[0] ?? '';
  return `${url.slice(0, authStart)}${user}:${encodeURIComponent(password)}${url.slice(at)}`;
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
