/**
 * The advisory lock that orders a collection's writes through the primary with a move's cutover: `upsert_<c>` and
 * `match_<c>` take it shared (transaction-level) before they touch anything but the view public.<c>, which they lock
 * first (ROW EXCLUSIVE, ACCESS SHARE); the cutover locks the view (ACCESS EXCLUSIVE), then takes this exclusively. So
 * no call is half-way through an old definition while the layout switches; one that waited re-checks the layout and,
 * if it changed shape (one secondary ↔ sharded), runs the definition in place now.
 *
 * The view first on both sides is what keeps this free of lock cycles: a transaction that wrote through the view
 * (UPDATE public.<c>) and then calls upsert_<c> already holds the view, so the cutover waits for it at the view
 * and never holds this lock while it waits.
 */
import { createHash } from 'node:crypto';

/** 'move' = 0x6d6f7665; apply's own cross-run lock uses another class (src/apply/lock.ts). */
export const WRITE_LOCK_CLASS = 0x6d6f7665;

/** The lock's second key: the first 4 bytes of md5(collection), as a signed int4. */
export const writeLockKey = (collection: string): number => createHash('md5').update(collection).digest().readInt32BE(0);
