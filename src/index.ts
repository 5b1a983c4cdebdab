/** The library API; the CLI is a thin layer over it. */
export { VecscaleError, type ErrorCode } from './errors.js';
export { redactUrl } from './util/url.js';
export {
  sandboxUp,
  sandboxDown,
  sandboxStatus,
  sandboxUrls,
  type SandboxCluster,
  type SandboxOptions,
  type SandboxUrls,
} from './sandbox/sandbox.js';
