/**
 * src/load/hash.ts against PostgreSQL itself: hashtextextended with and without a seed, satisfies_hash_partition for
 * every modulus 2–64, and real hash-partitioned tables — for empty, ASCII (every tail length of lookup3's 12-byte
 * blocks), multibyte and astral ids.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HASH_PARTITION_SEED, hashBytesExtended, hashCombine64, hashTextExtended, partitionRemainder } from '../../src/load/hash.js';
import { freshDatabases, sql } from '../harness.js';

const dbs = await freshDatabases('load_hash');
const pod = Object.values(dbs.secondaries)[0]!;

/** Deterministic ids: '', every length 1–40 of ASCII, and multibyte ones of many lengths. */
function ids(): string[] {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const ascii = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:./ ';
  const wide = ['ü', 'ß', 'é', '日', '本', '語', '😀', '🧪', '\u0301', 'ж', '\u00a0', '€'];
  const out = ['', ' ', 'a', 'id-1', 'r1', 'hello, world', '\t', 'x'.repeat(100), 'ü'.repeat(13), '😀'.repeat(7)];
  for (let len = 1; len <= 40; len++) out.push(Array.from({ length: len }, () => ascii[Math.floor(rand() * ascii.length)]).join(''));
  for (let k = 0; k < 60; k++) {
    const len = 1 + Math.floor(rand() * 20);
    const pick = (from: readonly string[] | string) => from[Math.floor(rand() * from.length)]!;
    out.push(Array.from({ length: len }, () => pick(rand() < 0.5 ? wide : ascii)).join(''));
  }
  return [...new Set(out)];
}

const SEED = BigInt.asIntN(64, HASH_PARTITION_SEED);

test('hashtextextended: the same 64-bit value as PostgreSQL, with the partition seed, no seed, and other seeds', async () => {
  const all = ids();
  for (const seed of [SEED, 0n, 1n, -1n, 0x123456789abcdefn]) {
    const rows = await sql<{ x: string; h: string }>(pod, 'SELECT x, hashtextextended(x, $2::int8)::text AS h FROM unnest($1::text[]) x', [all, seed.toString()]);
    assert.equal(rows.length, all.length);
    for (const r of rows) assert.equal(hashTextExtended(r.x, seed).toString(), r.h, `id ${JSON.stringify(r.x)}, seed ${seed}`);
  }
});

test('hash_bytes_extended over raw bytes and hash_combine64 match their definitions', () => {
  // No seed: the same as hashing with seed 0 (lookup3 leaves the state alone).
  const k = Buffer.from('abc');
  assert.equal(hashBytesExtended(k, 0n), BigInt.asUintN(64, hashTextExtended('abc', 0n)));
  // hash_combine64(0, b) = b + 0x49a0f4dd15e5a8e3 (mod 2^64): the row hash of a one-key partitioned table.
  assert.equal(hashCombine64(0n, 5n), 5n + 0x49a0f4dd15e5a8e3n);
  assert.equal(hashCombine64(0n, 2n ** 64n - 1n), 0x49a0f4dd15e5a8e3n - 1n);
  // a ≠ 0: a ^= b + k + (a << 54) + (a >> 7), in uint64.
  const a = 0x0123456789abcdefn;
  const b = 0xfedcba9876543210n;
  assert.equal(hashCombine64(a, b), BigInt.asUintN(64, a ^ BigInt.asUintN(64, b + 0x49a0f4dd15e5a8e3n + BigInt.asUintN(64, a << 54n) + (a >> 7n))));
});

test('partitionRemainder agrees with satisfies_hash_partition for every modulus 2–64', async () => {
  await sql(pod, 'CREATE TABLE hash_parent (id varchar) PARTITION BY HASH (id)');
  const all = ids();
  // For each (id, modulus), the one remainder PostgreSQL says the id satisfies.
  const rows = await sql<{ x: string; m: number; r: number[] }>(
    pod,
    `SELECT x, m, array_agg(r ORDER BY r) AS r
       FROM unnest($1::text[]) x, generate_series(2, 64) m, generate_series(0, 63) r
      WHERE r < m AND satisfies_hash_partition('hash_parent'::regclass, m, r, x::varchar)
      GROUP BY x, m`,
    [all],
  );
  assert.equal(rows.length, all.length * 63, 'every id satisfies exactly one remainder of every modulus');
  let checked = 0;
  for (const row of rows) {
    assert.deepEqual(row.r, [partitionRemainder(row.x, row.m)], `id ${JSON.stringify(row.x)}, modulus ${row.m}`);
    checked++;
  }
  assert.equal(checked, all.length * 63);
});

test('real hash-partitioned tables (moduli 2, 3, 4, 7, 64) put every id where partitionRemainder says', async () => {
  const all = ids();
  for (const m of [2, 3, 4, 7, 64]) {
    const parent = `hp_${m}`;
    const parts = Array.from({ length: m }, (_, r) => `CREATE TABLE ${parent}_${r} PARTITION OF ${parent} FOR VALUES WITH (MODULUS ${m}, REMAINDER ${r})`);
    await sql(pod, `CREATE TABLE ${parent} (id varchar PRIMARY KEY) PARTITION BY HASH (id); ${parts.join('; ')}`);
    await sql(pod, `INSERT INTO ${parent} SELECT unnest($1::text[])`, [all]);
    const placed = await sql<{ id: string; part: string }>(pod, `SELECT id, tableoid::regclass::text AS part FROM ${parent}`);
    assert.equal(placed.length, all.length);
    for (const p of placed) assert.equal(p.part, `${parent}_${partitionRemainder(p.id, m)}`, `id ${JSON.stringify(p.id)}, modulus ${m}`);
  }
});

test('a modulus beyond 32 bits of remainder, and bad moduli', () => {
  // Non-powers of two take the 64-bit remainder: check against BigInt arithmetic.
  for (const id of ['', 'a', 'ü日😀', 'x'.repeat(50)]) {
    const row = BigInt.asUintN(64, hashTextExtended(id, SEED) + 0x49a0f4dd15e5a8e3n);
    for (const m of [3, 5, 7, 12, 1000, 65_537, 2 ** 31 - 1, 2 ** 31]) assert.equal(partitionRemainder(id, m), Number(row % BigInt(m)), `id ${JSON.stringify(id)}, modulus ${m}`);
  }
  assert.equal(partitionRemainder('anything', 1), 0);
  assert.throws(() => partitionRemainder('a', 0), RangeError);
  assert.throws(() => partitionRemainder('a', 2.5), RangeError);
});
