/**
 * Where a test looks for a leaked secret: the test clusters' server logs, and the files a run wrote.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testClusters, TEST_SANDBOX_DIR } from './harness.js';
import { sandboxStatus } from '../src/sandbox/sandbox.js';

/**
 * Each test cluster's log file, by port, when this run can see them (the sandbox the harness or scripts/test.sh
 * started); undefined otherwise.
 */
export async function clusterLogs(): Promise<Map<number, string> | undefined> {
  if (!existsSync(join(TEST_SANDBOX_DIR, 'sandbox.json'))) return undefined;
  const clusters = await testClusters();
  const ports = new Set([clusters.primary, ...Object.values(clusters.secondaries)].map((u) => Number(new URL(u).port)));
  const logs = (await sandboxStatus({ dir: TEST_SANDBOX_DIR })).filter((c) => ports.has(c.port));
  return logs.length === ports.size && logs.every((c) => existsSync(c.logFile)) ? new Map(logs.map((c) => [c.port, c.logFile])) : undefined;
}

/** Every file under dir (recursively): [path, content]. */
export function filesUnder(dir: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push([p, readFileSync(p, 'utf8')]);
  }
  return out;
}
