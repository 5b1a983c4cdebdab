/**
 * The CLI: commander wiring, commands loaded lazily, one top-level catch that turns every failure into a plain
 * message and an exit status. Nothing here calls process.exit: `main` returns the status to bin/vecscale.
 */
import { Argument, Command, CommanderError } from 'commander';
import { isVecscaleError } from '../errors.js';
import { ExitCode, ExitWith, exitCodeForError } from './exit.js';
import { createOutput, escapeControls } from './output.js';

const VERSION = '0.1.0';

function program(): Command {
  const cli = new Command('vecscale')
    .description('Declarative scaled-out vector collections on PostgreSQL + pgvector: collections on secondaries, postgres_fdw wrappers on the primary.')
    .version(VERSION)
    .option('--no-color', 'no colour in human output (also: NO_COLOR)')
    .showHelpAfterError()
    // commander echoes what was typed ("unknown option '…'"): through the same escaping as every other message.
    .configureOutput({ writeErr: (text) => void process.stderr.write(escapeControls(text)) })
    .exitOverride();

  const topo = () => import('./commands/topology.js');
  const common = (c: Command) =>
    c
      .argument('[file]', 'topology file', 'topology.yaml')
      .option('--json', 'JSON on stdout: one document, or for apply and destroy one event a line (human text stays on stderr)')
      .option('--connect-timeout <seconds>', 'per-database connection timeout', parseSeconds)
      .option(
        '--statement-timeout <duration>',
        "longest any of vecscale's statements may run or go unanswered, index builds excepted (e.g. 30s, 500ms, 2m; 0: no limit; default 30s)",
        parseDuration,
      )
      .option('--strict', 'a literal password in the topology file is an error, not a warning');
  const allowDestructive = (c: Command) =>
    c.option(
      '--allow-destructive <collections>',
      "let destructive steps of these collections run (comma-separated, repeatable, or 'all'); protect: true still refuses",
      parseNames,
    );
  const writes = (c: Command) =>
    allowDestructive(c)
      .option('--auto-approve', 'go ahead without asking')
      .option('--lock-timeout <seconds>', "how long to wait for another vecscale run's lock (default 30)", parseSeconds);
  const rotate = (c: Command) => c.option('--rotate-fdw-passwords', 'set new generated passwords for the wrapper roles (and their user mappings)');
  rotate(allowDestructive(common(cli.command('plan').description('show what apply would change (connects read-only; changes nothing)'))))
    .option('--detailed-exitcode', 'exit 0 when there are no changes, 2 when changes are pending')
    .option('--out <plan.json>', 'save the plan (mode 0600, no secrets) for `vecscale apply <plan.json>`')
    .action(async (file: string, opts) => (await topo()).planCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  rotate(writes(common(cli.command('apply').description('converge every database to the topology, or apply a saved plan (asks first on a terminal)'))))
    .action(async (file: string, opts) => (await topo()).applyCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  writes(common(cli.command('destroy').description("remove the primary's wrappers, and with --allow-destructive the collections (asks first on a terminal)")))
    .action(async (file: string, opts) => (await topo()).destroyCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('init')
    .description('write a commented starter topology file')
    .argument('[file]', 'file to write', 'topology.yaml')
    .option('--force', 'overwrite an existing file')
    .action(async (file: string, opts) => (await import('./commands/init.js')).initCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  common(cli.command('check').description('find rows of sharded collections sitting on the wrong partition; exit 2 when there are any'))
    .action(async (file: string, opts) => (await topo()).checkCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('status')
    .description('one read-only look at every database, collection and wrapper; exit 2 when something needs attention')
    .argument('[file]', 'topology file', 'topology.yaml')
    .option('--json', 'the report as one JSON document on stdout')
    .option('--exact', 'count every table exactly (default: the estimate for tables over 64 MB that were analyzed)')
    .option('--connect-timeout <seconds>', 'per-database connection timeout', parseSeconds)
    .option('--statement-timeout <duration>', 'longest any statement may run or go unanswered (default 10s; 0: no limit)', parseDuration)
    .option('--strict', 'a literal password in the topology file is an error, not a warning')
    .action(async (file: string, opts) => (await import('./commands/status.js')).statusCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('validate')
    .description('check the topology file only; no connection')
    .argument('[file]', 'topology file', 'topology.yaml')
    .option('--json', 'print the result as JSON on stdout')
    .option('--strict', 'a literal password in the topology file is an error, not a warning')
    .action(async (file: string, opts) => (await topo()).validateCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));

  const queryCmd = () => import('./commands/query.js');
  const queryOptions = (c: Command) =>
    c
      .argument('<collection>', 'collection name')
      .option('-f, --file <topology>', 'topology file', 'topology.yaml')
      .option('--vector <json>', "query vector, e.g. '[0.1, 0.2, …]'")
      .option('--vector-file <path>', 'file holding the query vector (JSON array or numbers)')
      .option('--limit <k>', 'number of results (1–1000)', parseCount1000, 10)
      .option('--filter <json>', 'vecs filter, e.g. \'{"lang": {"$eq": "de"}}\'')
      .option('--json', 'one JSON document on stdout')
      .option('--connect-timeout <seconds>', 'per-database connection timeout', parseSeconds);
  queryOptions(cli.command('query').description('similarity search through the primary (match_<collection>), or on the secondary with --direct'))
    .option('--direct', 'run the same query on the secondary, bypassing the primary')
    .action(async (collection: string, opts) => (await queryCmd()).queryCommand(collection, opts, createOutput({ ...cli.opts(), ...opts })));
  queryOptions(cli.command('explain').description('show what match_<collection> ships to the secondary; exit 1 when ORDER BY or LIMIT stays on the primary'))
    .action(async (collection: string, opts) => (await queryCmd()).explainCommand(collection, opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('recall')
    .description("measure match_<collection>'s recall@k against the exact answer, and its latency, per search setting; exit 2 below --min-recall")
    .argument('<collection>', 'collection name')
    .option('-f, --file <topology>', 'topology file', 'topology.yaml')
    .option('--queries <n>', 'stored vectors to sample as queries (1–10000, default 100); with --query-file, the first n', parseWholeNumber(1, 10_000))
    .option('--k <k>', 'results per query (1–1000)', parseCount1000, 10)
    .option('--ef-search <list>', 'hnsw.ef_search values to measure, e.g. 10,40,200 (1–1000; default: the collection\'s)', parseList(1, 1000))
    .option('--probes <list>', 'ivfflat.probes values to measure, e.g. 1,10 (1–32768; default: the collection\'s)', parseList(1, 32_768))
    .option('--query-file <path>', 'query vectors instead of a sample: JSON lines of arrays, or one JSON array of arrays')
    .option('--min-recall <x>', 'exit 2 when a setting\'s mean recall is below x (0–1)', parseRatio)
    .option('--json', 'one JSON document on stdout')
    .option('--connect-timeout <seconds>', 'per-database connection timeout', parseSeconds)
    .option('--statement-timeout <duration>', 'longest any one statement may run or go unanswered (default 30s; 0: no limit)', parseDuration)
    .action(async (collection: string, opts) => (await import('./commands/recall.js')).recallCommand(collection, opts, createOutput({ ...cli.opts(), ...opts })));

  cli
    .command('types')
    .description('write TypeScript types for the primary\'s API (Kysely and supabase-js) from the topology alone; no connection')
    .argument('[file]', 'topology file', 'topology.yaml')
    .option('--out <file>', 'write them to this file (default: stdout)')
    .option('--flavor <flavor>', 'kysely, supabase or both', 'both')
    .option('--check', 'compare with --out instead of writing it: exit 2 when it differs (for CI)')
    .action(async (file: string, opts) => (await import('./commands/types.js')).typesCommand(file, opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('load')
    .description('bulk-load JSON lines or CSV (id, embedding, metadata) into a collection, straight to its secondaries; exit 2 when some lines were bad')
    .argument('<collection>', 'collection name')
    .argument('<input>', 'file of rows (.jsonl, .ndjson or .csv, optionally .gz), or - for stdin')
    .option('-f, --file <topology>', 'topology file', 'topology.yaml')
    .option('--format <format>', 'jsonl or csv (default: from the file name; stdin: jsonl)')
    .option('--upsert', "replace the rows whose ids are in the collection already (without it such lines are bad lines, and the rows stay)")
    .option('--json', 'one JSON document on stdout')
    .option('--connect-timeout <seconds>', 'per-database connection timeout', parseSeconds)
    .option(
      '--statement-timeout <duration>',
      "longest any one statement (a batch of rows) may run or go unanswered, index builds excepted (default 30s; 0: no limit)",
      parseDuration,
    )
    .action(async (collection: string, input: string, opts) =>
      (await import('./commands/load.js')).loadCommand(collection, input, opts, createOutput({ ...cli.opts(), ...opts })),
    );

  const sandbox = cli.command('sandbox').description('local PostgreSQL clusters (one primary, N secondaries) for trying vecscale');
  sandbox
    .command('up')
    .description('create and start the sandbox clusters (idempotent)')
    .option('--secondaries <n>', 'number of secondaries (a new sandbox: 2; an existing one: as many as it has)', parseCount)
    .option('--replicas <n>', 'streaming standbys per secondary (a new sandbox: 0; an existing one: as many as it has)', parseCount)
    .option('--fast', 'fsync off: faster, not crash-safe (for test clusters)')
    .option('--json', 'print {"primary": url, "secondaries": {name: url}} on stdout')
    .action(async (opts) => (await import('./commands/sandbox.js')).up(opts, createOutput({ ...cli.opts(), ...opts })));
  sandbox
    .command('down')
    .description('stop every sandbox cluster')
    .option('--purge', 'also delete their data')
    .option('--json', 'print the clusters as JSON on stdout')
    .action(async (opts) => (await import('./commands/sandbox.js')).down(opts, createOutput({ ...cli.opts(), ...opts })));
  sandbox
    .command('status')
    .description('report each sandbox cluster')
    .option('--json', 'print the clusters as JSON on stdout')
    .action(async (opts) => (await import('./commands/sandbox.js')).status(opts, createOutput({ ...cli.opts(), ...opts })));
  cli
    .command('completion')
    .description('print a shell completion script: bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
    .action(async (shell: 'bash' | 'zsh' | 'fish') => {
      process.stdout.write((await import('./completion.js')).completionScript(cli, shell));
    });
  nameFlagsInErrors(cli);
  return cli;
}

/**
 * A value refused by an option's parser names the option: `--ef-search: expected a whole number 1–1000, got "abc"`
 * (the parsers below know the rule, not the flag they were registered for).
 */
function nameFlagsInErrors(command: Command): void {
  for (const option of command.options) {
    const parse = option.parseArg;
    if (parse === undefined) continue;
    const flag = option.long ?? option.short ?? option.flags;
    option.parseArg = <T>(value: string, previous: T): T => {
      try {
        return parse(value, previous);
      } catch (e) {
        if (e instanceof CommanderError && e.code === 'vecscale.invalidArgument') {
          throw new CommanderError(e.exitCode, e.code, `${flag}: ${e.message}`);
        }
        throw e;
      }
    };
  }
  for (const sub of command.commands) nameFlagsInErrors(sub);
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected a whole number 1–16, got "${value}"`);
  }
  return n;
}

function parseCount1000(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected a whole number 1–1000, got "${value}"`);
  }
  return n;
}

/** A whole number in [min, max]. */
function parseWholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected a whole number ${min}–${max}, got "${value}"`);
    }
    return n;
  };
}

/** `10,40,200` → whole numbers in [min, max], each checked. */
function parseList(min: number, max: number): (value: string) => number[] {
  const one = parseWholeNumber(min, max);
  return (value) => {
    const items = value.split(',').map((x) => x.trim());
    if (items.some((x) => x === '')) {
      throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected whole numbers ${min}–${max} separated by commas, got "${value}"`);
    }
    return items.map(one);
  };
}

/** A share 0–1, e.g. 0.95. */
function parseRatio(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected a number 0–1, got "${value}"`);
  }
  return n;
}

/** `a,b` → names, added to those of earlier occurrences of the option. */
function parseNames(value: string, previous: string[] | undefined): string[] {
  const names = value.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', 'expected collection names or all');
  return [...(previous ?? []), ...names];
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) {
    throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected seconds (0–3600], got "${value}"`);
  }
  return n;
}

/** `30s`, `500ms`, `2m`, `1.5s` or a bare number of seconds → milliseconds; `0` (no limit) up to 1 h. */
function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  const ms = m ? Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm']) : NaN;
  if (!Number.isFinite(ms) || ms > 3_600_000 || (ms === 0 && Number(m![1]) !== 0)) {
    throw new CommanderError(ExitCode.config, 'vecscale.invalidArgument', `expected a duration such as 30s, 500ms or 2m (0: no limit; at most 1 h), got "${value}"`);
  }
  return ms;
}

/** Runs the CLI and returns its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const cli = program();
  try {
    await cli.parseAsync([...argv]);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof ExitWith) return err.status;
    if (err instanceof CommanderError) {
      // --help and --version end through here too, with exitCode 0; usage mistakes are config errors.
      if (err.exitCode === 0) return ExitCode.ok;
      if (err.code === 'vecscale.invalidArgument') process.stderr.write(`error: ${escapeControls(err.message)}\n`);
      return ExitCode.config;
    }
    const out = createOutput({ color: !argv.includes('--no-color'), json: argv.includes('--json') });
    if (isVecscaleError(err)) {
      out.info(`${out.color.red('error:')} ${err.message}${err.hint ? `\n${out.color.dim(`  hint: ${err.hint}`)}` : ''}`);
      if (out.json) out.result({ error: { code: err.code, message: err.message, hint: err.hint ?? null, meta: err.meta } });
      return exitCodeForError(err.code);
    }
    // Unexpected: still no stack trace unless asked for.
    const message = err instanceof Error ? err.message : String(err);
    out.info(`${out.color.red('error:')} ${message}`);
    if (process.env.VECSCALE_DEBUG && err instanceof Error && err.stack) out.info(err.stack);
    if (out.json) out.result({ error: { code: 'internal', message } });
    return ExitCode.error;
  }
}
