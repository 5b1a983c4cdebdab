/**
 * A query's inputs checked before anything is sent: what the database would refuse (or answer with NaN) is the
 * user's input, so it becomes a `config` error (exit 6) naming what is wrong. The database checks again — supabase-js
 * callers reach `match_<c>` without vecscale. These checks refuse nothing the database accepts, but for JSON nested
 * deeper than MAX_FILTER_NESTING.
 */
import type { Metric } from '../config/types.js';
import { VecscaleError } from '../errors.js';
import { FILTER_LIMITS } from './filter-function.js';
import { NUMBER, NUMERIC_MAX_EXPONENT, NUMERIC_MAX_SCALE, numberTokens } from '../util/json-numbers.js';

/**
 * The deepest JSON a filter may be. $and/$or nest at most FILTER_LIMITS.depth levels (two JSON levels each); only an
 * $eq/$ne/… value could be deeper, and no metadata worth filtering on is. PostgreSQL's recursive jsonb parser gives
 * up ("stack depth limit exceeded", 54001) somewhere between 5,000 and 50,000 levels.
 */
export const MAX_FILTER_NESTING = 256;

// \u0000 cannot be stored in jsonb; a lone surrogate is not Unicode (PostgreSQL: 22P05 and 22P02).
const BAD_STRING = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const shown = (text: string): string => (text.length > 24 ? `${text.slice(0, 20)}…` : text);


/**
 * Why a JSON number token cannot go into the filter, or undefined: outside the compiler's range (0, or
 * 1e-307 ≤ |x| < 1e308), or not a numeric PostgreSQL can hold (0e-999999 overflows). Decided on the token's digits
 * and exponent, exactly as the database decides on its numeric value: JSON.parse rounds 1e999999 to Infinity and
 * 1e-999999 to 0.
 */
export function numberProblem(token: string): string | undefined {
  const m = new RegExp(`^${NUMBER.source}$`).exec(token);
  if (!m) return 'is not a JSON number';
  const whole = m[1]!;
  const fraction = m[2] ?? '';
  const e = Number(m[3] ?? 0);
  const digits = whole + fraction;
  const first = digits.search(/[1-9]/);
  // A non-zero token is d₁.d₂… × 10^exponent with d₁ its first non-zero digit.
  const exponent = first < 0 ? 0 : e + (whole.length - first - 1);
  if (exponent >= 308 || exponent < -307) return 'is out of range: numbers must be 0 or between 1e-307 and 1e308 in magnitude';
  if (Math.abs(e) >= NUMERIC_MAX_EXPONENT || fraction.length - e > NUMERIC_MAX_SCALE) {
    return `overflows PostgreSQL's numeric (at most ${NUMERIC_MAX_SCALE} digits after the decimal point)`;
  }
  return undefined;
}


/** Walks a parsed JSON value without recursion: nesting, strings (keys too) and `$` keys (the compiler's operators). */
function inspect(value: unknown): { nesting: number; badString: string | undefined; operators: number } {
  let nesting = 0;
  let operators = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (BAD_STRING.test(v)) return { nesting, badString: v, operators };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    nesting = Math.max(nesting, depth);
    if (nesting > MAX_FILTER_NESTING) break;
    if (Array.isArray(v)) {
      for (const x of v) stack.push([x, depth + 1]);
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (BAD_STRING.test(k)) return { nesting, badString: k, operators };
      if (k.startsWith('$')) operators++;
      stack.push([x, depth + 1]);
    }
  }
  return { nesting, badString: undefined, operators };
}

/**
 * Checks filter text (vecs' filter language as JSON) as far as can be done without the database: valid JSON, an
 * object, numbers in the compiler's range, strings jsonb can hold, bounded nesting and operator count. `label`
 * names the input in messages (`--filter`, `the filter`). Returns whether the filter has any condition.
 */
export function checkFilter(text: string, label: string): { filtered: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new VecscaleError('config', `${label} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new VecscaleError('config', `${label} must be a JSON object, e.g. {"lang": {"$eq": "de"}}`);
  }
  for (const token of numberTokens(text)) {
    const problem = numberProblem(token);
    if (problem !== undefined) throw new VecscaleError('config', `${label}: the number ${shown(token)} ${problem}`);
  }
  const { nesting, badString, operators } = inspect(parsed);
  if (badString !== undefined) {
    throw new VecscaleError('config', `${label}: the string ${shown(JSON.stringify(badString))} holds \\u0000 or a lone surrogate, which PostgreSQL's jsonb cannot store`);
  }
  if (nesting > MAX_FILTER_NESTING) throw new VecscaleError('config', `${label} is nested deeper than ${MAX_FILTER_NESTING} levels`);
  if (operators > FILTER_LIMITS.operators) {
    throw new VecscaleError('config', `${label} has more than ${FILTER_LIMITS.operators} operators ($eq, $and, …)`);
  }
  return { filtered: Object.keys(parsed).length > 0 };
}

/**
 * Checks a query vector: finite numbers that fit pgvector's single precision, and, for cosine, a vector with a
 * length. pgvector sums the squares in single precision, so a vector whose every square underflows (|x| < ~3.7e-23)
 * has length 0 there and cosine distance NaN, just as the zero vector.
 */
export function checkVector(vector: readonly number[], metric: Metric): void {
  const bad = vector.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
  if (bad >= 0) throw new VecscaleError('config', 'the query vector must hold finite numbers only');
  const huge = vector.findIndex((x) => !Number.isFinite(Math.fround(x)));
  if (huge >= 0) {
    throw new VecscaleError('config', `the query vector's number ${vector[huge]} (position ${huge + 1}) does not fit pgvector's single precision (|x| ≤ 3.4e38)`);
  }
  if (metric === 'cosine' && vector.every((x) => Math.fround(Math.fround(x) * Math.fround(x)) === 0)) {
    const zero = vector.every((x) => Math.fround(x) === 0);
    throw new VecscaleError('config', `a zero vector has no cosine distance${zero ? '' : ' (every component squared is 0 in single precision, as pgvector computes the length)'}`, {
      hint: 'give a query vector with at least one non-zero component',
    });
  }
}
