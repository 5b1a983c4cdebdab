/**
 * PostgreSQL's hash partitioning of a varchar key, in TypeScript: which partition `FOR VALUES WITH (MODULUS n,
 * REMAINDER i)` a row with this id goes to, computed in Node so `vecscale load` can send each row straight to its
 * partition's pod.
 *
 * The chain (PostgreSQL 11+, unchanged since): compute_partition_hash_value (partitioning/partbounds.c) calls the key
 * type's extended hash support function with HASH_PARTITION_SEED — for varchar that is text's hashtextextended
 * (utils/adt/varlena.c), which for a deterministic collation is hash_any_extended over the string's bytes, i.e.
 * hash_bytes_extended (common/hashfn.c: Bob Jenkins' lookup3, 2006, with a 64-bit seed mixed in as a first 12-byte
 * block) — and folds the one key into a zero row hash with hash_combine64 (common/hashfn.h). The partition is that
 * 64-bit unsigned value modulo the modulus.
 *
 * Assumptions, checked against each pod before a sharded load (checkRouting in ./run.ts): the database stores ids as UTF-8 (so the
 * bytes hashed are the id's UTF-8 bytes), the server is little-endian (lookup3 reads words in the machine's byte
 * order, and every platform PostgreSQL ships on today — x86-64, ARM64 — is little-endian), and the id column's
 * collation is deterministic (a nondeterministic one hashes a sort key instead; vecs' `id varchar` has the
 * database's default collation, which is always deterministic).
 *
 * Pure 32-bit integer arithmetic (no BigInt on the hot path): `| 0` keeps every intermediate an int32, as C's uint32
 * arithmetic wraps; `>>> 0` reads one back as unsigned.
 */

/** partbounds.h: HASH_PARTITION_SEED = UINT64CONST(0x7A5B22367996DCFD). */
export const HASH_PARTITION_SEED = 0x7a5b22367996dcfdn;
/** hash_combine64's constant, "64bit random data". */
export const HASH_COMBINE64_CONSTANT = 0x49a0f4dd15e5a8e3n;

const SEED_HI = 0x7a5b2236;
const SEED_LO = 0x7996dcfd;
const COMBINE_HI = 0x49a0f4dd;
const COMBINE_LO = 0x15e5a8e3;
const TWO_32 = 0x1_0000_0000;

const rot = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** The little-endian 32-bit word of `k` at byte `i` (callers read whole words only). */
const word = (k: Uint8Array, i: number): number => k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24);

/**
 * hash_bytes_extended(k, len, seed) on a little-endian machine, as two unsigned 32-bit halves: the result is
 * `(hi << 32) | lo` (lookup3's final b and c). `seedHi`/`seedLo`: the seed's halves (0, 0: no seed).
 */
export function hashBytesExtendedParts(k: Uint8Array, seedHi: number, seedLo: number): { hi: number; lo: number } {
  let len = k.length;
  let a = (0x9e3779b9 + len + 3923095) | 0;
  let b = a;
  let c = a;
  // mix(a, b, c), written out where it is used: V8 inlines nothing across a closure that writes three locals.
  if (seedHi !== 0 || seedLo !== 0) {
    a = (a + seedHi) | 0;
    b = (b + seedLo) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
  }
  let i = 0;
  while (len >= 12) {
    a = (a + word(k, i)) | 0;
    b = (b + word(k, i + 4)) | 0;
    c = (c + word(k, i + 8)) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    i += 12;
    len -= 12;
  }
  // The last 0–11 bytes, little-endian: c's lowest byte is left out (lookup3 reserves it for the length).
  // (C's switch falls through from case len down to case 1: every byte below len is added; additions commute.)
  if (len >= 11) c = (c + (k[i + 10]! << 24)) | 0;
  if (len >= 10) c = (c + (k[i + 9]! << 16)) | 0;
  if (len >= 9) c = (c + (k[i + 8]! << 8)) | 0;
  if (len >= 8) b = (b + (k[i + 7]! << 24)) | 0;
  if (len >= 7) b = (b + (k[i + 6]! << 16)) | 0;
  if (len >= 6) b = (b + (k[i + 5]! << 8)) | 0;
  if (len >= 5) b = (b + k[i + 4]!) | 0;
  if (len >= 4) a = (a + (k[i + 3]! << 24)) | 0;
  if (len >= 3) a = (a + (k[i + 2]! << 16)) | 0;
  if (len >= 2) a = (a + (k[i + 1]! << 8)) | 0;
  if (len >= 1) a = (a + k[i]!) | 0;
  // final(a, b, c)
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return { hi: b >>> 0, lo: c >>> 0 };
}

/** hash_bytes_extended(k, len, seed) as PostgreSQL returns it (uint64). */
export function hashBytesExtended(k: Uint8Array, seed: bigint): bigint {
  const s = BigInt.asUintN(64, seed);
  const { hi, lo } = hashBytesExtendedParts(k, Number(s >> 32n), Number(s & 0xffffffffn));
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** hashtextextended(text, seed) for a UTF-8 database and a deterministic collation, as SQL's signed int8. */
export const hashTextExtended = (text: string, seed: bigint): bigint => BigInt.asIntN(64, hashBytesExtended(Buffer.from(text, 'utf8'), seed));

/** hash_combine64(a, b): `a ^= b + 0x49a0f4dd15e5a8e3 + (a << 54) + (a >> 7)`, in uint64. */
export function hashCombine64(a: bigint, b: bigint): bigint {
  const x = BigInt.asUintN(64, a);
  const y = BigInt.asUintN(64, b);
  return BigInt.asUintN(64, x ^ BigInt.asUintN(64, y + HASH_COMBINE64_CONSTANT + BigInt.asUintN(64, x << 54n) + (x >> 7n)));
}

/**
 * The remainder (0 … modulus−1) of the hash partition a varchar key belongs to: the partition whose bounds are
 * `FOR VALUES WITH (MODULUS modulus, REMAINDER r)`. `key`: the id's UTF-8 bytes. Any modulus 1 … 2³¹ (vecscale's are
 * powers of two; PostgreSQL allows any).
 */
export function partitionRemainderOfBytes(key: Uint8Array, modulus: number): number {
  if (!Number.isInteger(modulus) || modulus < 1 || modulus > 2 ** 31) throw new RangeError(`modulus must be a whole number 1…2^31, got ${modulus}`);
  const { hi, lo } = hashBytesExtendedParts(key, SEED_HI, SEED_LO);
  // rowHash = hash_combine64(0, h) = h + 0x49a0f4dd15e5a8e3 (mod 2^64): a 32-bit add with carry.
  const low = lo + COMBINE_LO;
  const carry = low >= TWO_32 ? 1 : 0;
  const rowLo = low - carry * TWO_32;
  const rowHi = (hi + COMBINE_HI + carry) % TWO_32;
  if ((modulus & (modulus - 1)) === 0 && modulus <= TWO_32 / 2) return rowLo % modulus; // a power of two: the low bits
  // (rowHi · 2^32 + rowLo) mod m, every product below 2^53: rowHi mod m < 2^31, 2^32 mod m < 2^31 — split 2^32 as 2^16·2^16.
  const m = modulus;
  const step = (x: number) => ((x % m) * 65536) % m;
  const hiPart = step(step(rowHi % m));
  return (hiPart + (rowLo % m)) % m;
}

/** The same for a string id (hashed as its UTF-8 bytes). */
export const partitionRemainder = (id: string, modulus: number): number => partitionRemainderOfBytes(Buffer.from(id, 'utf8'), modulus);
