import { spawn } from 'node:child_process';
import { VecscaleError } from '../errors.js';

/** True when this process runs as root: PostgreSQL refuses root, so server commands then run as `postgres`. */
export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a PostgreSQL server program, as the `postgres` OS user when we are root. `cwd` must be readable by that
 * user: initdb and pg_ctl fail when they cannot resolve their working directory.
 */
export function runPg(program: string, args: readonly string[], opts: { cwd: string; input?: string }): Promise<RunResult> {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, [...args]];
  return new Promise((resolve, reject) => {
    // stdin is a pipe only when we feed it; the started server inherits nothing from us (pg_ctl -l redirects it).
    const child = spawn(cmd, argv, { cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) =>
      reject(new VecscaleError('environment', `could not run ${program}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Whether the `postgres` OS user can read and write `dir` (it cannot under a 0700 /root, for instance). */
export async function postgresCanUse(dir: string): Promise<boolean> {
  if (!isRoot()) return true;
  const r = await runPg('test', ['-w', dir, '-a', '-x', dir], { cwd: '/' });
  return r.code === 0;
}
