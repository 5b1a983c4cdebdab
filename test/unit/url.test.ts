import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePgUrl, pgConnection, redactUrl, scrub, SSL_MODES, transactionPoolerProblem, urlParameterProblem, withPassword } from '../../src/util/url.js';

test('redactUrl keeps user, host, port and database and drops the password and query', () => {
  assert.equal(
    redactUrl('postgres://app:s3cr3t-pw@db.pod1.internal:6543/vectors?sslmode=require&password=x'),
    'postgres://app@db.pod1.internal:6543/vectors',
  );
  assert.equal(redactUrl('postgresql://db.example/postgres'), 'postgresql://db.example/postgres');
  assert.equal(redactUrl('not a url with p4ssword'), '<invalid url>');
});

test('redactUrl drops every password: encoded userinfo, query parameters, fragments, no user', () => {
  const cases: [string, string][] = [
    ['postgres://me%40corp:p%40ss%3Aw%2Frd@[::1]:5432/db?password=q-secret#frag-secret', 'postgres://me@corp@[::1]:5432/db'],
    ['postgres://u@h/db?password=q-secret', 'postgres://u@h/db'],
    ['postgres://u@h/db?PASSWORD=q-secret&sslmode=require', 'postgres://u@h/db'],
    ['postgres://:only-pw-secret@h/db', 'postgres://h/db'],
    ['postgres://u:pw-secret@h', 'postgres://u@h'],
  ];
  for (const [url, shown] of cases) assert.equal(redactUrl(url), shown, url);
});

test('redactUrl shows nothing of a URL whose password has an unencoded / ? or # (it would parse as port or path)', () => {
  for (const url of ['postgres://u:1234/x-secret@h/db', 'postgres://u:2024?x-secret@h/db', 'postgres://u:2024#x-secret@h/db', 'postgres://u:pa/ss-secret@h/db']) {
    const shown = redactUrl(url);
    assert.equal(shown, '<invalid url>', url);
  }
});

test('withPassword puts a password into the userinfo, percent-encoded, and keeps the rest as written', () => {
  const password = 'p@ss:w/rd#?% x[]\'!';
  const url = withPassword('postgresql://app.user@db.internal:6543/app?sslmode=require', password);
  assert.equal(url, `postgresql://app.user:${encodeURIComponent(password)}@db.internal:6543/app?sslmode=require`);
  assert.equal(parsePgUrl(url).password, password);
  assert.equal(parsePgUrl(url).user, 'app.user');
  assert.equal(redactUrl(url), 'postgresql://app.user@db.internal:6543/app');
  assert.equal(withPassword('postgres://u:@h', 'x'), 'postgres://u:x@h');
  assert.equal(withPassword('postgres://me%40corp@h/db#f', 'x'), 'postgres://me%40corp:x@h/db#f');
  assert.throws(() => withPassword('postgres://h/db', 'x'), /no user/);
});

test('scrub removes every occurrence of a secret', () => {
  assert.equal(scrub('a hunter2 b hunter2', ['hunter2']), 'a *** b ***');
});

