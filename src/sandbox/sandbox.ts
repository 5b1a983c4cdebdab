/**
 * `vecscale sandbox`: real local PostgreSQL clusters (one primary, N secondaries) made with initdb under a
 * project-local folder, listening on 127.0.0.1 only. The sandbox superuser has a fixed, well-known password
 * (`sandbox-password`, in the spirit of `supabase start`): it guards nothing but throwaway loopback clusters.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { VecscaleError } from '../errors.js';
import { checkExtensionsInstalled, findPostgres, type PgInstall, SETUP_SCRIPT } from './pg-bin.js';
import { chooseDataRoot, chownToPostgres, nextFreePort, portIsFree } from './host.js';
import { runPg } from './run.js';
import { withDirLock } from './lock.js';

export const SANDBOX_USER = 'postgres';
export const SANDBOX_PASSWORD = 'sandbox-password';
const DEFAULT_BASE_PORT = 54320;
const DEFAULT_SECONDARIES = 2;

export interface SandboxOptions {
  /** Folder holding the sandbox state (default `$VECSCALE_SANDBOX_DIR` or `./.vecscale/sandbox`). */
  readonly dir?: string;
  /** Number of secondaries `up` ensures (default: as many as exist, at least 2). */
  readonly secondaries?: number;
  /** First port tried (default `$VECSCALE_SANDBOX_PORT` or 54320). */
  readonly basePort?: number;
  /** Trade durability for speed (fsync off): for test clusters. */
  readonly fast?: boolean;
  /** Streaming standbys `up` ensures per secondary (default: as many as exist, none for a new sandbox). */
  readonly replicas?: number;
}

export type ClusterStatus = 'running' | 'stopped' | 'missing';

export interface SandboxCluster {
  readonly name: string;
  readonly role: 'primary' | 'secondary' | 'replica';
  /** A replica's secondary (it is a physical standby of it). */
  readonly of?: string;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly status: ClusterStatus;
}

/** The shape `sandbox up --json` prints. */
export interface SandboxUrls {
  readonly primary: string;
  readonly secondaries: Readonly<Record<string, string>>;
  /** Per secondary, the URLs of its streaming standbys (only when the sandbox has any). */
  readonly replicas?: Readonly<Record<string, readonly string[]>>;
}

interface StateFile {
  readonly version: 1;
  readonly dataRoot: string;
  readonly fast: boolean;
  readonly clusters: ReadonlyArray<{ readonly name: string; readonly port: number }>;
}

export const sandboxDir = (opts: SandboxOptions = {}): string =>
  resolve(opts.dir ?? process.env.VECSCALE_SANDBOX_DIR ?? join(process.cwd(), '.vecscale', 'sandbox'));

const stateFile = (dir: string): string => join(dir, 'sandbox.json');
const secondaryName = (i: number): string => `pod_${i + 1}`;
const replicaName = (secondary: string, j: number): string => `${secondary}_replica_${j + 1}`;
const REPLICA_NAME = /^(pod_\d+)_replica_\d+$/;
/** The secondary a replica's cluster name belongs to, or undefined for the primary and the secondaries. */
const replicaOf = (name: string): string | undefined => REPLICA_NAME.exec(name)?.[1];
const urlFor = (port: number): string => `postgresql://${SANDBOX_USER}:${SANDBOX_PASSWORD}@127.0.0.1:${port}/postgres`;

function readState(dir: string): StateFile | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    if (s.version !== 1 || !Array.isArray(s.clusters)) throw new Error('unknown version');
    return s;
  } catch (e) {
    throw new VecscaleError('sandbox', `${file} is unreadable (${(e as Error).message})`, {
      hint: 'remove the sandbox folder and run `vecscale sandbox up` again',
    });
  }
}

function clusterPaths(dataRoot: string, name: string): { dataDir: string; logFile: string } {
  return { dataDir: join(dataRoot, name), logFile: join(dataRoot, `${name}.log`) };
}

