/**
 * Stage 2: `${NAME}` / `${NAME:-default}` from the environment, in free-text values only and after YAML parsing,
 * so a variable can never inject YAML structure. `$${` is a literal `${`. Inside a URL's userinfo the value is
 * percent-encoded, so a password with `@ / : #` needs no care in the environment.
 */
import type { Position, StringLeaf, StringTransform } from './parse.js';
import type { ConfigProblem } from './types.js';

export interface Interpolator {
  /** Plugs into the shape check: resolves one string value. */
  readonly transform: StringTransform;
  /** Everything found so far: one error listing every missing variable, bad references, literal passwords. */
  problems(): ConfigProblem[];
  /** Decoded URL passwords, for scrubbing output. */
  secrets(): string[];
  /** Paths whose value lacks a variable: later checks of that value would only echo the missing variable. */
  readonly unresolved: ReadonlySet<string>;
}

type Token =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'ref'; readonly name: string; readonly fallback: string | undefined; readonly ordinal: number }
  | { readonly kind: 'bad'; readonly ordinal: number };

const REFERENCE = /\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?/g;

/** Splits a value into literal text and references; `ordinal` counts references (good or bad) in order. */
export function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let last = 0;
  let ordinal = 0;
  for (const m of value.matchAll(REFERENCE)) {
    const start = m.index ?? 0;
    if (start > last) tokens.push({ kind: 'text', text: value.slice(last, start) });
    last = start + m[0].length;
    if (m[0] === '$${') tokens.push({ kind: 'text', text: '${' });
    else if (m[1] === undefined) tokens.push({ kind: 'bad', ordinal: ordinal++ });
    else tokens.push({ kind: 'ref', name: m[1], fallback: m[2], ordinal: ordinal++ });
  }
  if (last < value.length) tokens.push({ kind: 'text', text: value.slice(last) });
  return tokens;
}

/**
 * Which tokens sit in a URL's userinfo, and whether its password has written (literal) characters. References
 * are opaque here: the URL's structure is read from the literal text only, so a value cannot move a boundary.
 */
function urlLayout(tokens: readonly Token[]): { inUserinfo: (i: number) => boolean; literalPassword: boolean } {
  const none = { inUserinfo: () => false, literalPassword: false };
  const starts: number[] = [];
  let shape = '';
  for (const t of tokens) {
    starts.push(shape.length);
    shape += t.kind === 'text' ? t.text : '\0';
  }
  const scheme = shape.indexOf('://');
  if (scheme < 0) return none;
  const authStart = scheme + 3;
  const rest = shape.slice(authStart).search(/[/?#]/);
  const authEnd = rest < 0 ? shape.length : authStart + rest;
  const at = shape.lastIndexOf('@', authEnd - 1);
  if (at < authStart) return none;
  const colon = shape.indexOf(':', authStart);
  const password = colon >= 0 && colon < at ? shape.slice(colon + 1, at) : '';
  return {
    inUserinfo: (i) => (starts[i] ?? -1) >= authStart && (starts[i] ?? -1) < at,
    literalPassword: /[^\0]/.test(password),
  };
}

/** Offsets of the references in the node's source, when they can be matched one to one with the value's. */
function referenceOffsets(leaf: StringLeaf, count: number): number[] | undefined {
  const offsets = [...leaf.source.matchAll(REFERENCE)].filter((m) => m[0] !== '$${').map((m) => leaf.sourceOffset + (m.index ?? 0));
  return offsets.length === count ? offsets : undefined;
}

/** A stage-2 interpolator over one environment. `shownFile` is the file as messages print it. */
/**
 * `placeholders` (vecscale types, which needs no connection): a variable the environment does not set is no error;
 * the value that holds it is left out of every later check (unresolved), and a URL with one reads as a placeholder
 * URL of its own (`…@unresolved-<n>.invalid`), so the topology still builds.
 */
export function createInterpolator(env: Readonly<Record<string, string | undefined>>, file: string, shownFile: string, placeholders = false): Interpolator {
  const missing: { name: string; path: string; pos: Position }[] = [];
  const problems: ConfigProblem[] = [];
  const secrets = new Set<string>();
  const unresolved = new Set<string>();
  const report = (severity: ConfigProblem['severity'], path: string, pos: Position, message: string, code?: ConfigProblem['code']): void => {
    problems.push({ severity, path, file, line: pos.line, column: pos.column, message, ...(code === undefined ? {} : { code }) });
  };

  const transform: StringTransform = (leaf) => {
    const tokens = tokenize(leaf.value);
    const references = tokens.filter((t) => t.kind !== 'text').length;
    const offsets = referenceOffsets(leaf, references);
    const posOf = (ordinal: number): Position => {
      const offset = offsets?.[ordinal];
      return offset === undefined ? leaf.position : leaf.positionOf(offset);
    };
    const isUrl = leaf.schema.format === 'postgres-url';
    const layout = isUrl ? urlLayout(tokens) : undefined;
    let out = '';
    let lacking = false;
    tokens.forEach((t, i) => {
      if (t.kind === 'text') {
        out += t.text;
        return;
      }
      if (t.kind === 'bad') {
        report('error', leaf.path, posOf(t.ordinal), 'invalid variable reference: write ${NAME} or ${NAME:-default}, and $${ for a literal ${');
        unresolved.add(leaf.path);
        return;
      }
      const set = env[t.name];
      // `:-` as in the shell: the default also replaces an empty value.
      const value = set !== undefined && (set !== '' || t.fallback === undefined) ? set : t.fallback;
      if (value === undefined) {
        if (!placeholders) missing.push({ name: t.name, path: leaf.path, pos: posOf(t.ordinal) });
        unresolved.add(leaf.path);
        lacking = true;
        return;
      }
      out += layout?.inUserinfo(i) ? encodeURIComponent(value) : value;
    });
    if (lacking && isUrl) return `postgres://vecscale-types@unresolved-${unresolved.size}.invalid:5432/postgres`;
    if (isUrl) {
      // After a bad reference the rest of the value is not what was meant: no point warning about it.
      if (layout?.literalPassword && !tokens.some((t) => t.kind === 'bad')) {
        report('warning', leaf.path, leaf.position, `literal password in ${leaf.path}: use \${ENV_VAR}`, 'literal_secret');
      }
      for (const s of urlSecrets(out)) secrets.add(s);
    }
    return out;
  };

  return {
    transform,
    unresolved,
    secrets: () => [...secrets],
    problems: () => {
      const first = missing[0];
      if (first === undefined) return [...problems];
      const byName = new Map<string, string[]>();
      for (const m of missing) {
        const places = byName.get(m.name) ?? [];
        places.push(`${shownFile}:${m.pos.line}:${m.pos.column}`);
        byName.set(m.name, places);
      }
      const list = [...byName].map(([name, places]) => `${name} (${places.join(', ')})`).join(', ');
      return [...problems, {
        severity: 'error', path: first.path, file, line: first.pos.line, column: first.pos.column,
        message: `missing environment variables: ${list}`,
      }];
    },
  };
}

/** The password of a URL, decoded, plus a `password` query parameter: both reach the server and the logs. */
function urlSecrets(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  const out: string[] = [];
  if (u.password) {
    try {
      out.push(decodeURIComponent(u.password));
    } catch {
      out.push(u.password);
    }
  }
  const query = u.searchParams.get('password');
  if (query) out.push(query);
  return out;
}
