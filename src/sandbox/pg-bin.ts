import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VecscaleError } from '../errors.js';

export const SETUP_SCRIPT = 'scripts/setup.sh';

export interface PgInstall {
  readonly bindir: string;
  /** Major version, e.g. 15. */
  readonly major: number;
  /** Where extension control files live, when it could be determined. */
  readonly sharedir: string | undefined;
}

function versionOf(bindir: string): number | undefined {
  try {
    const out = execFileSync(join(bindir, 'postgres'), ['--version'], { encoding: 'utf8' });
    const m = /(\d+)(?:\.\d+)?/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function candidates(): string[] {
  const found: string[] = [];
  if (process.env.PG_BIN) found.push(process.env.PG_BIN);
  try {
    found.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH: fall through to the Debian layout
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) found.push(join(debian, v, 'bin'));
  }
  return found;
}

/**
 * Finds the PostgreSQL server binaries: `PG_BIN`, then `pg_config --bindir`, then `/usr/lib/postgresql/<version>/bin`
 * (newest first). `PG_BIN` wins outright: when it is set and wrong, that is an error, not a silent fallback.
 */
export function findPostgres(): PgInstall {
  const list = candidates();
  const usable = list.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (process.env.PG_BIN && usable !== process.env.PG_BIN) {
    throw new VecscaleError('environment', `PG_BIN=${process.env.PG_BIN} holds no initdb/pg_ctl`, {
      hint: 'point PG_BIN at a PostgreSQL server bin folder, or unset it',
    });
  }
  if (!usable) {
    throw new VecscaleError('environment', 'PostgreSQL server binaries (initdb, pg_ctl) were not found', {
      hint: `run \`sudo bash ${SETUP_SCRIPT}\` (installs postgresql-15, postgresql-contrib and pgvector), or set PG_BIN`,
    });
  }
  const major = versionOf(usable);
  if (major === undefined) {
    throw new VecscaleError('environment', `could not run ${join(usable, 'postgres')} --version`);
  }
  const sharedirs = [`/usr/share/postgresql/${major}`, join(usable, '..', 'share', 'postgresql'), join(usable, '..', 'share')];
  const sharedir = sharedirs.find((d) => existsSync(join(d, 'extension')));
  return { bindir: usable, major, sharedir };
}

/** Fails early, naming the setup script, when postgres_fdw or pgvector is not installed for this server. */
export function checkExtensionsInstalled(pg: PgInstall): void {
  if (!pg.sharedir) return; // unknown layout: the post-start check against pg_available_extensions decides
  const missing = [
    ['postgres_fdw', 'postgresql-contrib'],
    ['vector', 'pgvector'],
  ].filter(([ext]) => !existsSync(join(pg.sharedir!, 'extension', `${ext}.control`)));
  if (missing.length > 0) {
    throw new VecscaleError(
      'environment',
      `PostgreSQL ${pg.major} lacks ${missing.map(([ext, pkg]) => `${ext} (${pkg})`).join(' and ')}`,
      { hint: `run \`sudo bash ${SETUP_SCRIPT}\`` },
    );
  }
}