async function clusterStatus(pgi: PgInstall, dataRoot: string, name: string): Promise<ClusterStatus> {
  const { dataDir } = clusterPaths(dataRoot, name);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) return 'missing';
  const r = await runPg(join(pgi.bindir, 'pg_ctl'), ['-D', dataDir, 'status'], { cwd: dataRoot });
  return r.code === 0 ? 'running' : 'stopped';
}

function serverConfig(port: number, fast: boolean): string {
  const lines = [
    '',
    '# --- vecscale sandbox ---',
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    "unix_socket_directories = ''",
    'max_connections = 200',
    "password_encryption = 'scram-sha-256'",
  ];
  if (fast) lines.push('fsync = off', 'synchronous_commit = off', 'full_page_writes = off');
  return `${lines.join('\n')}\n${REPLICATION_CONFIG}`;
}

/**
 * Moves copy rows by logical replication (see src/move/): every sandbox cluster can publish and subscribe. A cluster
 * made before these lines were added gets them appended, and is restarted (wal_level takes effect on restart only).
 */
const REPLICATION_MARK = '# --- vecscale sandbox: logical replication ---';
const REPLICATION_CONFIG = [
  REPLICATION_MARK,
  'wal_level = logical',
  'max_replication_slots = 32',
  'max_wal_senders = 32',
  'max_logical_replication_workers = 16',
  'max_worker_processes = 24',
  '',
].join('\n');

/** Whether the cluster's configuration still lacks the replication lines (appended now if so). */
function ensureReplicationConfig(dataRoot: string, name: string): boolean {
  const conf = join(clusterPaths(dataRoot, name).dataDir, 'postgresql.conf');
  if (readFileSync(conf, 'utf8').includes(REPLICATION_MARK)) return false;
  appendFileSync(conf, `\n${REPLICATION_CONFIG}`);
  return true;
}

