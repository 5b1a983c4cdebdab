/** Topology files for tests against the real test clusters: passwords always through ${ENV}. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { parseTopology } from '../src/config/index.js';
import type { Topology } from '../src/config/types.js';
import type { SandboxUrls } from '../src/sandbox/sandbox.js';

/** `postgres://user:${VAR}@host:port/db` for a test database URL, and the env that fills it. */
export function templated(url: string, variable: string): { url: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  return {
    url: `postgres://${u.username}:\${${variable}}@${u.hostname}:${u.port}${u.pathname}`,
    env: { [variable]: password },
  };
}

/** The wrapper role of a test file's databases (freshDatabases drops it when the file ends). */
export const fdwUserFor = (dbs: SandboxUrls): string => `fdw_${(dbs as { name?: string }).name ?? 'test'}`;

export interface TopologyFile {
  readonly path: string;
  readonly dir: string;
  readonly env: Record<string, string>;
  /** Rewrites the file with another collections block. */
  write(collectionsYaml: string): void;
  load(): Topology;
}

/**
 * A topology over fresh test databases: secondaries `pod_a`, `pod_b` on the two test secondaries.
 * `collectionsYaml` is the indented body of `collections:`.
 */
export function topologyFile(dbs: SandboxUrls, collectionsYaml: string, extra = ''): TopologyFile {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-topo-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const [s1, s2] = Object.values(dbs.secondaries);
  const p = templated(dbs.primary, 'VS_PRIMARY_PW');
  const a = templated(s1!, 'VS_POD_A_PW');
  const b = templated(s2!, 'VS_POD_B_PW');
  const env = { ...p.env, ...a.env, ...b.env };
  const path = join(dir, 'topology.yaml');
  // Roles are cluster-wide and test files share the clusters: each file's wrapper role is its own.
  const fdw = `    fdw_user: ${fdwUserFor(dbs)}\n`;
  const render = (collections: string) =>
    `version: 1\n${extra}primary:\n  url: ${p.url}\nsecondaries:\n  pod_a:\n    url: ${a.url}\n${fdw}  pod_b:\n    url: ${b.url}\n${fdw}collections:\n${collections}`;
  let collections = collectionsYaml;
  const file: TopologyFile = {
    path,
    dir,
    env,
    write: (next) => {
      collections = next;
      writeFileSync(path, render(next));
    },
    load: () => {
      const r = parseTopology(render(collections), path, env);
      if (!r.ok) throw new Error(r.problems.map((x) => x.message).join('\n'));
      return r.topology;
    },
  };
  file.write(collectionsYaml);
  return file;
}
