/**
 * The editor schema (JSON Schema draft 2020-12), generated from `schema.ts` so it accepts what the parser accepts.
 * What a JSON Schema cannot say (ef_construction ≥ 2 × m, secondaries that exist, distinct databases) stays in
 * the rules; every key and type is here.
 */
import {
  COLUMN_TYPE_ALIASES,
  IDENTIFIER_PATTERN,
  type IdentifierSchema,
  type Properties,
  type Schema,
  type TaggedSchema,
  topologySchema,
} from './schema.js';
import { COLUMN_TYPES } from './types.js';
import { MEMORY_PATTERN } from '../util/pg-memory.js';

type Json = { [key: string]: unknown };

/** The JSON Schema of the topology file, for editors (`# yaml-language-server: $schema=…`). */
export function topologyJsonSchema(): object {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'vecscale topology',
    ...convert(topologySchema),
  };
}

function convert(schema: Schema): Json {
  const description = schema.description;
  switch (schema.kind) {
    case 'literal':
      return { description, const: schema.value };
    case 'integer':
      return { description, type: 'integer', minimum: schema.min, maximum: schema.max, ...withDefault(schema.default) };
    case 'memory':
      // The bounds are the parser's: a pattern cannot compare sizes across units.
      return { description, type: 'string', pattern: MEMORY_PATTERN };
    case 'boolean':
      return { description, type: 'boolean', ...withDefault(schema.default) };
    case 'enum':
      return { description, type: 'string', enum: [...schema.values], ...withDefault(schema.default) };
    case 'string':
      // A whole URL may come from one variable, so `${` is as good a start as the scheme. A secret's forms
      // (${ENV}, file:) are not a pattern: a literal is only a warning, which JSON Schema cannot express.
      return { description, type: 'string', ...(schema.format === 'postgres-url' ? { pattern: '^(postgres(ql)?://|\\$\\{)' } : {}) };
    case 'identifier':
      return { description, type: 'string', pattern: IDENTIFIER_PATTERN, ...notReserved(schema), ...withDefault(schema.default) };
    case 'column-type': {
      const names = [...COLUMN_TYPES, ...Object.keys(COLUMN_TYPE_ALIASES)];
      // The parser ignores case; the enum gives editors completion, the pattern accepts any case.
      return { description, type: 'string', anyOf: [{ enum: names }, { pattern: caseInsensitive(names) }] };
    }
    case 'object': {
      // Like an empty map, an empty `query:` is null in YAML; an object of optional keys then takes their defaults.
      const optional = Object.values(schema.properties).every((s) => !s.required);
      return { description, ...object(schema.properties), ...(optional ? { type: ['object', 'null'] } : {}) };
    }
    case 'list':
      return { description, type: ['array', 'null'], items: convert(schema.items), uniqueItems: true };
    case 'map':
      // An empty `secondaries:` is null in YAML and means no entries.
      return { description, type: ['object', 'null'], propertyNames: { pattern: IDENTIFIER_PATTERN }, additionalProperties: convert(schema.values) };
    case 'tagged':
      return { description, ...tagged(schema) };
  }
}

function object(props: Properties): Json {
  const required = Object.entries(props).filter(([, s]) => s.required).map(([name]) => name);
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(props).map(([name, s]) => [name, convert(s)])),
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

/**
 * Every variant's keys are declared once so `additionalProperties: false` holds; then one if/then per variant
 * forbids the keys of the others. A missing tag matches the default variant's `if`, as in the parser.
 */
function tagged(schema: TaggedSchema): Json {
  const variants = Object.keys(schema.variants);
  const all: Record<string, Schema> = {};
  for (const props of Object.values(schema.variants)) Object.assign(all, props);
  const base = object({ [schema.tag]: { kind: 'enum', values: variants, default: schema.default, description: schema.tagDescription }, ...all });
  return {
    ...base,
    // `index: none` is `index: { method: none }`: the tag alone names a variant with its defaults (the object keywords
    // below hold vacuously for a string).
    type: ['object', 'null', 'string'],
    allOf: [{ if: { type: 'string' }, then: { enum: variants } }, ...variants.map((variant) => {
      const foreign = Object.keys(all).filter((k) => !Object.hasOwn(schema.variants[variant] ?? {}, k));
      const tag = { properties: { [schema.tag]: { const: variant } }, ...(variant === schema.default ? {} : { required: [schema.tag] }) };
      return { if: tag, then: { properties: Object.fromEntries(foreign.map((k) => [k, false])) } };
    })],
  };
}

/** `not: { anyOf: [{ enum: [postgres, public] }, { pattern: '^pg_' }] }`: reserved names and prefixes. */
function notReserved(schema: IdentifierSchema): Json {
  const keys = Object.keys(schema.reserved ?? {});
  const names = keys.filter((k) => !k.endsWith('*'));
  const prefixes = keys.filter((k) => k.endsWith('*')).map((k) => ({ pattern: `^${k.slice(0, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` }));
  const refused = [...(names.length > 0 ? [{ enum: names }] : []), ...prefixes];
  return refused.length === 0 ? {} : { not: { anyOf: refused } };
}

function withDefault(value: unknown): Json {
  return value === undefined ? {} : { default: value };
}

/** `^\s*(?:[tT][eE][xX][tT]|…)\s*$`: JSON Schema regexes have no flags. */
function caseInsensitive(names: readonly string[]): string {
  const one = (name: string): string =>
    [...name].map((ch) => (ch === ' ' ? '\\s+' : /[a-z]/.test(ch) ? `[${ch}${ch.toUpperCase()}]` : ch)).join('');
  return `^\\s*(?:${names.map(one).join('|')})\\s*$`;
}
