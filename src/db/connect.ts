/**
 * Connections to the topology's databases. Failures become plain, located errors naming the database (never the
 * password); every connection says who it is (application_name) so lock holders can be named.
 */
import pg from 'pg';
import { VecscaleError } from '../errors.js';
import { redactUrl } from '../util/url.js';

export const APPLICATION_NAME = 'vecscale';

export interface Target {
  /** 'primary' or a secondary's name. */
  readonly database: string;
  readonly url: string;
}

export type Db = pg.Client;

const label = (t: Target): string =>
  `${t.database === 'primary' ? 'the primary' : `secondary ${t.database}`} (${redactUrl(t.url)})`;

/** Maps a driver error to what a user can act on. */
export function connectionError(t: Target, err: unknown): VecscaleError {
  const e = err as { code?: string; message?: string };
  const where = label(t);
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused: is the server running and listening there?',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name could not be resolved',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'connection reset by the server',
    '28P01': 'password authentication failed',
    '28000': 'authentication rejected (pg_hba.conf or role)',
    '3D000': 'database does not exist',
    '57P03': 'the server is starting up or shutting down',
    '53300': 'too many connections',
  };
  const reason =
    (e.code && reasons[e.code]) ??
    (/timeout/i.test(e.message ?? '') ? 'connection timed out' : (e.message ?? String(err)).split('\n')[0]);
  return new VecscaleError('connection', `cannot connect to ${where}: ${reason}`, {
    meta: { database: t.database, url: redactUrl(t.url), reason: e.code ?? null },
  });
}

export interface ConnectOptions {
  readonly timeoutMs?: number;
  /** Every transaction of the session is READ ONLY (plan): a bug cannot write. */
  readonly readOnly?: boolean;
  /** application_name, e.g. `vecscale apply`: how another run's lock message names this one (default `vecscale`). */
  readonly applicationName?: string;
}

/** Opens a connection or throws a `connection` error naming the database. */
export async function connect(t: Target, opts: ConnectOptions = {}): Promise<Db> {
  const client = new pg.Client({
    connectionString: t.url,
    application_name: opts.applicationName ?? APPLICATION_NAME,
    connectionTimeoutMillis: opts.timeoutMs ?? 10_000,
    ...(opts.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
  });
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectionError(t, err);
  }
  return client;
}

/** Connects to every target, all or none: on a failure the opened ones are closed and every failure is named. */
export async function connectAll(targets: readonly Target[], opts: ConnectOptions = {}): Promise<Map<string, Db>> {
  const settled = await Promise.allSettled(targets.map((t) => connect(t, opts)));
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failed.length > 0) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.end().catch(() => undefined) : undefined)));
    if (failed.length === 1) throw failed[0];
    const errors = failed.map((e) => (e instanceof VecscaleError ? e : connectionError({ database: '?', url: '' }, e)));
    throw new VecscaleError('connection', errors.map((e) => e.message).join('\n'), {
      meta: { databases: errors.map((e) => e.meta) },
    });
  }
  return new Map(targets.map((t, i) => [t.database, (settled[i] as PromiseFulfilledResult<Db>).value]));
}

export async function closeAll(dbs: ReadonlyMap<string, Db>): Promise<void> {
  await Promise.all([...dbs.values()].map((db) => db.end().catch(() => undefined)));
}
