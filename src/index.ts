/** The library API; the CLI is a thin layer over it. */
export { VecscaleError, type ErrorCode } from './errors.js';
export { redactUrl } from './util/url.js';
export { loadTopology, parseTopology, formatProblem } from './config/index.js';
export type { Topology, CollectionSpec, SecondarySpec, ConfigProblem, LoadResult } from './config/types.js';
export { plan, apply, type ApplyOptions, type ApplyResult, type RunOptions } from './api.js';
export type { Plan, PlanStep, DatabasePlan, Blocker, Note, Risk, Action } from './plan/types.js';
export { hasChanges } from './plan/types.js';
export { status, type StatusReport, type Problem as StatusProblem } from './status/index.js';
export {
  sandboxUp,
  sandboxDown,
  sandboxStatus,
  sandboxUrls,
  type SandboxCluster,
  type SandboxOptions,
  type SandboxUrls,
} from './sandbox/sandbox.js';
