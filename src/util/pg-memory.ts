/**
 * PostgreSQL memory sizes as its settings read them (`4GB`, `96MB`, `512kB`): a whole number and a unit, the units
 * case-sensitive and powers of 1024, kB the base unit of maintenance_work_mem.
 */

export const MEMORY_UNITS = { kB: 1, MB: 1024, GB: 1024 ** 2, TB: 1024 ** 3 } as const;
export type MemoryUnit = keyof typeof MEMORY_UNITS;

/** `4GB`, `4 GB`: PostgreSQL allows spaces around the number and before the unit. */
export const MEMORY_PATTERN = '^\\s*[0-9]+\\s*(kB|MB|GB|TB)\\s*$';
const MEMORY_RE = new RegExp(MEMORY_PATTERN);

/** The size in kB, or undefined when `text` is not a whole number with one of PostgreSQL's units. */
export function parseMemoryKb(text: string): number | undefined {
  if (!MEMORY_RE.test(text)) return undefined;
  const m = /([0-9]+)\s*(kB|MB|GB|TB)/.exec(text)!;
  return Number(m[1]) * MEMORY_UNITS[m[2] as MemoryUnit];
}

/** The setting's value as PostgreSQL prints it: the largest unit that divides it (`4GB`, `1536MB`, `100kB`). */
export function memorySetting(kb: number): string {
  const units = Object.entries(MEMORY_UNITS).reverse() as [MemoryUnit, number][];
  const [unit, size] = units.find(([, size]) => kb % size === 0) ?? ['kB', 1];
  return `${kb / size}${unit}`;
}
