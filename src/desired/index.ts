/**
 * Topology → desired state of every database. Pure: the only live inputs (where pgvector and dblink sit, which role
 * vecscale applies as, whether wrapper passwords are kept) arrive as a resolved context.
 */
import { randomBytes } from 'node:crypto';
import type { Topology } from '../config/types.js';
import { fdwSecrets } from '../model/fdw-role.js';
import { type DatabaseState, type DbObject, VECS_SCHEMA } from '../model/state.js';
import { primaryObjects } from './primary.js';
import { secondaryObjects, wrapperRoleObjects } from './secondary.js';

export { exposedColumns, indexName, indexParams, OPCLASS } from './collection.js';
export { GENERATED_FINGERPRINT, MAPPING_ROLE, serverFor, serversOf, sessionOptions, sessionSettings } from './servers.js';

export interface DesiredContext {
  /** Schema holding (or to hold) pgvector on every database. */
  readonly vectorSchema: string;
  /** Schema of dblink on the primary (match_* runs its query on the secondary through it). */
  readonly dblinkSchema: string;
  /** Schema of postgres_fdw on the primary, if installed (vecscale installs it in its own). */
  readonly fdwSchema?: string;
  /** Per database ('primary' or a secondary's name), the role vecscale applies as: it owns what vecscale creates. */
  readonly owners: ReadonlyMap<string, string>;
  /**
   * Per secondary, the wrapper password its user mappings should hold: `keep` the fingerprint they have (a
   * generated password that still works), or `set` a new one (fingerprint of fdw_password, or a fresh generated one).
   * Absent: set.
   */
  readonly fdwPasswords?: ReadonlyMap<string, FdwPassword>;
}

export type FdwPassword = { readonly mode: 'keep'; readonly fingerprint: string } | { readonly mode: 'set'; readonly fingerprint: string };

/**
 * What vecscale creates is owned by the role it applies as there: a SECURITY DEFINER function acts with its owner's
 * rights, an owner holds every privilege on its object, and a server's owner sees its mappings' passwords. Not kept:
 * the vecs client's tables (vecs needs to own them to build its indexes), and objects vecscale does not manage.
 */
const keepsOwner = (o: DbObject): boolean =>
  o.managed &&
  (o.kind === 'function' || o.kind === 'view' || o.kind === 'foreign_table' || o.kind === 'server' || o.kind === 'schema' ||
    (o.kind === 'table' && o.schema !== VECS_SCHEMA));

function toState(database: string, role: DatabaseState['role'], objects: DbObject[], owner: string | undefined): DatabaseState {
  const owned = objects.map((o) => (owner !== undefined && keepsOwner(o) ? ({ ...o, owner } as DbObject) : o));
  return { database, role, objects: new Map(owned.map((o) => [o.key, o])) };
}

/** Desired state of the primary and of every secondary, in topology order (primary first). */
export function buildDesired(topology: Topology, ctx: DesiredContext): DatabaseState[] {
  return [
    toState('primary', 'primary', primaryObjects(topology, ctx), ctx.owners.get('primary')),
    ...topology.secondaries.map((s) =>
      toState(
        s.name,
        'secondary',
        [...secondaryObjects(s.name, s, topology.collections, ctx), ...wrapperRoleObjects(topology, s, ctx)],
        ctx.owners.get(s.name),
      ),
    ),
  ];
}

/** Secrets the executor needs, by placeholder reference: the wrapper passwords (configured, or generated now). */
export function desiredSecrets(topology: Topology): Map<string, string> {
  return fdwSecrets(topology, () => randomBytes(32).toString('base64url'));
}
