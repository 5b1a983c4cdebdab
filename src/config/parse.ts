/**
 * Stage 1: the written shape. Walks the `yaml` Document (not plain JS) against `schema.ts` so every problem keeps
 * the line and column it came from; string leaves pass through a transform hook, which is where stage 2 plugs in.
 */
import { type Alias, type Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import { describe, describeKind, foreignKey, suggest, unknownKey } from './messages.js';
import {
  COLUMN_TYPE_ALIASES,
  IDENTIFIER_HINT,
  IDENTIFIER_RE,
  type ListSchema,
  type Loose,
  type Properties,
  type Schema,
  type StringSchema,
  type TaggedSchema,
  type TopologyDocument,
  reservedReason,
  resolveColumnType,
  topologySchema,
} from './schema.js';
import { COLUMN_TYPES, type ConfigProblem } from './types.js';
import { memorySetting, parseMemoryKb } from '../util/pg-memory.js';

export interface Position { readonly line: number; readonly column: number }

/** Where things were written, by dotted path (`collections.docs.index.m`). */
export interface Locator {
  value(path: string): Position | undefined;
  key(path: string): Position | undefined;
  /** The value's position, else the nearest ancestor's: defaulted keys are reported where their parent is. */
  near(path: string): Position | undefined;
}

/** One free-text value as written, handed to the string transform (stage 2). */
export interface StringLeaf {
  readonly path: string;
  readonly schema: StringSchema;
  readonly value: string;
  readonly position: Position;
  /** The node's source text and its offset: lets the transform locate `${…}` inside the value. */
  readonly source: string;
  readonly sourceOffset: number;
  readonly positionOf: (offset: number) => Position;
}
export type StringTransform = (leaf: StringLeaf) => string;

export interface ShapeResult {
  /** Undefined when the YAML cannot be read or its root is not a mapping; otherwise every valid part. */
  readonly document: Loose<TopologyDocument> | undefined;
  readonly problems: readonly ConfigProblem[];
  readonly locate: Locator;
}

/** Parses YAML text and checks it against the topology schema; never throws. */
export function checkShape(text: string, file: string, transform: StringTransform = (l) => l.value): ShapeResult {
  const lineCounter = new LineCounter();
  // NOTE: yaml's own duplicate-key check (uniqueKeys) scans every earlier key of a mapping for each key: quadratic,
  // 25 s for 40k collections. Duplicates are found here instead, in one pass (the walk, then treeFacts).
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  const fatal = doc.errors.length > 0;
  const facts = fatal ? { aliases: new Map(), duplicates: [] } : treeFacts(doc);
  const ctx = new Walk(text, file, lineCounter, facts.aliases, transform);
  const at = (offset: number): Position => ctx.positionOf(offset);
  for (const w of doc.warnings) ctx.report('warning', '', at(w.pos[0]), `YAML: ${w.message}`);
  for (const e of doc.errors) ctx.report('error', '', at(e.pos[0]), `invalid YAML: ${e.message}`);
  if (fatal) return { document: undefined, problems: ctx.problems, locate: ctx };

  const root = doc.contents;
  let document: Loose<TopologyDocument> | undefined;
  if (!isMap(root)) {
    const pos = root?.range ? at(root.range[0]) : { line: 1, column: 1 };
    ctx.report('error', '', pos, `the topology must be a mapping of version, primary, secondaries and collections (got ${describe(root)})`);
  } else {
    const checked = ctx.check(root, topologySchema, '', root.range?.[0] ?? 0);
    // The walk enforces topologySchema and leaves out what is wrong, so its untyped result has this shape.
    document = checked === INVALID ? undefined : (checked as Loose<TopologyDocument>);
  }
  // The walk skips what it does not know (values of unknown keys): duplicates there are named without a path.
  for (const { offset, key } of facts.duplicates) {
    if (!ctx.duplicatesNamed.has(offset)) ctx.report('error', '', at(offset), `duplicate key ${JSON.stringify(key)}`);
  }
  return { document, problems: ctx.problems, locate: ctx };
}

/** What one pass over the YAML tree finds before the walk. */
interface TreeFacts {
  /** What each alias stands for: the last node before it with its anchor, as YAML says. */
  readonly aliases: ReadonlyMap<Alias, unknown>;
  /** Every repeated scalar key of every mapping (compared by value, as YAML does). */
  readonly duplicates: readonly { readonly offset: number; readonly key: string }[];
}

/**
 * Aliases and duplicate keys, in one pass. NOTE: yaml's Alias.resolve(doc) walks the whole document for every alias
 * (quadratic: 20k aliases in a 300 kB file took 16 s), and its duplicate check compares each key with every earlier one.
 */
function treeFacts(doc: Document): TreeFacts {
  const anchors = new Map<string, unknown>();
  const aliases = new Map<Alias, unknown>();
  const duplicates: { offset: number; key: string }[] = [];
  visit(doc, {
    Node(_, node) {
      if (isAlias(node)) aliases.set(node, anchors.get(node.source));
      else if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor) anchors.set(node.anchor, node);
      if (!isMap(node)) return;
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        if (!isScalar(pair.key)) continue;
        const value = pair.key.value;
        if (seen.has(value)) duplicates.push({ offset: pair.key.range?.[0] ?? 0, key: pair.key.source ?? String(value) });
        else seen.add(value);
      }
    },
  });
  return { aliases, duplicates };
}

