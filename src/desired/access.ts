/**
 * Who may do what to each object vecscale creates: its whole ACL, as the topology declares it. Anything not here is
 * revoked (PUBLIC included), in the transaction that creates the object, and again whenever it drifts.
 *
 * On the primary there are readers (`api_roles`, and `write_roles`, which read too) and writers (`write_roles`).
 * The API relations and functions run as their caller (views `security_invoker`, functions SECURITY INVOKER), so a
 * caller needs its privileges all the way down: the foreign tables in vecscale's private schemas, and USAGE on those
 * schemas. Those schemas are not exposed by PostgREST; granting there lets the API objects work, nothing more. No role
 * gets USAGE on a wrapper server (that would let it build foreign tables over the secondary).
 *
 * On a secondary only the wrapper role gets anything.
 */
import type { Topology } from '../config/types.js';
import type { Acl } from '../model/state.js';
import { byCodePoint } from '../util/fingerprint.js';

const DML = ['DELETE', 'INSERT', 'SELECT', 'UPDATE'] as const;

const sortedUnique = (roles: readonly string[]): string[] => [...new Set(roles)].sort(byCodePoint);

/** `privileges` for each of `roles`. */
export const grantTo = (roles: readonly string[], privileges: readonly string[]): Acl =>
  Object.fromEntries(roles.map((r) => [r, [...privileges].sort(byCodePoint)]));

/** Per grantee, the union of what each ACL grants. */
export function unionAcl(...acls: readonly Acl[]): Acl {
  const out: Record<string, string[]> = {};
  for (const acl of acls) for (const [g, ps] of Object.entries(acl)) out[g] = [...new Set([...(out[g] ?? []), ...ps])].sort(byCodePoint);
  return out;
}

/** The ACLs of the primary's objects. */
export class PrimaryAccess {
  readonly readers: readonly string[];
  readonly writers: readonly string[];

  constructor(topology: Topology) {
    this.writers = sortedUnique(topology.writeRoles);
    this.readers = sortedUnique([...topology.apiRoles, ...topology.writeRoles]);
  }

  /** public.<c>: readers SELECT; writers also INSERT, UPDATE, DELETE (its INSTEAD OF trigger writes as them). */
  apiView(): Acl {
    return unionAcl(grantTo(this.readers, ['SELECT']), grantTo(this.writers, DML));
  }
  /** A foreign table the API view or match_<c> reads. */
  readTable(): Acl {
    return grantTo(this.readers, ['SELECT']);
  }
  /** A foreign table the write trigger or upsert_<c> writes (UPDATE and DELETE find rows, so SELECT too). */
  writeTable(): Acl {
    return grantTo(this.writers, DML);
  }
  /**
   * What upsert_<c> inserts into (each row an upsert on its secondary): vecscale_remote.<c> (with the readers'
   * SELECT), or for a single secondary with standbys vecscale.<c> through its write server.
   */
  upsertTable(): Acl {
    return grantTo(this.writers, ['INSERT']);
  }
  /** vecscale_remote.<c>: read by the readers, upserted into by upsert_<c>. */
  readUpsertTable(): Acl {
    return unionAcl(this.readTable(), this.upsertTable());
  }
  readFunction(): Acl {
    return grantTo(this.readers, ['EXECUTE']);
  }
  writeFunction(): Acl {
    return grantTo(this.writers, ['EXECUTE']);
  }
  /** vecscale_remote and vecscale (the search functions, and what sharded match_<c> calls): readers. */
  readSchema(): Acl {
    return grantTo(this.readers, ['USAGE']);
  }
  /** vecscale_write: writers. */
  writeSchema(): Acl {
    return grantTo(this.writers, ['USAGE']);
  }
}

/** The ACLs of a secondary's objects: the wrapper role's and nobody else's. */
export class SecondaryAccess {
  constructor(readonly wrapper: string) {}

  /** vecs.<c> (or a partition): the primary reads and writes it as the wrapper role. */
  collectionTable(): Acl {
    return grantTo([this.wrapper], DML);
  }
  /** An upsert view: vecscale.<c> of a collection here, a shard's vecscale.<c>_p<i>of<n> (INSERT goes through its trigger). */
  upsertView(): Acl {
    return grantTo([this.wrapper], ['INSERT', 'SELECT']);
  }
  /** vecscale's schema here. */
  schema(): Acl {
    return grantTo([this.wrapper], ['USAGE']);
  }
}
