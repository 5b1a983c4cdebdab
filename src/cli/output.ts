/**
 * Terminal I/O lives here and nowhere else: machine output (--json) on stdout, human output on stderr,
 * colour and spinners only on a TTY without NO_COLOR / --no-color and outside JSON mode.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { scrub } from '../util/url.js';

// Last line of defence: every secret the topology resolved is scrubbed from everything printed.
const secrets = new Set<string>();
export const registerSecrets = (values: Iterable<string>): void => {
  for (const v of values) secrets.add(v);
};
const clean = (text: string): string => (secrets.size > 0 ? scrub(text, secrets) : text);

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

export function createOutput(opts: OutputOptions): Output {
  const tty = Boolean(process.stderr.isTTY);
  const colorOn = tty && opts.color !== false && !process.env.NO_COLOR && !opts.json;
  const chalk = new Chalk({ level: colorOn ? 1 : 0 });
  return {
    json: Boolean(opts.json),
    color: chalk,
    interactive: tty && Boolean(process.stdin.isTTY),
    info: (text) => void process.stderr.write(clean(text.endsWith('\n') ? text : `${text}\n`)),
    result: (doc) => void process.stdout.write(clean(`${JSON.stringify(doc, null, 2)}\n`)),
    print: (text) => void process.stdout.write(clean(text.endsWith('\n') ? text : `${text}\n`)),
  };
}

/** Renders rows as an aligned text table (no colour: safe on stdout). */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
