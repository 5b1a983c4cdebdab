/**
 * Secret values (`password`, `fdw_password`): `${ENV}` like any free text, or `file:<path>`, read from a file so
 * the password is in neither the topology nor the environment (Docker and Kubernetes secrets, systemd credentials).
 * A password written in the file itself is a warning with code `literal_secret` (an error under --strict). Every
 * value resolved here is collected, so output can be scrubbed of it. Runs inside the shape check, as stage 2.
 */
import { resolve } from 'node:path';
import { type Interpolator, tokenize } from './interpolate.js';
import { readError } from './messages.js';
import type { Position, StringLeaf, StringTransform } from './parse.js';
import type { ConfigProblem } from './types.js';

/**
 * Reads a `file:` secret, by absolute path; throws like fs.readFileSync (or UnreadableFile). Injected so parsing stays
 * testable; the default reads regular files of at most MAX_SECRET_BYTES only (./read-file.ts).
 */
export type ReadSecretFile = (absPath: string) => string;

export interface SecretResolver {
  /** Plugs into the shape check: resolves secrets, hands every other string to the interpolator. */
  readonly transform: StringTransform;
  /** Files that cannot be read or are empty, empty values, literal passwords. */
  problems(): ConfigProblem[];
  /** Every secret value resolved, file contents included. */
  secrets(): string[];
  /** Secret paths without a value (missing variable, unreadable file): later checks would only add noise. */
  readonly unresolved: ReadonlySet<string>;
}

const FILE_PREFIX = 'file:';

/** A `file:` secret holds one password: anything larger is not what was meant (and /dev/zero never ends). */
export const MAX_SECRET_BYTES = 64 * 1024;

/** A file's content as the secret: editors and `echo` end files with a newline that is not part of the password. */
export function secretFromFile(text: string): string {
  return text.replace(/\r?\n$/, '');
}

/**
 * A resolver over one interpolator. `baseDir` anchors relative `file:` paths (the topology file's directory: the
 * secret usually sits next to it, and the working directory varies between a shell and CI).
 */
export function createSecretResolver(interpolator: Interpolator, file: string, baseDir: string, read: ReadSecretFile): SecretResolver {
  const problems: ConfigProblem[] = [];
  const secrets = new Set<string>();
  const unresolved = new Set<string>();
  const report = (severity: ConfigProblem['severity'], path: string, pos: Position, message: string, code?: ConfigProblem['code']): void => {
    problems.push({ severity, path, file, line: pos.line, column: pos.column, message, ...(code === undefined ? {} : { code }) });
  };
  const fail = (leaf: StringLeaf, message: string): string => {
    report('error', leaf.path, leaf.position, message);
    unresolved.add(leaf.path);
    return '';
  };
  /** The last segment of the path: `password` or `fdw_password`, for messages. */
  const keyOf = (leaf: StringLeaf): string => leaf.path.slice(leaf.path.lastIndexOf('.') + 1);

  /** `file:<path>`: the path may use `${ENV}` (e.g. ${CREDENTIALS_DIRECTORY}); the file's content never is interpolated. */
  const fromFile = (leaf: StringLeaf): string => {
    // The source still starts with `file:`, which holds no reference, so the interpolator locates them all the same.
    const written = interpolator.transform({ ...leaf, value: leaf.value.slice(FILE_PREFIX.length) });
    if (interpolator.unresolved.has(leaf.path)) {
      unresolved.add(leaf.path);
      return '';
    }
    if (written === '') return fail(leaf, `file: needs a path: file:<path>, relative to the topology file's directory unless absolute`);
    let text: string;
    try {
      text = read(resolve(baseDir, written));
    } catch (e) {
      return fail(leaf, `cannot read file:${written}: ${readError(e)}`);
    }
    const secret = secretFromFile(text);
    return secret === '' ? fail(leaf, `file:${written} is empty: write the password in it, or leave ${keyOf(leaf)} out`) : secret;
  };

  /** `${ENV}` as in any free text; anything written around or instead of a reference is a password in the file. */
  const fromText = (leaf: StringLeaf): string => {
    const tokens = tokenize(leaf.value);
    const value = interpolator.transform(leaf);
    if (interpolator.unresolved.has(leaf.path)) {
      unresolved.add(leaf.path);
      return '';
    }
    if (tokens.some((t) => t.kind === 'text')) {
      report('warning', leaf.path, leaf.position, `literal password in ${leaf.path}: use \${ENV_VAR} or file:<path>`, 'literal_secret');
    }
    return value === '' ? fail(leaf, `is empty: set it, or leave ${keyOf(leaf)} out`) : value;
  };

  const transform: StringTransform = (leaf) => {
    if (leaf.schema.format !== 'secret') return interpolator.transform(leaf);
    const value = leaf.value.startsWith(FILE_PREFIX) ? fromFile(leaf) : fromText(leaf);
    if (value !== '') secrets.add(value);
    return value;
  };

  return { transform, unresolved, problems: () => [...problems], secrets: () => [...secrets] };
}
