/**
 * The one place that decides exit statuses. Documented in the README; stable across releases.
 */
import type { ErrorCode } from '../errors.js';

export const ExitCode = {
  ok: 0,
  error: 1,
  changesPending: 2,
  blocked: 3,
  lock: 4,
  stalePlan: 5,
  config: 6,
  approval: 7,
  partialApply: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const byErrorCode: Record<ErrorCode, ExitCode> = {
  config: ExitCode.config,
  connection: ExitCode.error,
  database: ExitCode.error,
  precondition: ExitCode.error,
  partial_apply: ExitCode.partialApply,
  safety: ExitCode.blocked,
  lock: ExitCode.lock,
  stale_plan: ExitCode.stalePlan,
  approval: ExitCode.approval,
  sandbox: ExitCode.error,
  environment: ExitCode.error,
  internal: ExitCode.error,
};

export const exitCodeForError = (code: ErrorCode): ExitCode => byErrorCode[code];

/** Thrown by command handlers to end with a status that is not an error (e.g. 2 = changes pending). */
export class ExitWith extends Error {
  constructor(readonly status: ExitCode) {
    super(`exit ${status}`);
  }
}
