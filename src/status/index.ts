/**
 * `vecscale status`: one read-only look at every database, collection and wrapper of a topology (./read.ts), judged
 * against the topology (./report.ts). A client that runs queries: it builds nothing.
 */
import type { Topology } from '../config/types.js';
import { readStatus, type StatusReadOptions } from './read.js';
import { buildReport, type StatusReport } from './report.js';

export type { CollectionStatus, DatabaseStatus, PartStatus, Problem, StatusReport, WrapperStatus } from './report.js';
export { EXACT_COUNT_BYTES, type StatusReadOptions } from './read.js';

/** Reads every database at once and reports; never throws for a database that cannot be reached (a problem then). */
export async function status(topology: Topology, opts: StatusReadOptions = {}): Promise<StatusReport> {
  return buildReport(topology, await readStatus(topology, opts));
}
