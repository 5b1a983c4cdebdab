/**
 * The JSON Schema (draft 2020-12) of the documents a plan is published as: `vecscale plan --json` (and `apply
 * --json`'s `plan`), and the saved plan file (`plan --out`). Written to templates/plan.schema.json by `npm run
 * schema`, pinned by test/unit/plan-schema.test.ts, which validates real plans against a closed variant
 * (`additionalProperties: false` everywhere): a field added to the types (src/plan/types.ts) and not here fails it. The
 * published file is open, so a consumer's validator takes the fields a later minor version adds.
 *
 * Versioning, as Terraform's `show -json`: `format_version` is "MAJOR.MINOR". Within a major version documents only
 * gain fields (the minor grows); a consumer checks the major. `formatVersion` (the number 1) is the saved plan's own
 * older field, kept.
 */
import { SYMBOL } from '../render/plan.js';
import { type Action, PLAN_FORMAT_VERSION, type Risk } from './types.js';

const ACTIONS: readonly Action[] = ['create', 'alter', 'adopt', 'replace', 'drop'];
const RISKS: readonly Risk[] = ['safe', 'disruptive', 'destructive'];
/** Every ObjectKind (src/model/state.ts). */
const KINDS = ['extension', 'schema', 'table', 'index', 'view', 'server', 'user_mapping', 'foreign_table', 'function', 'role', 'settings', 'grants'] as const;

type S = Record<string, unknown>;
const str = (description?: string): S => ({ type: 'string', ...(description ? { description } : {}) });
const int = (description?: string): S => ({ type: 'integer', minimum: 0, ...(description ? { description } : {}) });
const strings: S = { type: 'array', items: { type: 'string' } };
const oneOf = (values: readonly string[], description?: string): S => ({ enum: [...values], ...(description ? { description } : {}) });
const ref = (name: string): S => ({ $ref: `#/$defs/${name}` });
const list = (name: string): S => ({ type: 'array', items: ref(name) });
/**
 * An object: these properties, the required ones. Open, as published: a later minor version may add fields, and a
 * consumer's validator must take them (`closed` below makes the copy vecscale's own test validates against).
 */
const object = (properties: Record<string, S>, optional: readonly string[] = [], description?: string): S => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  additionalProperties: true,
});

