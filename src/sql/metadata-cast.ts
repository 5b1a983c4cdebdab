/**
 * A metadata key as a typed column that never fails. vecs accepts any JSON as metadata, so a collection with
 * `columns: { year: integer }` will meet `{"year": "n/a"}`, `{"year": 2012.5}` or `{"year": {"from": 2012}}`; a plain
 * `(metadata ->> 'year')::int4` then fails every statement whose scan touches that row (searches, reads, even a
 * DELETE by id through the primary). The rule, documented in the README ("Extracted columns"):
 *
 *   the column holds the value when the JSON value is of the type's JSON kind and fits the type; otherwise NULL.
 *
 * - text: a JSON string. uuid: a string in one of the forms uuid_in accepts.
 * - integer, bigint, smallint: a JSON number with an integral value in the type's range (2012.0 is 2012; 2012.5 and
 *   1e20 in an integer column are NULL). numeric: any JSON number. real, double precision: a number of the type's
 *   range (0, or a magnitude between the bounds below), rounded as PostgreSQL rounds.
 * - boolean: JSON true or false (not the strings "true"/"t").
 * - date: a string `YYYY-MM-DD` naming a real day (years 0001–9999). timestamp, timestamptz: ISO 8601
 *   `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][Z|±HH[:MM]]` with valid fields; a timestamptz without a zone is read in
 *   the session's TimeZone, as PostgreSQL's own cast does.
 * - jsonb: the value as it is.
 *
 * Every check is an expression on the row alone, guarded by CASE so a cast only runs on a value that passed its test
 * (PostgreSQL does not promise the evaluation order of AND). Built from immutable functions where the type allows
 * (everything but the timestamps, whose text input depends on settings), so an expression index can match it, and
 * kept to column expressions, so the wrapper view stays simple (and auto-updatable) and a WHERE on the column that
 * the primary ships is evaluated here. Regular expressions spell digits [0-9]: `\d` may match other scripts' digits.
 */
import type { ColumnType } from '../config/types.js';
import { literal } from './quote.js';
import { COLUMN_TYPE_SQL } from './types.js';

/** Range, and the most digits any value of the type may have (the text of a short integer casts as it is). */
const INTEGER_RANGE: Readonly<Partial<Record<ColumnType, readonly [lo: string, hi: string, digits: number]>>> = {
  smallint: ['-32768', '32767', 4],
  integer: ['-2147483648', '2147483647', 9],
  bigint: ['-9223372036854775808', '9223372036854775807', 18],
};

/** Magnitudes a float type takes without an out-of-range error (0 aside), a little inside the hard limits. */
const FLOAT_RANGE: Readonly<Partial<Record<ColumnType, readonly [string, string]>>> = {
  real: ['1e-37', '3.4e38'],
  'double precision': ['1e-307', '1e308'],
};

const DATE = '[0-9]{4}-[0-9]{2}-[0-9]{2}';
const TIME = '[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?';
/** Zones PostgreSQL accepts for certain: Z, or an offset up to ±14:59 (its own limit is ±15:59:59). */
const ZONE = '(Z|z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?';
const UUID = '^([0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}|\\{[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}\\})$';

/** `metadata -> key` and `metadata ->> key`, the only inputs. */
const jsonValue = (key: string): string => `(metadata -> ${literal(key)})`;
const textValue = (key: string): string => `(metadata ->> ${literal(key)})`;
const typeOf = (key: string): string => `pg_catalog.jsonb_typeof(${jsonValue(key)})`;
const field = (s: string, from: number, length: number): string => `pg_catalog.substr(${s}, ${from}, ${length})::pg_catalog.int4`;

/**
 * The first day of the month of the `YYYY-MM-DD` at the start of `s` (already matched by a regular expression) plus
 * its day - 1, and whether that is the day written (2023-02-29 would come out as 03-01): nothing here can fail.
 */
function day(s: string): { readonly valid: string; readonly value: string } {
  const [y, m, d] = [field(s, 1, 4), field(s, 6, 2), field(s, 9, 2)];
  const value = `(pg_catalog.make_date(${y}, ${m}, 1) + (${d} - 1))`;
  return { valid: `${y} >= 1 AND ${m} BETWEEN 1 AND 12 AND ${d} >= 1 AND EXTRACT(DAY FROM ${value}) = ${d}`, value };
}

/** Whether the time after a valid day (positions 12–19 of `s`, when present) has valid fields. */
function validTime(s: string): string {
  const part = (from: number) => `pg_catalog.substr(${s}, ${from}, 2)`;
  return `(pg_catalog.length(${s}) = 10 OR (${part(12)} <= '23' AND ${part(15)} <= '59' AND (pg_catalog.substr(${s}, 17, 1) <> ':' OR ${part(18)} <= '59')))`;
}

/** The typed value of metadata key `key`, or NULL when it does not fit `type` (see the rule above). */
export function metadataValue(key: string, type: ColumnType): string {
  const json = jsonValue(key);
  const text = textValue(key);
  const sqlType = COLUMN_TYPE_SQL[type];
  const number = `${json}::pg_catalog.numeric`;
  const whenKind = (kind: string, then: string) => `CASE WHEN ${typeOf(key)} = ${literal(kind)} THEN ${then} END`;
  switch (type) {
    case 'jsonb':
      return json;
    case 'text':
      return whenKind('string', text);
    case 'boolean':
      return whenKind('boolean', `${json}::pg_catalog.bool`);
    case 'numeric':
      return whenKind('number', number);
    case 'smallint':
    case 'integer':
    case 'bigint': {
      const [lo, hi, digits] = INTEGER_RANGE[type] ?? ['0', '0', 0];
      // A jsonb number prints as plain digits (never an exponent): without a point and short enough, its text casts
      // as it is — the common case, at half the cost of the numeric checks that decide the rest (2012.0, 1e20).
      const short = `pg_catalog.strpos(${text}, '.') = 0 AND pg_catalog.length(${text}) <= ${digits}`;
      const integral = `${number} BETWEEN ${lo} AND ${hi} AND ${number} = pg_catalog.trunc(${number})`;
      return whenKind('number', `CASE WHEN ${short} THEN ${text}::${sqlType} WHEN ${integral} THEN ${number}::${sqlType} END`);
    }
    case 'real':
    case 'double precision': {
      const [lo, hi] = FLOAT_RANGE[type] ?? ['0', '0'];
      return whenKind('number', `CASE WHEN ${number} = 0 OR pg_catalog.abs(${number}) BETWEEN ${lo} AND ${hi} THEN ${number}::${sqlType} END`);
    }
    case 'uuid':
      return whenKind('string', `CASE WHEN ${text} ~ ${literal(UUID)} THEN ${text}::pg_catalog.uuid END`);
    case 'date':
      return whenKind('string', `CASE WHEN ${text} ~ ${literal(`^${DATE}$`)} THEN CASE WHEN ${day(text).valid} THEN ${day(text).value} END END`);
    case 'timestamp without time zone':
    case 'timestamp with time zone':
      return whenKind(
        'string',
        `CASE WHEN ${text} ~ ${literal(`^${DATE}(${TIME}${ZONE})?$`)} THEN CASE WHEN ${day(text).valid} AND ${validTime(text)} THEN ${text}::${sqlType} END END`,
      );
  }
}
