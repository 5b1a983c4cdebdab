import { redactUrl } from '../../util/url.js';
import { type SandboxCluster, sandboxDown, sandboxStatus, sandboxUp, sandboxUrls } from '../../sandbox/sandbox.js';
import { type Output, table } from '../output.js';

function show(out: Output, clusters: readonly SandboxCluster[]): void {
  if (clusters.length === 0) {
    out.info('No sandbox here. Start one with `vecscale sandbox up`.');
    return;
  }
  const paint = (s: string) => (s === 'running' ? out.color.green(s) : s === 'stopped' ? out.color.yellow(s) : out.color.red(s));
  const rows = clusters.map((c) => [c.name, c.role, paint(c.status), redactUrl(c.url), c.dataDir]);
  out.info(table(['cluster', 'role', 'status', 'url', 'data'], rows));
}

export async function up(opts: { secondaries?: number; replicas?: number; fast?: boolean }, out: Output): Promise<void> {
  const clusters = await sandboxUp({ secondaries: opts.secondaries, replicas: opts.replicas, fast: opts.fast });
  if (out.json) {
    out.result(sandboxUrls(clusters));
    return;
  }
  show(out, clusters);
  out.info(`\nSandbox superuser: postgres, password sandbox-password (fixed; loopback only). Machine-readable URLs: vecscale sandbox up --json`);
}

export async function down(opts: { purge?: boolean }, out: Output): Promise<void> {
  const clusters = await sandboxDown({ purge: opts.purge });
  if (out.json) out.result(clusters.map(({ url, ...c }) => ({ ...c, url: redactUrl(url) })));
  else show(out, clusters);
}

export async function status(_opts: unknown, out: Output): Promise<void> {
  const clusters = await sandboxStatus();
  if (out.json) out.result(clusters.map(({ url, ...c }) => ({ ...c, url: redactUrl(url) })));
  else show(out, clusters);
}
