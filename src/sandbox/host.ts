/** The sandbox's footprint on this machine: free loopback ports, and cluster folders the `postgres` OS user owns. */
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { VecscaleError } from '../errors.js';
import { SETUP_SCRIPT } from './pg-bin.js';
import { isRoot, postgresCanUse } from './run.js';

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

export async function nextFreePort(from: number, taken: ReadonlySet<number>): Promise<number> {
  for (let p = from; p < from + 1000; p++) {
    if (!taken.has(p) && (await portIsFree(p))) return p;
  }
  throw new VecscaleError('sandbox', `no free port on 127.0.0.1 in ${from}–${from + 999}`, {
    hint: 'set VECSCALE_SANDBOX_PORT to another range',
  });
}

export function chownToPostgres(path: string): void {
  if (!isRoot()) return;
  const uid = Number(process.env.VECSCALE_PG_UID ?? NaN);
  const ids = Number.isNaN(uid) ? lookupPostgresIds() : { uid, gid: uid };
  chownSync(path, ids.uid, ids.gid);
}

function lookupPostgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const parts = line?.split(':');
  if (!parts || parts.length < 4) {
    throw new VecscaleError('environment', 'there is no `postgres` OS user to run the sandbox clusters as', {
      hint: `run \`sudo bash ${SETUP_SCRIPT}\` (the postgresql package creates it)`,
    });
  }
  return { uid: Number(parts[2]), gid: Number(parts[3]) };
}

/**
 * Cluster data lives in `<dir>/clusters`. As root the clusters run as `postgres`, which must be able to reach that
 * folder; under a 0700 home (a clone in /root) it cannot, so the data goes to /var/tmp/vecscale-<hash of dir>.
 */
export async function chooseDataRoot(dir: string): Promise<string> {
  const local = join(dir, 'clusters');
  mkdirSync(local, { recursive: true, mode: 0o700 });
  chownToPostgres(local);
  if (await postgresCanUse(local)) return local;
  rmSync(local, { recursive: true, force: true });
  const fallback = `/var/tmp/vecscale-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
  mkdirSync(fallback, { recursive: true, mode: 0o700 });
  chownToPostgres(fallback);
  return fallback;
}
