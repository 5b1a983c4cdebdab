/**
 * How the primary reaches each secondary: one foreign server per settings profile (session settings travel per
 * connection, and postgres_fdw keeps one connection per server), and one user mapping FOR PUBLIC on each, logging in
 * as the secondary's wrapper role. FOR PUBLIC: the API objects run as their callers, so every caller's foreign scan
 * needs a mapping; whether it may scan at all is decided by its privileges on the foreign tables (and no role but the
 * owner may use the server itself, or read the mapping's options).
 */
import { DEFAULT_QUERY_SETTINGS, type QuerySettings, type SecondarySpec, type Topology } from '../config/types.js';
import { fdwPasswordRef } from '../model/fdw-role.js';
import { secondariesOf } from '../model/placement.js';
import { type DbObject, keys } from '../model/state.js';
import { shortHash } from '../util/fingerprint.js';
import { parsePgUrl } from '../util/url.js';
import type { FdwPassword } from './index.js';

/** The role a wrapper's user mapping is for: every role (`FOR PUBLIC`). */
export const MAPPING_ROLE = 'public';

/** Stands for a password generated at apply time: never equal to a live fingerprint, so the mappings get it. */
export const GENERATED_FINGERPRINT = 'hmac:generated';

/**
 * The session settings a secondary's queries need, as a server's `options` (libpq's `-c`): primary-side SETs never
 * reach the secondary. cursor_tuple_fraction=1 makes the remote planner plan the cursor postgres_fdw opens like the
 * query itself.
 */
export function sessionSettings(q: QuerySettings): Array<readonly [string, string]> {
  return [
    ['cursor_tuple_fraction', '1'],
    ['hnsw.ef_search', String(q.efSearch)],
    ['hnsw.iterative_scan', q.iterativeScan],
    ['ivfflat.probes', String(q.probes)],
  ];
}

/** The same settings as a server's libpq `options`. */
export const sessionOptions = (q: QuerySettings): string => sessionSettings(q).map(([k, v]) => `-c ${k}=${v}`).join(' ');

const sameSettings = (a: QuerySettings, b: QuerySettings): boolean => sessionOptions(a) === sessionOptions(b);

/**
 * The server a collection is reached through: the secondary's own name for the default settings, and one server per
 * other settings profile.
 */
export function serverFor(secondary: string, q: QuerySettings): string {
  return sameSettings(q, DEFAULT_QUERY_SETTINGS) ? secondary : `${secondary.slice(0, 53)}_q${shortHash(sessionOptions(q))}`;
}

/** The settings profiles a secondary is reached with: the default, and each of its collections' own. */
export const queryProfiles = (topology: Topology, secondary: string): QuerySettings[] => [
  DEFAULT_QUERY_SETTINGS,
  ...topology.collections.filter((c) => secondariesOf(c).includes(secondary)).map((c) => c.query),
];

/**
 * The server (per settings profile) writes to a secondary with standbys go through (vecscale_write.<c>, upsert_<c>,
 * a sharded collection's partitions, fresh reads): the secondary itself, never a standby. A secondary without
 * standbys has none: its read servers are its write servers, as before replicas.
 */
export const writeServerFor = (secondary: string, q: QuerySettings = DEFAULT_QUERY_SETTINGS): string =>
  `${secondary.slice(0, 53)}_w${shortHash(`write:${sessionOptions(q)}`)}`;

/** Whether reads of this secondary go to its standbys (see serverObjects). */
export const hasReplicas = (s: SecondarySpec): boolean => s.replicas.length > 0;

/** The server a collection's writes go through: its read server, or the write server of a secondary with standbys. */
export const writeServerOf = (s: SecondarySpec, q: QuerySettings): string => (hasReplicas(s) ? writeServerFor(s.name, q) : serverFor(s.name, q));

