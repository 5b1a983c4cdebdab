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

/** libpq's sslmode values, weakest first. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * The URL query parameters vecscale accepts: those it carries with one meaning to both ends, its own connection
 * (node-pg, through pgConnection) and the wrappers on the primary (libpq, through the foreign server's options,
 * which dblink connects with too). Every other parameter is refused by the config stage (urlParameterProblem).
 */
export const URL_PARAMETERS = ['sslmode'] as const;

const hasSslMode = (v: string): v is SslMode => (SSL_MODES as readonly string[]).includes(v);

export interface PgUrlParts {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Decoded; undefined when the URL has none (trust, peer or .pgpass authentication). */
  readonly password: string | undefined;
  /** The URL's `sslmode` (validated by the config stage); undefined when not written: libpq's default, prefer. */
  readonly sslmode: SslMode | undefined;
}

/** Splits a postgres:// URL (already validated by the config stage) into what a foreign server needs. */
export function parsePgUrl(url: string): PgUrlParts {
  const u = new URL(url);
  const sslmode = u.searchParams.get('sslmode') ?? undefined;
  return {
    host: safeDecode(u.hostname).replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 5432,
    // NOTE: like libpq (and node-pg), a URL without a database means the database named after the user.
    database: safeDecode(u.pathname.replace(/^\//, '')) || safeDecode(u.username) || 'postgres',
    user: safeDecode(u.username),
    password: u.password ? safeDecode(u.password) : undefined,
    sslmode: sslmode !== undefined && hasSslMode(sslmode) ? sslmode : undefined,
  };
}

/** The cluster a URL reaches, as `host:port` (its databases share roles, slots and the server's memory). */
export const clusterOf = (url: string): string => {
  const u = parsePgUrl(url);
  return `${u.host}:${u.port}`;
};

/** node-pg's `ssl` option: off, or TLS with or without checking the certificate's chain and host name. */
export type PgSsl = false | { readonly rejectUnauthorized: boolean; readonly checkServerIdentity?: () => undefined };

/** How vecscale's own connection reaches a URL: node-pg's connection settings, without the connection string. */
export interface PgConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  /**
   * `ssl` for each attempt, in order: try the next only when the previous one failed (libpq's prefer and allow
   * fall back once, either way round, after any failure of the first attempt, as libpq does).
   */
  readonly ssl: readonly [PgSsl, ...PgSsl[]];
}

const TLS_UNCHECKED: PgSsl = { rejectUnauthorized: false };
// NOTE: node-pg sets the TLS server name to the host, so Node's default check is libpq's verify-full (chain and name).
const TLS_CHAIN_ONLY: PgSsl = { rejectUnauthorized: true, checkServerIdentity: () => undefined };
const TLS_FULL: PgSsl = { rejectUnauthorized: true };

/**
 * libpq's meaning of sslmode, for node-pg. Given a connection string, node-pg reads sslmode its own way (prefer,
 * require and verify-ca all mean verify-full, and nothing falls back to plaintext), so vecscale would reach a
 * secondary differently from the wrappers. The certificate is checked against Node's CAs (NODE_EXTRA_CA_CERTS adds
 * one), as libpq on the primary checks it against ~/.postgresql/root.crt of the primary's server.
 */
const SSL_ATTEMPTS: Readonly<Record<SslMode, readonly [PgSsl, ...PgSsl[]]>> = {
  disable: [false],
  allow: [false, TLS_UNCHECKED],
  prefer: [TLS_UNCHECKED, false],
  require: [TLS_UNCHECKED],
  'verify-ca': [TLS_CHAIN_ONLY],
  'verify-full': [TLS_FULL],
};

/**
 * What node-pg needs to connect to a URL (validated by the config stage) the way libpq would: host, port, database,
 * user and password from the URL, TLS from its sslmode (absent: prefer, libpq's default). Pass these to pg.Client
 * instead of `connectionString`, so node-pg reads nothing of the URL by itself.
 */
export function pgConnection(url: string): PgConnection {
  const p = parsePgUrl(url);
  return { host: p.host, port: p.port, database: p.database, user: p.user, password: p.password, ssl: SSL_ATTEMPTS[p.sslmode ?? 'prefer'] };
}

/** Why a URL's query parameters cannot be used, or undefined (a `password` parameter has a rule of its own). */
export function urlParameterProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const seen = new Set<string>();
  for (const [name, value] of u.searchParams) {
    if (name.toLowerCase() === 'password') continue;
    if (seen.has(name)) return `has parameter ${name} twice: node-pg would use the last, libpq the first; write it once`;
    seen.add(name);
    if (name === 'sslmode') {
      if (!hasSslMode(value)) return `has sslmode=${JSON.stringify(value)}; sslmode is one of ${SSL_MODES.join(', ')}`;
      continue;
    }
    // Never the value: it may be a key's passphrase.
    const looksLike = name.toLowerCase().replace(/[-_]/g, '') === 'sslmode' ? 'did you mean sslmode? ' : '';
    const why = PARAMETER_REASONS[name] ?? 'vecscale cannot carry it to both its own connection and the wrappers on the primary';
    return `has parameter ${name}: ${looksLike}${why} (URLs take only ${URL_PARAMETERS.join(', ')})`;
  }
  return undefined;
}

