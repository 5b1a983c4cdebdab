/** `vecscale load`'s input, without a database: lines from bytes, JSON lines and CSV into rows or bad lines. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyErrorLine, copyField, copyLine } from '../../src/load/copy.js';
import {
  csvParser,
  embeddingFits,
  formatOfName,
  InputFormatError,
  isBad,
  jsonbNumberProblem,
  MAX_ID_BYTES,
  type Parsed,
  parseCsvRecord,
  parseJsonLine,
  type RawLine,
  readLines,
} from '../../src/load/input.js';

async function linesOf(chunks: Array<Buffer | string>): Promise<RawLine[]> {
  const out: RawLine[] = [];
  async function* gen() {
    yield* chunks;
  }
  for await (const batch of readLines(gen())) out.push(...batch);
  return out;
}

const jl = (text: string, dimension = 3): Parsed | undefined => parseJsonLine({ line: 7, text }, dimension);
const reason = (p: Parsed | undefined): string => {
  assert.ok(p && isBad(p), `expected a bad line, got ${JSON.stringify(p)}`);
  return p.reason;
};

test('readLines: the same numbered lines whatever the chunking; CRLF, a BOM, no final newline', async () => {
  const text = '\ufeff{"a":1}\r\nsecond ü日😀\n\nlast';
  const bytes = Buffer.from(text, 'utf8');
  const expected = [
    { line: 1, text: '{"a":1}', crlf: true },
    { line: 2, text: 'second ü日😀' },
    { line: 3, text: '' },
    { line: 4, text: 'last' },
  ];
  assert.deepEqual(await linesOf([bytes]), expected);
  // One byte at a time: the BOM, multibyte characters and CRLF all split across chunks.
  assert.deepEqual(await linesOf([...bytes].map((b) => Buffer.from([b]))), expected);
  for (const cut of [1, 2, 3, 5, 11, 13]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += cut) chunks.push(bytes.subarray(i, i + cut));
    assert.deepEqual(await linesOf(chunks), expected, `chunks of ${cut}`);
  }
  assert.deepEqual(await linesOf([]), []);
  assert.deepEqual(await linesOf(['a\n']), [{ line: 1, text: 'a' }]);
  assert.deepEqual(await linesOf(['\ufeff']), []);
  assert.deepEqual(await linesOf(['ab']), [{ line: 1, text: 'ab' }]);
});

test('CSV: a CRLF inside a quoted field stays CRLF (RFC 4180), the record ends at the line\'s own CRLF', async () => {
  const p = csvParser(3);
  const out: Parsed[] = [];
  for (const raw of await linesOf(['id,embedding\r\n"q\r\nq","[1,2,3]"\r\n'])) {
    const r = p.push(raw);
    if (r) out.push(r);
  }
  const end = p.end();
  if (end) out.push(end);
  assert.deepEqual(out, [{ line: 2, id: 'q\r\nq', embedding: '[1,2,3]', metadata: '{}' }]);
});

test('readLines: a line that is not UTF-8 is named, its neighbours read on', async () => {
  const bad = Buffer.concat([Buffer.from('ok 1\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from('\nok 3\n')]);
  for (const chunks of [[bad], [...bad].map((b) => Buffer.from([b]))]) {
    const lines = await linesOf(chunks);
    assert.deepEqual(
      lines.map((l) => [l.line, l.text, l.problem]),
      [
        [1, 'ok 1', undefined],
        [2, '', 'the line is not valid UTF-8'],
        [3, 'ok 3', undefined],
      ],
    );
  }
});

test('readLines: a line over 64 MiB is one bad line, and the next line is read', async () => {
  const mib = Buffer.alloc(1024 * 1024, 0x61);
  const chunks = [Buffer.from('first\n'), ...Array.from({ length: 65 }, () => mib), Buffer.from('\nafter\n')];
  const lines = await linesOf(chunks);
  assert.deepEqual(
    lines.map((l) => [l.line, l.text, l.problem]),
    [
      [1, 'first', undefined],
      [2, '', 'the line is longer than 64 MiB'],
      [3, 'after', undefined],
    ],
  );
});

test('JSON lines: a row keeps the embedding and metadata exactly as written', () => {
  const line = '{"id": "a", "embedding": [1, -0.5, 3.25e-2], "metadata": {"big": 12345678901234567890123, "s": "x\\ty"}}';
  assert.deepEqual(jl(line), { line: 7, id: 'a', embedding: '[1, -0.5, 3.25e-2]', metadata: '{"big": 12345678901234567890123, "s": "x\\ty"}' });
  // Any key order and spacing; no metadata, or null metadata, is {}.
  assert.deepEqual(jl(' { "embedding" :[0,0,1] , "id":"b" } '), { line: 7, id: 'b', embedding: '[0,0,1]', metadata: '{}' });
  assert.deepEqual(jl('{"metadata": null, "id": "c", "embedding": [1,2,3]}'), { line: 7, id: 'c', embedding: '[1,2,3]', metadata: '{}' });
  // An integer id is its digits; the empty id is an id.
  assert.equal((jl('{"id": 42, "embedding": [1,2,3]}') as { id: string }).id, '42');
  assert.equal((jl('{"id": "", "embedding": [1,2,3]}') as { id: string }).id, '');
  // Escapes in keys and strings (the slow path) give the same row.
  assert.deepEqual(jl('{"\\u0069d": "d\\u00fc", "embe\\u0064ding": [1,2,3], "metadata": {"k": "\\"quoted\\""}}'), {
    line: 7,
    id: 'dü',
    embedding: '[1,2,3]',
    metadata: '{"k": "\\"quoted\\""}',
  });
  // Numbers with exponents inside single precision, and a 39-digit integer that still fits.
  assert.ok(!isBad(jl('{"id":"e","embedding":[1e-50, 3.4028234e38, -2E+3]}')!));
  assert.ok(!isBad(jl('{"id":"f","embedding":[100000000000000000000000000000000000000, 0, 0]}')!));
  assert.equal(jl('   '), undefined);
  assert.equal(jl(''), undefined);
});

test('JSON lines: every kind of bad line has a reason', () => {
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3]')), /^not valid JSON/);
  assert.match(reason(jl('nope')), /^not valid JSON/);
  assert.equal(reason(jl('[1,2,3]')), 'not a JSON object');
  assert.equal(reason(jl('"a"')), 'not a JSON object');
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metdata": {}}')), /unknown field "metdata"/);
  assert.equal(reason(jl('{"embedding": [1,2,3]}')), 'no id');
  assert.equal(reason(jl('{"id": null, "embedding": [1,2,3]}')), 'no id');
  assert.match(reason(jl('{"id": 1.5, "embedding": [1,2,3]}')), /the id must be a string, or an integer/);
  assert.match(reason(jl('{"id": 12345678901234567890, "embedding": [1,2,3]}')), /the id must be a string/);
  assert.match(reason(jl('{"id": ["a"], "embedding": [1,2,3]}')), /the id must be a string \(got an array\)/);
  assert.match(reason(jl('{"id": "a\\u0000b", "embedding": [1,2,3]}')), /\\u0000 or a lone surrogate/);
  assert.match(reason(jl('{"id": "\\ud800", "embedding": [1,2,3]}')), /lone surrogate/);
  assert.match(reason(jl(`{"id": "${'x'.repeat(MAX_ID_BYTES + 1)}", "embedding": [1,2,3]}`)), /the id is 2693 bytes long/);
  assert.ok(!isBad(jl(`{"id": "${'x'.repeat(MAX_ID_BYTES)}", "embedding": [1,2,3]}`)!));
  assert.equal(reason(jl('{"id": "a"}')), 'no embedding');
  assert.equal(reason(jl('{"id": "a", "embedding": "[1,2,3]"}')), 'the embedding must be a JSON array of numbers');
  assert.equal(reason(jl('{"id": "a", "embedding": [1,2]}')), 'the embedding has 2 dimensions; the collection has 3');
  assert.equal(reason(jl('{"id": "a", "embedding": []}')), 'the embedding has 0 dimensions; the collection has 3');
  assert.equal(reason(jl('{"id": "a", "embedding": [1,"2",3]}')), 'embedding[1] is not a number (string)');
  assert.equal(reason(jl('{"id": "a", "embedding": [1,null,3]}')), 'embedding[1] is not a number (null)');
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,1e39]}')), /embedding\[2\] is not a finite number in single precision/);
  assert.match(reason(jl('{"id": "a", "embedding": [1e400,2,3]}')), /embedding\[0\] is not a finite number/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metadata": [1]}')), /the metadata must be a JSON object \(got an array\)/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metadata": "x"}')), /the metadata must be a JSON object \(got string\)/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metadata": {"k": "\\u0000"}}')), /\\u0000/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metadata": {"\\udc00": 1}}')), /metadata key/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "metadata": {"n": 1e1073741823}}')), /overflows PostgreSQL's numeric/);
  assert.match(reason(jl(`{"id": "a", "embedding": [1,2,3], "metadata": {"d": ${'['.repeat(1001)}${']'.repeat(1001)}}}`)), /nested deeper than 1000/);
  assert.match(reason(jl('{"id": "a", "id": "b", "embedding": [1,2,3]}')), /the field "id" appears twice/);
  assert.match(reason(jl('{"id": "a", "embedding": [1,2,3], "embedding": [1,2,3]}')), /appears twice/);
  assert.equal(reason(parseJsonLine({ line: 3, text: '', problem: 'the line is not valid UTF-8' }, 3)), 'the line is not valid UTF-8');
});

test('the fast path and the slow path agree on every line', () => {
  // The fast path bails out on anything unusual; whatever it accepts, JSON.parse must accept the same way.
  const dims = 4;
  const variants = [
    '{"id":"a","embedding":[1,2,3,4]}',
    '{"id":"a","embedding":[1,2,3,4],"metadata":{"x":[1,{"y":"]"}]}}',
    '{"metadata":{"s":"a\\"b"},"embedding":[ 1 , 2 , 3 , 4 ],"id":"a"}',
    '{"id":"a","embedding":[1,2,3,4],}',
    '{"id":"a","embedding":[1,2,3,4]}x',
    '{"id":"a","embedding":[1,2,3,4]}}',
    '{"id":"a","embedding":[1,2,3,4]]}',
    '{"id":"a","embedding":[1,2,3,4,]}',
    '{"id":"a","embedding":[01,2,3,4]}',
    '{"id":"a","embedding":[1,2,3,4],"metadata":{"a":1,}}',
    '{"id":"a" "embedding":[1,2,3,4]}',
    '{"id":"a","embedding":[1,2,3,4],"metadata":{"k":"\\u0000"}}',
    '{"id":"a","embedding":[.5,2,3,4]}',
    '{"id":"a","embedding":[-0,2e3,3E-3,4]}',
    '{"id":"a","embedding":[1,2,3,4] , "metadata" : { } }',
    '{"id":"\\\\","embedding":[1,2,3,4]}',
    '{"id":"a\\\\"x","embedding":[1,2,3,4]}',
  ];
  for (const text of variants) {
    const got = parseJsonLine({ line: 1, text }, dims);
    let expected: 'ok' | 'bad';
    try {
      const o = JSON.parse(text) as { embedding?: unknown };
      expected = Array.isArray(o.embedding) && o.embedding.length === dims && !JSON.stringify(o).includes('\\u0000') ? 'ok' : 'bad';
    } catch {
      expected = 'bad';
    }
    assert.equal(got && isBad(got) ? 'bad' : 'ok', expected, text);
  }
});

test('embeddingFits: exact dimension, JSON numbers only, single precision', () => {
  assert.equal(embeddingFits('[1,2,3]', 3), true);
  assert.equal(embeddingFits('[ 1 , 2 , 3 ]', 3), true);
  // Other whitespace takes the slow path, and comes out as spaces (a row's embedding needs no COPY escapes).
  assert.equal(embeddingFits('[ 1 ,\t2 , 3 ]', 3), false);
  assert.deepEqual(jl('{"id":"t","embedding":[1,\t2,\r3]}'), { line: 7, id: 't', embedding: '[1, 2, 3]', metadata: '{}' });
  assert.deepEqual(csv('id,embedding\nt,"[1,\n2,\t3]"'), [{ line: 2, id: 't', embedding: '[1, 2, 3]', metadata: '{}' }]);
  assert.equal(embeddingFits('[1,2]', 3), false);
  assert.equal(embeddingFits('[1,2,3,4]', 3), false);
  assert.equal(embeddingFits('[1,2,NaN]', 3), false);
  assert.equal(embeddingFits('[1,2,3.4e38]', 3), true);
  assert.equal(embeddingFits('[1,2,3.5e38]', 3), false);
  assert.equal(embeddingFits('[1,2,1e-999]', 3), true);
  assert.equal(embeddingFits(`[${Array.from({ length: 16000 }, () => '0.5').join(',')}]`, 16000), true);
});

test('jsonbNumberProblem: the numbers jsonb cannot hold', () => {
  assert.equal(jsonbNumberProblem('1e400'), undefined);
  assert.equal(jsonbNumberProblem('1e-400'), undefined);
  assert.equal(jsonbNumberProblem('12345678901234567890'), undefined);
  assert.match(jsonbNumberProblem('1e1073741823')!, /overflows/);
  assert.match(jsonbNumberProblem('0e-1073741823')!, /overflows/);
  assert.match(jsonbNumberProblem('1e131072')!, /overflows/);
  assert.match(jsonbNumberProblem('1e-20000')!, /overflows/);
});

function csv(text: string, dimension = 3): Parsed[] {
  const p = csvParser(dimension);
  const out: Parsed[] = [];
  text.split('\n').forEach((t, i) => {
    const r = p.push({ line: i + 1, text: t });
    if (r) out.push(r);
  });
  const end = p.end();
  if (end) out.push(end);
  return out;
}

test('CSV: RFC 4180 records; columns by the header, in any order; metadata optional', () => {
  assert.deepEqual(
    csv('id,embedding,metadata\na,"[1,2,3]","{""k"": ""v,w""}"\nb,"[4,5,6]",\n""," [7,8,9] ",{}\n'),
    [
      { line: 2, id: 'a', embedding: '[1,2,3]', metadata: '{"k": "v,w"}' },
      { line: 3, id: 'b', embedding: '[4,5,6]', metadata: '{}' },
      { line: 4, id: '', embedding: '[7,8,9]', metadata: '{}' },
    ],
  );
  assert.deepEqual(csv('Embedding, ID\n"[1,2,3]",x'), [{ line: 2, id: 'x', embedding: '[1,2,3]', metadata: '{}' }]);
  // A quoted field may span lines: the record is named by its first line.
  assert.deepEqual(csv('id,embedding,metadata\n"multi\nline",\"[1,2,3]\","{""a"":\n1}"\nz,"[0,0,0]",'), [
    { line: 2, id: 'multi\nline', embedding: '[1,2,3]', metadata: '{"a":\n1}' },
    { line: 5, id: 'z', embedding: '[0,0,0]', metadata: '{}' },
  ]);
});

test('CSV: bad records are bad lines; a bad header stops the load', () => {
  const bad = (text: string) => csv(`id,embedding,metadata\n${text}`).map((p) => (isBad(p) ? [p.line, p.reason] : [p.line, 'ok']));
  assert.deepEqual(bad(',"[1,2,3]",'), [[2, 'no id']]);
  assert.deepEqual(bad('a,,'), [[2, 'no embedding']]);
  assert.deepEqual(bad('a,[1,2,3],'), [[2, '5 fields; the header has 3']]);
  assert.deepEqual(bad('a,"[1,2]",'), [[2, 'the embedding has 2 dimensions; the collection has 3']]);
  assert.deepEqual(bad('a,"[1,2,x]",'), [[2, "the embedding is not a JSON array: Unexpected token 'x'"]]);
  assert.match(String(bad('a,"[1,2,3]",[1]')[0]![1]), /the metadata must be a JSON object/);
  assert.match(String(bad('a,"[1,2,3]",{x}')[0]![1]), /^the metadata is not valid JSON/);
  assert.match(String(bad('a"b,"[1,2,3]",')[0]![1]), /a quote inside an unquoted field/);
  assert.match(String(bad('"a"b,"[1,2,3]",')[0]![1]), /text after its closing quote/);
  assert.deepEqual(bad('a,"[1,2,3],\nb,x,'), [[2, 'a quoted field opened on this line is never closed']]);
  assert.throws(() => csv('id,vector\na,"[1,2,3]"'), InputFormatError);
  assert.throws(() => csv('id,metadata\na,{}'), /must name id and embedding/);
  assert.throws(() => csv('id,id,embedding\n'), /names id twice/);
  assert.throws(() => csv('a,"[1,2,3]",{}'), /column 1 of the header is "a"/);
  // No header at all (an empty input, blank lines only): not a CSV vecscale can read (exit 6), as the README says.
  assert.throws(() => csv(''), /the CSV input is empty/);
  assert.throws(() => csv('\n\n'), /the CSV input is empty/);
  assert.deepEqual(csv('id,embedding\n'), []);
  // null metadata is no metadata, as in JSON lines.
  assert.deepEqual(csv('id,embedding,metadata\na,"[1,2,3]",null'), [{ line: 2, id: 'a', embedding: '[1,2,3]', metadata: '{}' }]);
});

test('parseCsvRecord: empty unquoted fields are null, quoted ones text', () => {
  assert.deepEqual(parseCsvRecord('a,,""'), { fields: ['a', null, ''] });
  assert.deepEqual(parseCsvRecord(','), { fields: [null, null] });
  assert.deepEqual(parseCsvRecord('"a""b",c'), { fields: ['a"b', 'c'] });
  assert.equal(parseCsvRecord('"open'), 'open');
});

test('COPY text: escapes and line numbers', () => {
  assert.equal(copyField('plain'), 'plain');
  assert.equal(copyField('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
  assert.equal(copyLine({ line: 1, id: 'i\t1', embedding: '[1,2]', metadata: '{"k":"\\n"}' }), 'i\\t1\t[1,2]\t{"k":"\\\\n"}\n');
  assert.equal(copyErrorLine({ where: 'COPY docs_p0of2, line 17, column vec: "[1,2"' }), 17);
  assert.equal(copyErrorLine({ where: 'COPY docs, line 3' }), 3);
  assert.equal(copyErrorLine({ where: 'SQL function' }), undefined);
  assert.equal(copyErrorLine(undefined), undefined);
});

test('formatOfName', () => {
  assert.equal(formatOfName('rows.jsonl'), 'jsonl');
  assert.equal(formatOfName('ROWS.NDJSON'), 'jsonl');
  assert.equal(formatOfName('rows.csv.gz'), 'csv');
  assert.equal(formatOfName('rows.jsonl.gz'), 'jsonl');
  assert.equal(formatOfName('rows.json'), undefined);
  assert.equal(formatOfName('rows'), undefined);
});