async function initCluster(pgi: PgInstall, dataRoot: string, name: string, port: number, fast: boolean): Promise<void> {
  const { dataDir } = clusterPaths(dataRoot, name);
  rmSync(dataDir, { recursive: true, force: true }); // a half-made folder from an interrupted initdb
  // initdb reads the superuser password from a file; it lives for the duration of initdb, readable by postgres only.
  const pwfile = join(dataRoot, `.pwfile-${name}`);
  writeFileSync(pwfile, `${SANDBOX_PASSWORD}\n`, { mode: 0o600 });
  chownToPostgres(pwfile);
  let r;
  try {
    r = await runPg(
      join(pgi.bindir, 'initdb'),
      ['-D', dataDir, '-U', SANDBOX_USER, '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C'],
      { cwd: dataRoot },
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  if (r.code !== 0) {
    throw new VecscaleError('sandbox', `initdb failed for ${name}: ${lastLines(r.stderr || r.stdout)}`);
  }
  appendFileSync(join(dataDir, 'postgresql.conf'), serverConfig(port, fast));
}

/**
 * A streaming standby of a secondary: pg_basebackup -R (it writes standby.signal and primary_conninfo, with the
 * sandbox's fixed password) from the running secondary, then its own port. initdb's pg_hba already allows
 * replication connections on loopback, and every sandbox cluster has wal senders (REPLICATION_CONFIG).
 */
async function initReplica(pgi: PgInstall, dataRoot: string, name: string, port: number, sourcePort: number): Promise<void> {
  const { dataDir } = clusterPaths(dataRoot, name);
  rmSync(dataDir, { recursive: true, force: true });
  const conninfo = `host=127.0.0.1 port=${sourcePort} user=${SANDBOX_USER} password=${SANDBOX_PASSWORD} application_name=${name}`;
  const r = await runPg(join(pgi.bindir, 'pg_basebackup'), ['-D', dataDir, '-d', conninfo, '-R', '-X', 'stream', '-c', 'fast'], { cwd: dataRoot });
  if (r.code !== 0) throw new VecscaleError('sandbox', `pg_basebackup failed for ${name}: ${lastLines(r.stderr || r.stdout)}`);
  // The copied postgresql.conf has its source's port: a later line wins.
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n# --- vecscale sandbox: streaming replica ---\nport = ${port}\nhot_standby = on\n`);
}

async function startCluster(pgi: PgInstall, dataRoot: string, name: string, port: number): Promise<void> {
  const { dataDir, logFile } = clusterPaths(dataRoot, name);
  if (!(await portIsFree(port))) {
    throw new VecscaleError('sandbox', `port ${port} for sandbox cluster ${name} is taken by another program`, {
      hint: 'stop that program, or `vecscale sandbox down --purge` and set VECSCALE_SANDBOX_PORT',
    });
  }
  const r = await runPg(join(pgi.bindir, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], {
    cwd: dataRoot,
  });
  if (r.code !== 0) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    throw new VecscaleError('sandbox', `could not start sandbox cluster ${name}: ${lastLines(log || r.stderr)}`);
  }
}

async function stopCluster(pgi: PgInstall, dataRoot: string, name: string): Promise<void> {
  const { dataDir } = clusterPaths(dataRoot, name);
  const r = await runPg(join(pgi.bindir, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], { cwd: dataRoot });
  if (r.code !== 0) throw new VecscaleError('sandbox', `could not stop ${name}: ${lastLines(r.stderr)}`);
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

async function verifyExtensions(name: string, url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'vecscale sandbox' });
  try {
    await client.connect();
    const r = await client.query<{ name: string }>(
      "SELECT name FROM pg_catalog.pg_available_extensions WHERE name IN ('vector', 'postgres_fdw')",
    );
    const have = new Set(r.rows.map((row) => row.name));
    const missing = ['vector', 'postgres_fdw'].filter((e) => !have.has(e));
    if (missing.length > 0) {
      throw new VecscaleError('environment', `sandbox cluster ${name} cannot offer ${missing.join(', ')}`, {
        hint: `run \`sudo bash ${SETUP_SCRIPT}\``,
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function describe(state: StateFile, name: string, port: number, status: ClusterStatus): SandboxCluster {
  return {
    name,
    role: name === 'primary' ? 'primary' : replicaOf(name) !== undefined ? 'replica' : 'secondary',
    ...(replicaOf(name) === undefined ? {} : { of: replicaOf(name) }),
    port,
    url: urlFor(port),
    status,
    ...clusterPaths(state.dataRoot, name),
  };
}

/** Creates what is missing and starts what is stopped. Safe to run again, and from two processes at once. */
export async function sandboxUp(opts: SandboxOptions = {}): Promise<SandboxCluster[]> {
  const pgi = findPostgres();
  checkExtensionsInstalled(pgi);
  const dir = sandboxDir(opts);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return withDirLock(join(dir, '.lock'), async () => {
    const previous = readState(dir);
    const existing = previous ? previous.clusters.filter((c) => c.name !== 'primary' && replicaOf(c.name) === undefined).length : 0;
    const existingReplicas = Math.max(0, ...(previous?.clusters ?? []).map((c) => replicaOf(c.name)).filter((s) => s !== undefined)
      .map((s, _, all) => all.filter((x) => x === s).length));
    if (opts.replicas !== undefined && opts.replicas < existingReplicas) {
      throw new VecscaleError('sandbox', `the sandbox already has ${existingReplicas} replicas per secondary; it never removes any`, {
        hint: 'run `vecscale sandbox down --purge` first to recreate it with fewer',
      });
    }
    if (opts.secondaries !== undefined && opts.secondaries < existing) {
      throw new VecscaleError('sandbox', `the sandbox already has ${existing} secondaries; it never removes any`, {
        hint: 'run `vecscale sandbox down --purge` first to recreate it smaller',
      });
    }
    const wanted = opts.secondaries ?? (previous ? existing : DEFAULT_SECONDARIES);
    const pods = Array.from({ length: wanted }, (_, i) => secondaryName(i));
    const replicas = opts.replicas ?? existingReplicas;
    // Replicas after the secondaries: each starts from its running secondary.
    const names = ['primary', ...pods, ...pods.flatMap((p) => Array.from({ length: replicas }, (_, j) => replicaName(p, j)))];
    const dataRoot = previous?.dataRoot ?? (await chooseDataRoot(dir));
    if (!existsSync(dataRoot)) {
      mkdirSync(dataRoot, { recursive: true, mode: 0o700 });
      chownToPostgres(dataRoot);
    }
    const fast = previous?.fast ?? opts.fast ?? false;
    const ports = new Map(previous?.clusters.map((c) => [c.name, c.port]) ?? []);
    const basePort = opts.basePort ?? Number(process.env.VECSCALE_SANDBOX_PORT ?? DEFAULT_BASE_PORT);
    for (const name of names) {
      if (!ports.has(name)) ports.set(name, await nextFreePort(basePort, new Set(ports.values())));
    }
    const state: StateFile = { version: 1, dataRoot, fast, clusters: names.map((name) => ({ name, port: ports.get(name)! })) };
    writeFileSync(stateFile(dir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });

    const result: SandboxCluster[] = [];
    for (const { name, port } of state.clusters) {
      let status = await clusterStatus(pgi, dataRoot, name);
      const source = replicaOf(name);
      if (status === 'missing' && source !== undefined) {
        await initReplica(pgi, dataRoot, name, port, ports.get(source)!);
        status = 'stopped';
      } else if (status === 'missing') {
        await initCluster(pgi, dataRoot, name, port, fast);
        status = 'stopped';
      }
      if (source === undefined && ensureReplicationConfig(dataRoot, name) && status === 'running') {
        await stopCluster(pgi, dataRoot, name);
        status = 'stopped';
      }
      if (status === 'stopped') await startCluster(pgi, dataRoot, name, port);
      result.push(describe(state, name, port, 'running'));
    }
    for (const c of result) await verifyExtensions(c.name, c.url);
    return result;
  });
}

/** Stops every cluster of the sandbox; with `purge`, also deletes their data and the sandbox state. */
export async function sandboxDown(opts: SandboxOptions & { purge?: boolean } = {}): Promise<SandboxCluster[]> {
  const dir = sandboxDir(opts);
  const state = readState(dir);
  if (!state) return [];
  const pgi = findPostgres();
  return withDirLock(join(dir, '.lock'), async () => {
    const result: SandboxCluster[] = [];
    // Replicas first: a standby whose source stopped retries its connection every few seconds.
    const order = [...state.clusters].sort((a, b) => Number(replicaOf(b.name) !== undefined) - Number(replicaOf(a.name) !== undefined));
    for (const { name, port } of order) {
      const status = await clusterStatus(pgi, state.dataRoot, name);
      if (status === 'running') await stopCluster(pgi, state.dataRoot, name);
      result.push(describe(state, name, port, opts.purge ? 'missing' : status === 'missing' ? 'missing' : 'stopped'));
    }
    if (opts.purge) {
      rmSync(state.dataRoot, { recursive: true, force: true });
      rmSync(stateFile(dir), { force: true });
    }
    return result;
  });
}

/** Reports each cluster of the sandbox without changing anything. */
export async function sandboxStatus(opts: SandboxOptions = {}): Promise<SandboxCluster[]> {
  const dir = sandboxDir(opts);
  const state = readState(dir);
  if (!state) return [];
  const pgi = findPostgres();
  const out: SandboxCluster[] = [];
  for (const { name, port } of state.clusters) {
    out.push(describe(state, name, port, await clusterStatus(pgi, state.dataRoot, name)));
  }
  return out;
}

/** The `{primary, secondaries}` document of `sandbox up --json`. */
export function sandboxUrls(clusters: readonly SandboxCluster[]): SandboxUrls {
  const primary = clusters.find((c) => c.role === 'primary');
  if (!primary) throw new VecscaleError('sandbox', 'the sandbox has no primary cluster');
  const replicas = clusters.filter((c) => c.role === 'replica');
  const bySecondary: Record<string, string[]> = {};
  for (const r of replicas) (bySecondary[r.of!] ??= []).push(r.url);
  return {
    primary: primary.url,
    secondaries: Object.fromEntries(clusters.filter((c) => c.role === 'secondary').map((c) => [c.name, c.url])),
    ...(replicas.length === 0 ? {} : { replicas: bySecondary }),
  };
}
