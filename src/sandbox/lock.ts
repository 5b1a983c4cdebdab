import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VecscaleError } from '../errors.js';

function holderAlive(lockDir: string): boolean {
  try {
    const pid = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A cross-process lock on a folder (mkdir is atomic). A lock left by a dead process is taken over, so an
 * interrupted `sandbox up` never blocks the next one.
 */
export async function withDirLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() > deadline) {
        throw new VecscaleError('sandbox', `another vecscale process holds ${lockDir}`, { hint: 'wait for it to finish' });
      }
      // A holder that has not written its pid yet is starting: only a lock with a dead pid is taken over.
      await sleep(200);
      let pidWritten = true;
      try {
        readFileSync(join(lockDir, 'pid'));
      } catch {
        pidWritten = false;
      }
      if (pidWritten && !holderAlive(lockDir)) rmSync(lockDir, { recursive: true, force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}
