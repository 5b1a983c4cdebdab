/**
 * The settings that could write a statement's text or its bound parameters to the server log or a statistics view:
 * vecscale turns them off around the statements that carry a password (src/apply/secrets.ts), and the plan warns
 * when the applying role may not (src/plan/planner.ts).
 */

/**
 * [setting, value, superuser-only]: what would otherwise log a bound parameter or a statement's text. The
 * superuser-only ones need superuser or PG15's `GRANT SET ON PARAMETER`; the others any role may set.
 */
export const LOG_SINKS: ReadonlyArray<readonly [string, string, boolean]> = [
  ['log_statement', 'none', true],
  ['log_min_error_statement', 'panic', true],
  ['log_min_duration_statement', '-1', true],
  ['log_min_duration_sample', '-1', true],
  // 0 disables the `DETAIL: parameters: …` line of statement logging: the one place a bound secret could show.
  ['log_parameter_max_length', '0', true],
  ['log_parameter_max_length_on_error', '0', false],
  ['debug_print_parse', 'off', false],
  ['debug_print_rewritten', 'off', false],
  ['debug_print_plan', 'off', false],
];
/** Settings of modules that may not be loaded: absent is fine. */
export const OPTIONAL_SINKS: ReadonlyArray<readonly [string, string]> = [
  // A nested utility statement (the EXECUTEd ALTER USER MAPPING) is recorded with its text under track = all.
  ['pg_stat_statements.track_utility', 'off'],
];

/** The superuser-only settings `quietly` needs, for the plan's warning (has_parameter_privilege). */
export const QUIET_SETTINGS: readonly string[] = LOG_SINKS.filter(([, , su]) => su).map(([name]) => name);

