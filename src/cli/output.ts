/**
 * Terminal I/O lives here and nowhere else: machine output (--json) on stdout, human output on stderr,
 * colour and spinners only on a TTY without NO_COLOR / --no-color and outside JSON mode.
 *
 * Everything printed passes two last lines of defence: every secret the topology resolved is scrubbed, and every
 * control character is escaped (a YAML key, a database's object name or a row's metadata may hold `ESC [2J`, a
 * bidi override, …). Human text shows them as `\x1b`, `\u009b`; JSON keeps them JSON-escaped (`\u001b`).
 */
import { randomBytes } from 'node:crypto';
import { Chalk, type ChalkInstance } from 'chalk';
import { scrub } from '../util/url.js';

const secrets = new Set<string>();
export const registerSecrets = (values: Iterable<string>): void => {
  for (const v of values) secrets.add(v);
};
const clean = (text: string): string => (secrets.size > 0 ? scrub(text, secrets) : text);

/**
 * A JSON document with every secret scrubbed from its strings and keys, before it is written: scrubbing the JSON
 * text instead could break it (a password `true` or `5432` would turn a value into `***`).
 */
function scrubbed(value: unknown): unknown {
  if (secrets.size === 0) return value;
  const v = value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function'
    ? (value as { toJSON(): unknown }).toJSON()
    : value;
  if (typeof v === 'string') return clean(v);
  if (Array.isArray(v)) return v.map(scrubbed);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [clean(k), scrubbed(x)]));
  return v;
}

/**
 * What a terminal may act on: C0 controls but newline and tab (CR too: it rewrites the line), DEL, C1 controls
 * (U+009B is a one-character CSI), bidi embeddings, overrides, isolates and marks (they reorder what is shown), and
 * the line and paragraph separators.
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, minus what JSON.stringify escapes already. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number): string => (c.codePointAt(0) ?? 0).toString(16).padStart(width, '0');

/** Control characters as visible escapes: `\x1b` below U+0080, `\u009b` above; everything else as it is. */
export const escapeControls = (text: string): string =>
  text.replace(UNSAFE, (c) => (c < '\u0080' ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));

/** JSON text with the characters JSON.stringify leaves raw written as \u escapes: the same document. */
const escapeJson = (json: string): string => json.replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);

/**
 * Colour without letting anything else through. The styles vecscale applies come out of chalk as escape sequences,
 * which the output would escape like any other: so each style's sequences are written as a token that holds a nonce
 * of this process (printable, so escaping leaves it alone, and unguessable, so no input can forge one), and the
 * tokens become escape sequences again after escaping. What a style is applied to is escaped first.
 */
function tokenColor(token: string): ChalkInstance {
  const real = new Chalk({ level: 1 });
  const detoken = new RegExp(`${token}([0-9;]+)m`, 'g');
  const asTokens = (styled: string): string => styled.replace(/\x1b\[([0-9;]+)m/g, (_, codes: string) => `${token}${codes}m`);
  const fromTokens = (text: string): string => text.replace(detoken, (_, codes: string) => `\x1b[${codes}m`);
  // A stand-in for each chalk builder, not a Proxy of it: chalk caches styles as read-only properties, which a Proxy
  // must hand back unchanged. `parent` is the builder a method was read from (chalk's hex() and the like use `this`).
  const wrap = (builder: unknown, parent?: unknown): unknown =>
    new Proxy(() => undefined, {
      get: (_, p) => {
        const v: unknown = Reflect.get(builder as object, p);
        return typeof v === 'function' ? wrap(v, builder) : v;
      },
      apply: (_, __, args: unknown[]) => {
        // Arguments are strings (or styled strings: their tokens turn back so chalk can nest styles as usual).
        const safe = args.map((a) => fromTokens(escapeControls(String(a))));
        const result: unknown = Reflect.apply(builder as (...a: unknown[]) => unknown, parent, safe);
        return typeof result === 'function' ? wrap(result, parent) : asTokens(String(result));
      },
    });
  return wrap(real) as ChalkInstance;
}

/** A renderer for human text: secrets scrubbed, controls escaped, then vecscale's own colour (if any) put back. */
function humanText(token: string | undefined): (text: string) => string {
  const detoken = token === undefined ? undefined : new RegExp(`${token}([0-9;]+)m`, 'g');
  return (text) => {
    const safe = escapeControls(clean(text));
    return detoken === undefined ? safe : safe.replace(detoken, (_, codes: string) => `\x1b[${codes}m`);
  };
}

export interface Output {
  readonly json: boolean;
  readonly color: ChalkInstance;
  readonly interactive: boolean;
  /** Human-readable text, to stderr. */
  info(text: string): void;
  /** Machine-readable result, to stdout: one JSON document. */
  result(doc: unknown): void;
  /** Plain text result for humans that belongs on stdout (e.g. a query's table). */
  print(text: string): void;
}

export interface OutputOptions {
  readonly json?: boolean;
  readonly color?: boolean; // commander's --no-color sets this to false
}

let eventLines = false;

/**
 * `apply --json` / `destroy --json`: from now on stdout is newline-delimited events, each one line of JSON with a
 * `type` and a `time` (templates/plan.schema.json, `applyEvent`) — errors included, whoever reports them.
 */
export function streamEvents(): void {
  eventLines = true;
}

/** A document as an event line: its own `type`, else `error` / `invalid-topology` / `result`, and the time. */
function asEvent(doc: unknown): unknown {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { type: 'result', time: new Date().toISOString(), value: doc };
  const { type: own, ...rest } = doc as Record<string, unknown>;
  const type = typeof own === 'string' ? own : 'error' in rest ? 'error' : rest.valid === false ? 'invalid-topology' : 'result';
  return { type, time: new Date().toISOString(), ...rest };
}

export function createOutput(opts: OutputOptions): Output {
  const tty = Boolean(process.stderr.isTTY);
  const colorOn = tty && opts.color !== false && !process.env.NO_COLOR && !opts.json;
  // U+E000 (private use) and 64 random bits: no input holds it, since nothing printed ever shows it.
  const token = colorOn ? `\u{E000}${randomBytes(8).toString('hex')}:` : undefined;
  const render = humanText(token);
  const line = (text: string): string => render(text.endsWith('\n') ? text : `${text}\n`);
  return {
    json: Boolean(opts.json),
    color: token === undefined ? new Chalk({ level: 0 }) : tokenColor(token),
    interactive: tty && Boolean(process.stdin.isTTY),
    info: (text) => void process.stderr.write(line(text)),
    result: (doc) => void process.stdout.write(escapeJson(eventLines ? `${JSON.stringify(scrubbed(asEvent(doc)))}\n` : `${JSON.stringify(scrubbed(doc), null, 2)}\n`)),
    print: (text) => void process.stdout.write(line(text)),
  };
}

/** Renders rows as an aligned text table (no colour: safe on stdout). */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