/** The schema with every object made by `object` closed: a field the types gained and the schema did not fails. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, closed(v)]));
  return out.type === 'object' && out.additionalProperties === true ? { ...out, additionalProperties: false } : out;
}

function definitions(): Record<string, S> {
  const defs: Record<string, S> = {
    step: object(
      {
        id: str('stable id: <database>/<object key>'),
        database: str(),
        action: oneOf(ACTIONS),
        symbol: oneOf([...new Set(Object.values(SYMBOL))], 'the action as the human plan shows it'),
        kind: oneOf(KINDS),
        object: str('e.g. "view public.docs"'),
        drop: { ...strings, description: 'statements that remove the old object (replace) or the object (drop), run first' },
        sql: { ...strings, description: 'statements that create or change the object; secrets only as placeholders' },
        reason: str(),
        risk: oneOf(RISKS),
        collection: str('the collection whose rows a destructive step loses'),
        rows: int('rows a destructive step loses, counted when planned'),
        transactional: { type: 'boolean', description: "false: runs after the database's transaction commits (CREATE INDEX CONCURRENTLY)" },
      },
      ['collection', 'rows', 'symbol'],
    ),
    database: object({
      database: str("'primary' or a secondary's name"),
      role: oneOf(['primary', 'secondary']),
      url: str('redacted: postgres://user@host:port/db'),
      steps: list('step'),
    }),
    blocker: object({ database: str(), object: str(), reason: str() }, [], 'something the plan will not do: apply refuses (exit 3) while any exists'),
    note: object({ database: str(), object: str(), message: str() }),
    movePart: object({ secondary: str(), table: str(), modulus: int(), remainder: int() }, ['modulus', 'remainder']),
    moveFlow: object(
      {
        source: ref('movePart'),
        target: ref('movePart'),
        method: oneOf(['replication', 'trigger']),
        filter: object({ modulus: int(), remainder: int() }),
      },
      ['filter'],
    ),
    move: object({
      collection: str(),
      kind: oneOf(['move', 'finish', 'cleanup']),
      from: list('movePart'),
      to: list('movePart'),
      flows: list('moveFlow'),
      steps: { type: 'array', items: object({ database: str(), description: str(), risk: oneOf(RISKS) }) },
      leftovers: { type: 'array', items: object({ database: str(), kind: oneOf(['replication slot', 'publication', 'subscription', 'function', 'table']), name: str(), detail: str() }, ['detail']) },
      writePause: str(),
    }),
    summary: object({ create: int(), change: int(), replace: int(), drop: int() }),
    /** The plan as the planner makes it (a saved plan's `plan`). */
    planCore: object(
      {
        formatVersion: { const: 1 },
        format_version: { type: 'string', pattern: '^1\\.[0-9]+$', description: 'MAJOR.MINOR: documents of one major version only gain fields' },
        databases: list('database'),
        blockers: list('blocker'),
        notes: list('note'),
        moves: list('move'),
        summary: ref('summary'),
      },
      ['moves', 'format_version'],
    ),
  };

  /** The plan document of `plan --json`: the plan, and what it amounts to. */
  defs.plan = object(
    {
      ...(defs.planCore!.properties as Record<string, S>),
      changes: { type: 'boolean', description: 'whether apply would change anything' },
      status: oneOf(['no-changes', 'changes', 'blocked']),
      blocked: { type: 'boolean' },
    },
    ['moves'],
    'vecscale plan --json',
  );

  defs.savedPlan = object(
    {
      vecscalePlan: { const: 1 },
      topologyFile: str('relative to the plan file'),
      topologyHash: str(),
      options: object({
        allowDestructive: { anyOf: [{ const: 'all' }, strings, { type: 'null' }] },
        destroy: { type: 'boolean' },
        rotateFdwPasswords: { type: 'boolean' },
      }),
      fingerprints: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'string' } } },
      plan: ref('planCore'),
    },
    [],
    'a saved plan file (vecscale plan --out plan.json)',
  );

  /** One line of `apply --json` / `destroy --json`: every event has a type and a time (ISO 8601). */
  const event = (type: string, properties: Record<string, S>, optional: readonly string[] = [], description?: string): S =>
    object({ type: { const: type }, time: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$', description: 'ISO 8601, UTC' }, ...properties }, optional, description);
  defs.applyEvent = {
    description: 'apply --json / destroy --json: newline-delimited events, in this order: plan; per database database-started, then step-started / step-finished per step (progress of long steps between); warnings as they come; summary last — or error (or invalid-topology) instead',
    oneOf: [
      event('plan', { plan: ref('plan') }),
      event('database-started', { database: str(), role: oneOf(['primary', 'secondary']), steps: int() }),
      event('step-started', { database: str(), step: str('the plan step id'), object: str(), action: oneOf(ACTIONS), risk: oneOf(RISKS) }),
      event('step-finished', { database: str(), step: str(), ms: int() }, [], 'its statements ran; in a database transaction they commit with it'),
      event('progress', { event: { type: 'object', description: 'a long step (index build, move) reporting: step-started, progress, step-finished' } }),
      event('warning', { database: str(), message: str() }),
      event('summary', {
        status: oneOf(['applied', 'no_changes', 'blocked', 'declined']),
        committed: { ...strings, description: 'databases whose transaction committed' },
        moves: { type: 'array', items: { type: 'object' } },
        summary: ref('summary'),
      }, ['moves']),
      event('error', { error: { type: 'object', properties: { code: str(), message: str() }, required: ['code', 'message'] } }),
      event('invalid-topology', { valid: { const: false }, problems: { type: 'array', items: { type: 'object' } } }),
    ],
  };

  return defs;
}

/** The schema: a plan document (`plan --json`), a saved plan file, or one event line of `apply --json`. */
export function planJsonSchema(opts: { closed?: boolean } = {}): object {
  const defs = definitions();
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://vecscale.dev/schemas/plan.schema.json',
    title: 'vecscale plan',
    description: `vecscale's plan documents, format_version ${PLAN_FORMAT_VERSION}: plan --json, a saved plan file, or one event line of apply --json.`,
    anyOf: [ref('plan'), ref('savedPlan'), ref('applyEvent')],
    $defs: defs,
  };
  return opts.closed === true ? (closed(schema) as object) : schema;
}
