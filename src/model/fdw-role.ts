/**
 * The wrapper role: per secondary, the login role the primary's user mappings use (never the secondary's admin).
 * Roles are cluster-wide, so secondaries that are databases of one cluster share one role and one password: they
 * form a group, and the first of them in topology order creates the role. Pure.
 */
import type { SecondarySpec, Topology } from '../config/types.js';
import { clusterOf, parsePgUrl } from '../util/url.js';

/** Secondaries on one cluster (host:port) using one role name share the role, so its password too. */
export const roleGroup = (s: SecondarySpec): string => `${clusterOf(s.url)}/${s.fdwUser}`;

/** Placeholder reference of the wrapper password of a secondary's role (resolved only by the executor). */
export const fdwPasswordRef = (secondary: string): string => `${secondary}.fdw_password`;

/** The secondary that creates the role of `s`'s group (the first of the group in topology order). */
export function roleHome(topology: Topology, s: SecondarySpec): string {
  const group = roleGroup(s);
  return topology.secondaries.find((x) => roleGroup(x) === group)?.name ?? s.name;
}

/** How the primary is named in the role's marker: the URL's `host:port/database` (no user, no password). */
export function primaryIdentity(topology: Topology): string {
  const u = parsePgUrl(topology.primary.url);
  return `${u.host}:${u.port}/${u.database}`;
}

/**
 * Per wrapper-role group, the password value for this run: the configured `fdw_password`, else a fresh random one
 * (used only when the plan sets the password). `generate` is injected so the function stays pure.
 */
export function fdwSecrets(topology: Topology, generate: () => string): Map<string, string> {
  const byGroup = new Map<string, string>();
  const out = new Map<string, string>();
  for (const s of topology.secondaries) {
    const group = roleGroup(s);
    const value = s.fdwPassword ?? byGroup.get(group) ?? generate();
    byGroup.set(group, byGroup.get(group) ?? value);
    out.set(fdwPasswordRef(s.name), value);
  }
  return out;
}
