import { createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * A per-process key: password fingerprints compare desired with live values within one run and are worthless
 * outside it, so nothing derived from a password can be persisted or brute-forced from output.
 */
const processKey = randomBytes(32);

export const secretFingerprint = (value: string): string =>
  `hmac:${createHmac('sha256', processKey).update(value).digest('hex').slice(0, 16)}`;

/** Code-point order: locale-independent, so plans sort the same on every machine. */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// The planner asks for the same names' hashes many times (every server and index name of every collection, per
// object that refers to it): a hash object costs microseconds to make, so repeated texts are looked up.
const hashes = new Map<string, string>();
const HASHES_KEPT = 100_000;

/** A short, stable content hash (names, plan ids). */
export const shortHash = (text: string, length = 7): string => {
  let hex = hashes.get(text);
  if (hex === undefined) {
    if (hashes.size >= HASHES_KEPT) hashes.clear();
    hex = createHash('sha256').update(text).digest('hex');
    hashes.set(text, hex);
  }
  return hex.slice(0, length);
};

/** md5 in hex, as PostgreSQL's md5() prints it: recorded in marker comments, never for secrets. */
export const md5 = (text: string): string => createHash('md5').update(text).digest('hex');