const INVALID = Symbol('invalid');
/** Values the walk may check beyond the text's length, for aliases reused many times (see Walk.overBudget). */
const ALIAS_ALLOWANCE = 200_000;
type Checked = unknown;
/** Offsets into the text stand for places while walking: a Position is only made for what is reported or asked for. */
type Offset = number;
interface Entry { readonly name: string; readonly keyAt: Offset; readonly value: unknown }

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
/** `collections.docs.index` for `collections.docs.index.m`, `api_roles` for `api_roles[1]`, '' at the top. */
function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
  return cut < 0 ? '' : path.slice(0, cut);
}

class Walk implements Locator {
  readonly problems: ConfigProblem[] = [];
  readonly values = new Map<string, Offset>();
  readonly keys = new Map<string, Offset>();
  /** Offsets of the duplicate keys the walk reported (with their path). */
  readonly duplicatesNamed = new Set<number>();
  private checked = 0;
  /** The outermost alias the walk is inside of, if any. */
  private expanding: Alias | undefined;
  private readonly budget: number;

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly lineCounter: LineCounter,
    private readonly aliases: ReadonlyMap<Alias, unknown>,
    private readonly transform: StringTransform,
  ) {
    this.budget = text.length + ALIAS_ALLOWANCE;
  }

  positionOf(offset: number): Position {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  report(severity: ConfigProblem['severity'], path: string, where: Position | Offset, message: string): void {
    const pos = typeof where === 'number' ? this.positionOf(where) : where;
    this.problems.push({ severity, path, file: this.file, line: pos.line, column: pos.column, message });
  }

  value(path: string): Position | undefined { return this.located(this.values.get(path)); }
  key(path: string): Position | undefined { return this.located(this.keys.get(path)); }
  near(path: string): Position | undefined {
    for (let p = path; ; p = parentPath(p)) {
      const at = this.values.get(p);
      if (at !== undefined || p === '') return this.located(at);
    }
  }

  /**
   * Each written node takes at least one character of the text, so without aliases the walk checks fewer nodes than
   * the text has characters. An alias is walked again wherever it is used: a collection aliased 100k times whose
   * columns alias a mapping of 100k columns is 10^10 checks from a 2 MB file. Past the budget the walk stops, with
   * one problem.
   */
  private overBudget(node: unknown, keyAt: Offset): boolean {
    if (node === undefined || node === null) return false;
    if (++this.checked <= this.budget) return false;
    if (this.checked === this.budget + 1) {
      // Where the alias being expanded is used: a node inside the anchor is the same node at every use.
      const alias = this.expanding ?? (isAlias(node) ? node : undefined);
      this.report('error', '', alias?.range?.[0] ?? keyAt, `YAML aliases expand this file too far (past ${this.budget} values): write the repeated parts out, or reuse less`);
    }
    return true;
  }

  private located(at: Offset | undefined): Position | undefined {
    return at === undefined ? undefined : this.positionOf(at);
  }

  check(node: unknown, schema: Schema, path: string, keyAt: Offset): Checked {
    if (this.overBudget(node, keyAt)) return INVALID;
    if (!isAlias(node) || this.expanding !== undefined) return this.checkNode(node, schema, path, keyAt);
    this.expanding = node;
    try {
      return this.checkNode(node, schema, path, keyAt);
    } finally {
      this.expanding = undefined;
    }
  }

  private checkNode(node: unknown, schema: Schema, path: string, keyAt: Offset): Checked {
    const n = isAlias(node) ? this.aliases.get(node) : node;
    const written = isScalar(n) && n.value === null ? undefined : n;
    const pos = isScalar(written) || isMap(written) || isSeq(written) ? written.range?.[0] ?? 0 : keyAt;
    this.values.set(path, pos);
    const wrong = (expected: string, hint?: string): typeof INVALID => {
      this.report('error', path, pos, `${expected} (got ${describe(written)}${hint ? `; did you mean "${hint}"?` : ''})`);
      return INVALID;
    };
    const v = isScalar(written) ? written.value : undefined;
    switch (schema.kind) {
      case 'literal':
        return v === schema.value ? v : wrong(`must be ${schema.value}`);
      case 'integer':
        return typeof v === 'number' && Number.isInteger(v) && v >= schema.min && v <= schema.max
          ? v
          : wrong(`must be an integer ${schema.min}–${schema.max}`);
      case 'memory': {
        const kb = typeof v === 'string' ? parseMemoryKb(v) : undefined;
        if (kb === undefined) {
          const bare = typeof v === 'number' ? `; PostgreSQL would read ${v} as ${v} kB: write the unit, e.g. ${v}kB` : '';
          return wrong(`must be a size with a unit, as PostgreSQL writes it: a whole number and kB, MB, GB or TB (e.g. 4GB)${bare}`);
        }
        if (kb < schema.min || kb > schema.max) {
          this.report('error', path, pos, `must be ${memorySetting(schema.min)}–${memorySetting(schema.max)}, PostgreSQL's bounds (got ${v})`);
          return INVALID;
        }
        return kb;
      }
      case 'boolean':
        // YAML 1.2: only true/false (any case) are booleans; "yes", "on" and 1 are what they look like.
        return typeof v === 'boolean' ? v : wrong('must be true or false');
      case 'enum': {
        if (typeof v === 'string' && schema.values.includes(v)) return v;
        return wrong(`must be one of ${schema.values.join(', ')}`, typeof v === 'string' ? suggest(v, schema.values) : undefined);
      }
      case 'identifier': {
        if (typeof v !== 'string' || !IDENTIFIER_RE.test(v)) return wrong(`must be a name: ${IDENTIFIER_HINT}`);
        const reserved = reservedReason(schema, v);
        if (reserved === undefined) return v;
        this.report('error', path, pos, `"${v}" is reserved: ${reserved}`);
        return INVALID;
      }
      case 'column-type': {
        if (typeof v !== 'string') return wrong('must be a column type name');
        const type = resolveColumnType(v);
        if (type !== undefined) return type;
        const aliases = Object.keys(COLUMN_TYPE_ALIASES).join(', ');
        this.report('error', path, pos, `unknown column type ${describe(written)}; allowed: ${COLUMN_TYPES.join(', ')} (aliases: ${aliases})`);
        return INVALID;
      }
      case 'string':
        if (schema.format === 'secret' && (!isScalar(written) || typeof v !== 'string')) {
          // An unquoted password may read as a number: say what it is, never what it says.
          this.report('error', path, pos, `must be a string: \${ENV_VAR} or file:<path> (got ${describeKind(written)})`);
          return INVALID;
        }
        if (!isScalar(written) || typeof v !== 'string') return wrong(schema.format === 'postgres-url' ? 'must be a connection URL string' : 'must be a string');
        return this.transform({
          path, schema, value: v, position: this.positionOf(pos),
          source: this.text.slice(written.range?.[0] ?? 0, written.range?.[1] ?? 0),
          sourceOffset: written.range?.[0] ?? 0,
          positionOf: (offset) => this.positionOf(offset),
        });
      case 'list':
        if (written !== undefined && !isSeq(written)) return wrong(`must be a list of ${schema.entry}s`);
        return this.list(written?.items ?? [], schema, path, pos);
      case 'object':
      case 'map':
      case 'tagged': {
        // The tag alone names a variant with its defaults: `index: none` is `index: { method: none }`.
        if (schema.kind === 'tagged' && written !== undefined && !isMap(written)) {
          const variants = Object.keys(schema.variants);
          if (isScalar(written) && typeof v === 'string' && variants.includes(v)) {
            return this.tagged([{ name: schema.tag, keyAt: pos, value: written }], schema, path, keyAt);
          }
          return wrong(`must be a mapping, or one of ${variants.join(', ')}`, typeof v === 'string' ? suggest(v, variants) : undefined);
        }
        if (written !== undefined && !isMap(written)) return wrong(`must be a mapping`);
        const entries = written === undefined ? [] : this.entries(written.items, path);
        if (schema.kind === 'object') return this.object(entries, schema.properties, path, keyAt);
        if (schema.kind === 'map') return this.map(entries, schema.values, schema.entry, path);
        return this.tagged(entries, schema, path, keyAt);
      }
    }
  }

  private object(entries: readonly Entry[], props: Properties, path: string, at: Offset): Checked {
    const explained = new Set<string>();
    for (const e of entries) {
      if (Object.hasOwn(props, e.name)) continue;
      const hint = suggest(e.name, Object.keys(props));
      if (hint !== undefined) explained.add(hint);
      this.report('error', join(path, e.name), e.keyAt, unknownKey(e.name, Object.keys(props), hint));
    }
    return this.properties(entries, props, path, at, {}, explained);
  }

  /** Invalid values are left out rather than defaulted, so later rules never judge a value nobody wrote. */
  private properties(entries: readonly Entry[], props: Properties, path: string, at: Offset, out: Record<string, unknown>, explained = new Set<string>()): Checked {
    for (const [name, schema] of Object.entries(props)) {
      const entry = entries.find((e) => e.name === name);
      // A misspelt key already says "did you mean": "missing required key" for the same key would be noise.
      if (entry === undefined && schema.required && !explained.has(name)) this.report('error', path, at, `missing required key "${name}"`);
      const childPath = join(path, name);
      const value = entry === undefined ? this.fallback(schema, childPath, at) : this.check(entry.value, schema, childPath, entry.keyAt);
      if (value !== INVALID && value !== undefined) out[name] = value;
    }
    return out;
  }

  /** The value of an unwritten (or wrongly written) key: its default, an empty map or list, the default variant. */
  private fallback(schema: Schema, path: string, at: Offset): unknown {
    if (schema.kind === 'map') return new Map();
    if (schema.kind === 'list') return [];
    if (schema.kind === 'tagged') return this.tagged([], schema, path, at);
    // An object of optional keys stands for its defaults; one with required keys is reported by its parent.
    if (schema.kind === 'object') {
      const props = Object.entries(schema.properties);
      if (props.some(([, s]) => s.required)) return undefined;
      return Object.fromEntries(props.flatMap(([k, s]) => {
        const value = this.fallback(s, join(path, k), at);
        return value === undefined ? [] : [[k, value]];
      }));
    }
    return 'default' in schema ? schema.default : undefined;
  }

  /** Items are located as `path[i]`; a repeated item is reported at the repeat and left out. */
  private list(items: readonly unknown[], schema: ListSchema, path: string, at: Offset): Checked {
    const out: unknown[] = [];
    const first = new Map<unknown, number>();
    items.forEach((item, i) => {
      const itemPath = `${path}[${i}]`;
      const value = this.check(item, schema.items, itemPath, at);
      if (value === INVALID || value === undefined) return;
      const seen = first.get(value);
      if (seen !== undefined) {
        this.report('error', itemPath, this.values.get(itemPath) ?? at, `duplicate ${schema.entry} ${JSON.stringify(value)} (already ${path}[${seen}])`);
        return;
      }
      first.set(value, i);
      out.push(value);
    });
    return out;
  }

  private map(entries: readonly Entry[], values: Schema, entry: string, path: string): Checked {
    const out = new Map<string, unknown>();
    for (const e of entries) {
      const nameOk = IDENTIFIER_RE.test(e.name);
      if (!nameOk) this.report('error', join(path, e.name), e.keyAt, `invalid ${entry} name "${e.name}": use ${IDENTIFIER_HINT}`);
      this.keys.set(join(path, e.name), e.keyAt);
      const value = this.check(e.value, values, join(path, e.name), e.keyAt);
      if (nameOk && value !== INVALID) out.set(e.name, value);
    }
    return out;
  }

  private tagged(entries: readonly Entry[], schema: TaggedSchema, path: string, at: Offset): Checked {
    const variants = Object.keys(schema.variants);
    const tagEntry = entries.find((e) => e.name === schema.tag);
    const tagPath = join(path, schema.tag);
    const tag = tagEntry === undefined
      ? schema.default
      : this.check(tagEntry.value, { kind: 'enum', values: variants, description: schema.tagDescription }, tagPath, tagEntry.keyAt);
    const props = typeof tag === 'string' ? schema.variants[tag] : undefined;
    for (const e of entries) {
      if (e.name === schema.tag || (props !== undefined && Object.hasOwn(props, e.name))) continue;
      const owner = variants.find((v) => Object.hasOwn(schema.variants[v] ?? {}, e.name));
      if (owner !== undefined && props === undefined) continue; // the tag is wrong: cannot tell which keys belong
      this.report('error', join(path, e.name), e.keyAt, owner === undefined
        ? unknownKey(e.name, [schema.tag, ...new Set(variants.flatMap((v) => Object.keys(schema.variants[v] ?? {})))])
        : foreignKey(e.name, schema, String(tag)));
    }
    if (props === undefined) return INVALID;
    return this.properties(entries, props, path, at, { [schema.tag]: tag });
  }

  /** Mapping pairs with plain names; duplicates are reported here (with their path) and the first one wins. */
  private entries(items: readonly unknown[], path: string): Entry[] {
    const out: Entry[] = [];
    const names = new Set<string>();
    for (const item of items) {
      if (!isPair(item)) continue;
      const key = isAlias(item.key) ? this.aliases.get(item.key) : item.key;
      const keyAt = (isScalar(key) || isMap(key) || isSeq(key) ? key.range?.[0] : undefined) ?? 0;
      if (!isScalar(key)) {
        this.report('error', path, keyAt, `keys must be plain names (got ${describe(key)})`);
        continue;
      }
      const name = typeof key.value === 'string' ? key.value : key.source ?? String(key.value);
      if (names.has(name)) {
        this.report('error', join(path, name), keyAt, `duplicate key "${name}"`);
        this.duplicatesNamed.add(keyAt);
        continue;
      }
      names.add(name);
      out.push({ name, keyAt, value: item.value });
      this.keys.set(join(path, name), keyAt);
    }
    return out;
  }
}
