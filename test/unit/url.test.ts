import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePgUrl, redactUrl, scrub, withPassword } from '../../src/util/url.js';

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
