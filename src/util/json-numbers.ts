/** The number tokens of JSON text and PostgreSQL numeric's bounds (jsonb keeps JSON numbers as numeric). */

/** A number token of valid JSON: sign, integer digits, fraction digits, exponent. */
export const NUMBER = /-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/y;

/** PostgreSQL's numeric: at most this many digits after the decimal point (NUMERIC_DSCALE_MAX) … */
export const NUMERIC_MAX_SCALE = 16_383;
/** … and an exponent below INT_MAX / 2 in magnitude, zero included (numeric_in: "value overflows numeric format"). */
export const NUMERIC_MAX_EXPONENT = 1_073_741_823;

/** The number tokens of valid JSON text, strings skipped. */
export function* numberTokens(text: string): Generator<string> {
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text)!;
      yield m[0];
      i += m[0].length - 1;
    }
  }
}