/** The foreign servers (one per settings profile, and a write server with standbys) through which the primary reaches a secondary. */
export const serversOf = (topology: Topology, secondary: string): string[] => {
  const spec = topology.secondaries.find((s) => s.name === secondary);
  const profiles = queryProfiles(topology, secondary);
  const reads = profiles.map((q) => serverFor(secondary, q));
  return [...new Set(spec !== undefined && hasReplicas(spec) ? [...reads, ...profiles.map((q) => writeServerFor(secondary, q))] : reads)];
};

/**
 * TCP keepalives of the wrappers' connections (libpq options, so dblink's connections through a server get them too).
 * postgres_fdw keeps a connection per server open for the primary's session: without them a secondary host that
 * vanishes (crashed, powered off, cut off) leaves a waiting session hanging until the kernel gives up, hours later.
 * An idle connection is probed after 30 s of silence, every 10 s, and dropped after 3 unanswered probes; data sent
 * and not acknowledged for 60 s (tcp_user_timeout, Linux) drops it too, which keepalives alone do not cover.
 * NOTE: they only see a host that stopped answering TCP. A host whose kernel is alive (its PostgreSQL stopped by
 * SIGSTOP, or stuck) still acknowledges every probe: the statement timeouts cover that.
 */
export const KEEPALIVE_OPTIONS: Readonly<Record<string, string>> = {
  keepalives: '1',
  keepalives_count: '3',
  keepalives_idle: '30',
  keepalives_interval: '10',
  tcp_user_timeout: '60000',
};

/**
 * Where a server connects: the secondary; for the read servers of a secondary with standbys, libpq's multi-host list
 * `secondary,standby1,…` with target_session_attrs=prefer-standby. libpq then takes the first standby that accepts
 * a connection and falls back to the secondary when none does (a second pass over the list, from its first host:
 * the secondary, so a standby that was promoted never serves reads). The secondary first costs one extra connection
 * handshake per new connection; a silent standby costs one connect_timeout (measured: README, "Read replicas").
 */
function serverHosts(s: SecondarySpec, reads: boolean): Record<string, string> {
  const hosts = [s.url, ...(reads ? s.replicas : [])].map(parsePgUrl);
  const options: Record<string, string> = { host: hosts.map((h) => h.host).join(','), port: hosts.map((h) => String(h.port)).join(',') };
  if (hosts.length > 1) options.target_session_attrs = 'prefer-standby';
  return options;
}

/**
 * A server and its user mapping: a read server for the settings profile `q`, or (`write`) the write server of a
 * secondary with standbys. The mapping logs in as the wrapper role on every host: on a standby it exists, with its
 * password, by physical replication.
 */
export function serverObjects(s: SecondarySpec, q: QuerySettings, password: FdwPassword | undefined, write = false): DbObject[] {
  const url = parsePgUrl(s.url);
  const name = write ? writeServerFor(s.name, q) : serverFor(s.name, q);
  const options: Record<string, string> = {
    async_capable: 'true',
    batch_size: '1000',
    // An unreachable secondary fails a call in 10 s instead of hanging the primary's backend.
    connect_timeout: '10',
    dbname: url.database,
    // Without it postgres_fdw ships no pgvector operator, so every kNN query pulls the whole collection.
    extensions: 'vector',
    ...serverHosts(s, !write),
    ...KEEPALIVE_OPTIONS,
    options: sessionOptions(q),
  };
  // The URL's one parameter (config rules refuse every other): absent, libpq's default (prefer), as for vecscale.
  if (url.sslmode) options.sslmode = url.sslmode;
  // The wrapper role, never the secondary's admin: the URL's credentials are vecscale's own.
  const mapping = { user: s.fdwUser, password: (password ?? { mode: 'set', fingerprint: GENERATED_FINGERPRINT }).fingerprint };
  return [
    { kind: 'server', key: keys.server(name), managed: true, name, wrapper: 'postgres_fdw', options, acl: {} },
    {
      kind: 'user_mapping',
      key: keys.userMapping(name, MAPPING_ROLE),
      managed: true,
      server: name,
      role: MAPPING_ROLE,
      options: mapping,
      passwordRef: fdwPasswordRef(s.name),
      dependsOn: [keys.server(name)],
    },
  ];
}
