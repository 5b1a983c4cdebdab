/** The test clusters' server logs (tests that prove what a server did or did not write to its log). */
import { existsSync } from 'node:fs';
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
