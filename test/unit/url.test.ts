import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactUrl, scrub } from '../../src/util/url.js';

test('redactUrl keeps user, host, port and database and drops the password and query', () => {
  assert.equal(
    redactUrl('postgres://app:s3cr3t-pw@db.pod1.internal:6543/vectors?sslmode=require&password=x'),
    'postgres://app@db.pod1.internal:6543/vectors',
  );
  assert.equal(redactUrl('postgresql://db.example/postgres'), 'postgresql://db.example/postgres');
  assert.equal(redactUrl('not a url with p4ssword'), '<invalid url>');
});

test('scrub removes every occurrence of a secret', () => {
  assert.equal(scrub('a hunter2 b hunter2', ['hunter2']), 'a *** b ***');
});
