/**
 * How shape problems are worded: "did you mean" suggestions, what was written ("got …", never a password), the
 * messages for keys that do not belong, and why a file could not be read.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import { redactUrl } from '../util/url.js';
import { UnreadableFile } from './read-file.js';
import type { TaggedSchema } from './schema.js';

/** The closest candidate for a misspelt name: edit distance ≤ 2, one a prefix of the other, or a shared stem. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word, c);
    const shorter = Math.min(word.length, c.length);
    const prefix = shorter >= 2 && (c.startsWith(word) || word.startsWith(c));
    const stem = commonPrefix(word, c) >= 4;
    if (((d <= 2 && d < word.length) || prefix || stem) && (best === undefined || d < best.d)) best = { name: c, d };
  }
  return best?.name;
}

// Method names are read letter by letter ("an hnsw index"), except words like "none".
const an = (word: string): string => (/^[aeioh]/.test(word) ? `an ${word}` : `a ${word}`);

/** `lists is not a key of an hnsw index`: the key exists, for another variant. */
export function foreignKey(name: string, schema: TaggedSchema, tag: string): string {
  const alone = Object.keys(schema.variants[tag] ?? {}).length === 0;
  return `${name} is not a key of ${an(tag)} ${schema.noun}${alone ? ` (${schema.tag} ${tag} takes no other keys)` : ''}`;
}

export function unknownKey(name: string, known: readonly string[], hint = suggest(name, known)): string {
  return `unknown key "${name}" (${hint ? `did you mean "${hint}"?` : `allowed: ${known.join(', ')}`})`;
}

/** What was written, for "(got …)": strings quoted and cut short, anything URL-like redacted. */
export function describe(node: unknown): string {
  if (node === undefined || node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (!isScalar(node)) return 'an unsupported YAML node';
  const v = node.value;
  if (v === null) return 'nothing';
  if (typeof v !== 'string') return String(v);
  const shown = v.includes('://') ? redactUrl(v) : v;
  return JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown);
}

/** What kind of value was written, without the value: for secrets, where "(got …)" must not quote it. */
export function describeKind(node: unknown): string {
  if (isScalar(node) && node.value !== null && node.value !== undefined) {
    const v = node.value;
    return typeof v === 'string' ? 'a string' : typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : 'a value';
  }
  return describe(node);
}

/** Why a file could not be read, in words (`no such file`), for the topology file and `file:` secrets alike. */
export function readError(e: unknown): string {
  if (e instanceof UnreadableFile) return e.message;
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  // open() of a Unix socket.
  if (code === 'ENXIO') return 'it is a socket or a device without a driver, not a regular file';
  if (code === 'ELOOP') return 'too many symbolic links';
  return e instanceof Error ? e.message : String(e);
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