test('urlParameterProblem: sslmode with a libpq value is the one parameter; every other is named, never its value', () => {
  for (const mode of SSL_MODES) assert.equal(urlParameterProblem(`postgres://u@h/db?sslmode=${mode}`), undefined, mode);
  assert.equal(urlParameterProblem('postgres://u@h/db'), undefined);
  // A password parameter has a rule of its own (config: noPasswordParameter).
  assert.equal(urlParameterProblem('postgres://u@h/db?password=x'), undefined);
  assert.match(urlParameterProblem('postgres://u@h/db?sslmode=requir')!, /^has sslmode="requir"; sslmode is one of disable, allow, prefer, require, verify-ca, verify-full$/);
  assert.match(urlParameterProblem('postgres://u@h/db?sslmode=')!, /^has sslmode=""/);
  assert.match(urlParameterProblem('postgres://u@h/db?sslmode=disable&sslmode=require')!, /^has parameter sslmode twice/);
  const cases: Array<[string, RegExp]> = [
    ['port=5433', /^has parameter port: write it in the URL itself/],
    ['host=other', /^has parameter host: write it in the URL itself/],
    ['dbname=x', /^has parameter dbname: /],
    ['user=x', /^has parameter user: /],
    ['options=-c%20default_transaction_read_only%3Doff', /^has parameter options: vecscale sets session options itself/],
    ['application_name=x', /^has parameter application_name: /],
    ['connect_timeout=3', /^has parameter connect_timeout: vecscale's own connections take --connect-timeout/],
    ['sslrootcert=%2Fetc%2Fca.pem', /^has parameter sslrootcert: it names a file, which vecscale would read on this machine/],
    ['sslkey=%2Fk', /^has parameter sslkey: it names a file/],
    ['sslpassword=hunter2-secret', /^has parameter sslpassword: /],
    ['target_session_attrs=read-write', /^has parameter target_session_attrs: /],
    ['ssl=true', /^has parameter ssl: it is node-pg's own parameter/],
    ['SSLMODE=require', /^has parameter SSLMODE: did you mean sslmode\? /],
    ['ssl_mode=require', /^has parameter ssl_mode: did you mean sslmode\? /],
    ['frobnicate=1', /^has parameter frobnicate: vecscale cannot carry it to both its own connection and the wrappers on the primary \(URLs take only sslmode\)$/],
  ];
  for (const [query, message] of cases) {
    const problem = urlParameterProblem(`postgres://u@h/db?sslmode=require&${query}`);
    assert.match(problem ?? '', message, query);
    assert.ok(!(problem ?? '').includes('hunter2'), 'a value is never shown');
  }
});

test('pgConnection: libpq sslmode semantics for node-pg, every part from the URL itself, prefer by default', () => {
  const c = pgConnection('postgres://me%40corp:p%40ss@[::1]:6000/vectors?sslmode=require');
  assert.deepEqual([c.host, c.port, c.database, c.user, c.password], ['::1', 6000, 'vectors', 'me@corp', 'p@ss']);
  const ssl = (mode: string) => pgConnection(`postgres://u@h/db${mode ? `?sslmode=${mode}` : ''}`).ssl;
  assert.deepEqual(ssl('disable'), [false]);
  assert.deepEqual(ssl('allow'), [false, { rejectUnauthorized: false }]);
  assert.deepEqual(ssl('prefer'), [{ rejectUnauthorized: false }, false]);
  assert.deepEqual(ssl(''), ssl('prefer'));
  assert.deepEqual(ssl('require'), [{ rejectUnauthorized: false }]);
  // verify-ca: the chain is checked, the host name is not.
  const [ca] = ssl('verify-ca') as [{ rejectUnauthorized: boolean; checkServerIdentity?: () => undefined }];
  assert.equal(ca.rejectUnauthorized, true);
  assert.equal(ca.checkServerIdentity?.(), undefined);
  assert.deepEqual(ssl('verify-full'), [{ rejectUnauthorized: true }]);
  assert.equal(parsePgUrl('postgres://u@h/db?sslmode=verify-full').sslmode, 'verify-full');
});

test('transactionPoolerProblem: Supabase port 6543 is refused with the direct URL; the session pooler and other hosts pass', () => {
  const pooler = transactionPoolerProblem('postgres://postgres.abcdefghij@aws-0-eu-central-1.pooler.supabase.com:6543/postgres');
  assert.match(pooler ?? '', /transaction pooler \(port 6543\)/);
  assert.match(pooler ?? '', /Use the direct URL \(postgres:\/\/postgres@db\.abcdefghij\.supabase\.co:5432\/postgres\)/);
  const dedicated = transactionPoolerProblem('postgres://postgres@db.abcdefghij.supabase.co:6543/postgres');
  assert.match(dedicated ?? '', /postgres:\/\/postgres@db\.abcdefghij\.supabase\.co:5432\/postgres/);
  assert.equal(transactionPoolerProblem('postgres://postgres.abcdefghij@aws-0-eu-central-1.pooler.supabase.com:5432/postgres'), undefined);
  assert.equal(transactionPoolerProblem('postgres://postgres@db.abcdefghij.supabase.co:5432/postgres'), undefined);
  // Elsewhere the connection tells (src/db/pooler.ts): a PostgreSQL may listen on 6543.
  assert.equal(transactionPoolerProblem('postgres://u@db.internal:6543/app'), undefined);
});
