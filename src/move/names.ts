/**
 * Names of a move's replication objects. Deterministic (so a plan is byte-identical and a rerun finds what an
 * interrupted run left) and recognisable by their prefix, so any vecscale slot, publication or subscription is
 * found and removed even when the topology no longer names its collection.
 */
import { createHash } from 'node:crypto';

/** Every replication object vecscale creates starts so: slots, publications, subscriptions. */
export const MOVE_PREFIX = 'vecscale_mv_';

const short = (s: string): string => createHash('md5').update(s).digest('hex').slice(0, 10);

/** The part of a name that identifies the collection: what an apply that starts a move of it clears first. */
export const collectionTag = (collection: string): string => `${MOVE_PREFIX}${short(collection)}_`;

/**
 * The publication on `source`, the subscription on `target` and its slot on `source`: one name for the three
 * (at most 12 + 11 + 10 = 33 characters, safe for slot names: lowercase letters, digits and `_`).
 */
export const flowName = (collection: string, source: string, target: string): string =>
  `${collectionTag(collection)}${short(`${source}\u0000${target}`)}`;

/** One end of a flow between databases: the topology's name for it and the database's own name. */
export interface FlowEnd {
  readonly pod: string;
  readonly database: string;
}

/**
 * The name of a flow between two databases. Slots are cluster-wide: two topologies whose pods share clusters (other
 * databases, same pod and collection names) would otherwise collide, so the databases' own names are part of it.
 */
export const replicationName = (collection: string, source: FlowEnd, target: FlowEnd): string =>
  flowName(collection, `${source.pod}\u0000${source.database}`, `${target.pod}\u0000${target.database}`);

export const isMoveObject = (name: string): boolean => name.startsWith(MOVE_PREFIX);
