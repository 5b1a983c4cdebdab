/**
 * The advisory lock that orders a collection's writes through the primary with a move's cutover: `upsert_<c>`
 * takes it shared (transaction-level) before it touches anything, the cutover takes it exclusively first. So no
 * call is half-way through an old definition while the layout switches; one that waited re-checks the layout and,
 * if it changed shape (one secondary ↔ sharded), runs the definition in place now.
 */
import { createHash } from 'node:crypto';

/** 'move' = 0x6d6f7665; apply's own cross-run lock uses another class (src/apply/lock.ts). */
export const WRITE_LOCK_CLASS = 0x6d6f7665;

/** The lock's second key: the first 4 bytes of md5(collection), as a signed int4. */
export const writeLockKey = (collection: string): number => createHash('md5').update(collection).digest().readInt32BE(0);
