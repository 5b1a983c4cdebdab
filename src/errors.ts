/**
 * One error hierarchy. Every failure vecscale expects carries a stable `code`; the CLI maps codes to exit
 * statuses in one place (src/cli/exit.ts). `meta` must stay JSON-safe and secret-free: it is printed with --json.
 */
export type ErrorCode =
  | 'config'          // the topology file or flags are wrong; nothing was contacted
  | 'connection'      // a database could not be reached or refused the credentials
  | 'database'        // a statement failed on a database; its transaction was rolled back
  | 'precondition'    // the live databases cannot take the topology as they are (e.g. pgvector in different schemas)
  | 'partial_apply'   // some databases committed, a later one failed
  | 'safety'          // a safety policy blocked the plan
  | 'lock'            // an advisory lock was not acquired in time
  | 'stale_plan'      // a saved plan no longer matches the live state or the topology
  | 'approval'        // apply needs approval and none was given
  | 'sandbox'         // the local sandbox could not be set up or driven
  | 'environment'     // a tool vecscale needs (PostgreSQL, pgvector) is missing
  | 'internal';

export class VecscaleError extends Error {
  readonly code: ErrorCode;
  readonly meta: Readonly<Record<string, unknown>>;
  /** A hint printed after the message: what the user can do about it. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { meta?: Record<string, unknown>; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VecscaleError';
    this.code = code;
    this.meta = options.meta ?? {};
    this.hint = options.hint;
  }
}

export const isVecscaleError = (e: unknown): e is VecscaleError => e instanceof VecscaleError;