const inUrl = 'write it in the URL itself (postgres://user@host:port/database): as a parameter it would change vecscale\'s own connection but not the wrapper\'s';
const aFile =
  'it names a file, which vecscale would read on this machine and the primary\'s postgres_fdw on the primary\'s host; ' +
  'to check certificates use sslmode=verify-full, with the CA in NODE_EXTRA_CA_CERTS here and in ~/.postgresql/root.crt of the primary\'s server';

/** Why the parameters people are likely to write are refused, in words. */
const PARAMETER_REASONS: Readonly<Record<string, string>> = {
  host: inUrl,
  hostaddr: inUrl,
  port: inUrl,
  dbname: inUrl,
  database: inUrl,
  user: inUrl,
  options: 'vecscale sets session options itself: its plan sessions read-only, the wrappers\' query settings per collection; a URL\'s options would change one side only',
  application_name: 'vecscale names its own sessions (lock messages name the run) and the wrappers\' are named by the primary',
  fallback_application_name: 'vecscale names its own sessions',
  connect_timeout: 'vecscale\'s own connections take --connect-timeout; the wrappers\' take 10 s',
  keepalives: 'vecscale sets TCP keepalives for its own connections and for the wrappers',
  keepalives_idle: 'vecscale sets TCP keepalives for its own connections and for the wrappers',
  keepalives_interval: 'vecscale sets TCP keepalives for its own connections and for the wrappers',
  keepalives_count: 'vecscale sets TCP keepalives for its own connections and for the wrappers',
  tcp_user_timeout: 'vecscale sets TCP keepalives for its own connections and for the wrappers',
  sslrootcert: aFile,
  sslcert: aFile,
  sslkey: aFile,
  sslcrl: aFile,
  sslcrldir: aFile,
  sslpassword: 'it unlocks a client key file (see sslkey), which vecscale cannot carry to the primary',
  ssl: 'it is node-pg\'s own parameter, unknown to libpq on the primary; write sslmode',
  uselibpqcompat: 'it is node-pg\'s own parameter; vecscale already reads sslmode as libpq does',
  target_session_attrs: 'one host per URL: write the host of the server to use',
  load_balance_hosts: 'one host per URL: write the host of the server to use',
  service: 'a service file is read on each machine: write the connection in the URL',
  passfile: 'it names a file read on each machine: use ${ENV} or password:',
  client_encoding: 'vecscale and the wrappers use UTF-8',
  replication: 'vecscale needs an ordinary session',
  gssencmode: 'vecscale\'s driver (node-pg) has no GSSAPI',
  krbsrvname: 'vecscale\'s driver (node-pg) has no GSSAPI',
  gsslib: 'vecscale\'s driver (node-pg) has no GSSAPI',
  require_auth: 'vecscale\'s driver (node-pg) does not check it',
  channel_binding: 'vecscale\'s driver (node-pg) does not check it',
  sslnegotiation: 'the primary\'s libpq (PostgreSQL 17+ only) and node-pg negotiate TLS differently',
  statement_timeout: 'vecscale sets its own sessions\' timeout (--statement-timeout); the wrappers\' follow the caller',
};

/**
 * Why a URL goes through a transaction-mode pooler, which hands each transaction any server session (so a session
 * advisory lock or a run of DDL is not what vecscale thinks), with the direct URL to use; undefined when it cannot
 * be told from the URL (the connection finds the rest: src/db/pooler.ts).
 */
export function transactionPoolerProblem(url: string): string | undefined {
  let p: PgUrlParts;
  try {
    p = parsePgUrl(url);
  } catch {
    return undefined;
  }
  const host = p.host.toLowerCase();
  if (!/(^|\.)supabase\.(co|com)$/.test(host) || p.port !== 6543) return undefined;
  // The shared pooler's user is <role>.<project ref>; the direct host is db.<ref>.supabase.co, its user <role>.
  const onDirectHost = /^db\.([a-z0-9]+)\.supabase\.co$/.exec(host);
  const viaPooler = onDirectHost === null ? /^(.+)\.([a-z0-9]+)$/.exec(p.user) : null;
  const ref = onDirectHost?.[1] ?? viaPooler?.[2] ?? '<project-ref>';
  const direct = `postgres://${viaPooler?.[1] ?? p.user}@db.${ref}.supabase.co:5432/${p.database}`;
  return (
    `goes through Supabase's transaction pooler (port 6543), which gives each transaction whichever server session is free: ` +
    `vecscale's session advisory lock and its DDL need a session of their own. Use the direct URL (${direct}), or the session pooler (the same pooler host, port 5432)`
  );
}
