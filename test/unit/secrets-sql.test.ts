/**
 * The pure parts of keeping secrets out of statement text, and of exact ACLs: where placeholders are recognised,
 * the DO block that fills them in the database, the SCRAM verifier's form, and GRANT/REVOKE from one ACL to another.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';
import { secretStatementBlock } from '../../src/apply/secrets.js';
import { initialAcl } from '../../src/model/state.js';
import { aclSql } from '../../src/plan/sql.js';
import { dollarQuoted, hasSecret, literal, placeholders, redactSecrets, secret, verifier } from '../../src/sql/quote.js';
import { scramVerifier } from '../../src/util/scram.js';

test('placeholders are recognised in SQL code only: never inside a literal, an identifier, a dollar quote or a comment', () => {
  const stmt = `ALTER USER MAPPING FOR PUBLIC SERVER "pod" OPTIONS (SET "password" ${secret('pod.fdw_password')})`;
  assert.deepEqual(placeholders(stmt).map((p) => [p.form, p.ref]), [['secret', 'pod.fdw_password']]);
  assert.equal(redactSecrets(stmt), `ALTER USER MAPPING FOR PUBLIC SERVER "pod" OPTIONS (SET "password" '<redacted>')`);
  // A value from the topology reaches SQL through literal()/ident(): quoted, so it is text, not a placeholder.
  const hostile = `CREATE SERVER "pod" FOREIGN DATA WRAPPER "postgres_fdw" OPTIONS ("dbname" ${literal("x{{secret:pod.fdw_password}}'y")}, "host" ${literal('{{verifier:pod.fdw_password}}')})`;
  assert.equal(hasSecret(hostile), false);
  assert.equal(redactSecrets(hostile), hostile);
  for (const quoted of [`"{{secret:a.b}}"`, `$q$ {{secret:a.b}} $q$`, `$$ {{secret:a.b}} $$`, `-- {{secret:a.b}}\nSELECT 1`, `/* {{secret:a.b}} */ SELECT 1`]) {
    assert.equal(hasSecret(quoted), false, quoted);
  }
  assert.deepEqual(placeholders(`ALTER ROLE "r" PASSWORD ${verifier('pod.fdw_password')}`).map((p) => p.form), ['verifier']);
  // A parameter marker is not a dollar quote.
  assert.equal(hasSecret(`SELECT $1, ${secret('a.b')}`), true);
});

test('a statement with placeholders runs as a DO block that builds it in the database: no secret in its text', () => {
  const stmt = `CREATE USER MAPPING FOR PUBLIC SERVER "p%d" OPTIONS ("password" ${secret('pod.fdw_password')}, "user" 'w')`;
  assert.equal(
    secretStatementBlock(stmt),
    `DO $vecscale$ BEGIN EXECUTE pg_catalog.format('CREATE USER MAPPING FOR PUBLIC SERVER "p%%d" OPTIONS ("password" %1$L, "user" ''w'')', ` +
      `pg_catalog.current_setting('vecscale.secret_0')); EXCEPTION WHEN OTHERS THEN RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM; END $vecscale$`,
  );
  // Nothing in a statement can end the DO body early: the tag is chosen around it.
  assert.equal(dollarQuoted('a $vecscale$ b'), '$vecscale1$a $vecscale$ b$vecscale1$');
  assert.match(secretStatementBlock(`SELECT '$vecscale$' || ${secret('a.b')}`), /^DO \$vecscale1\$ /);
});

test('a SCRAM-SHA-256 verifier in the form pg_authid stores; the password is not in it', () => {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const v = scramVerifier('pencil', salt);
  assert.match(v, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  assert.equal(scramVerifier('pencil', salt), v, 'deterministic for a salt');
  assert.notEqual(scramVerifier('pencil'), scramVerifier('pencil'), 'a fresh salt each time');
  assert.ok(!v.includes('pencil'));
  // RFC 7677's example exchange (password "pencil", that salt, 4096 iterations) checks out against these keys, as
  // PostgreSQL checks a login: the server's signature is HMAC(ServerKey, AuthMessage), and the client's proof XOR
  // HMAC(StoredKey, AuthMessage) is a ClientKey whose hash is StoredKey.
  const [storedKey, serverKey] = v.split('$')[2]!.split(':').map((k) => Buffer.from(k, 'base64')) as [Buffer, Buffer];
  const nonce = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
  assert.equal(createHmac('sha256', serverKey).update(authMessage).digest('base64'), '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
  const signature = createHmac('sha256', storedKey).update(authMessage).digest();
  const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
  assert.deepEqual(createHash('sha256').update(clientKey).digest(), storedKey);
});

test('ACL changes: revokes first, grantees sharing a change share a statement, column privileges and grant options too', () => {
  const target = { what: 'TABLE' as const, name: '"public"."docs"' };
  assert.deepEqual(
    aclSql(
      target,
      {
        anon: ['DELETE', 'INSERT', 'SELECT', 'UPDATE(metadata)'],
        authenticated: ['DELETE', 'INSERT', 'SELECT'],
        public: ['SELECT'],
        service_role: ['SELECT*'],
        stranger: ['SELECT'],
      },
      { anon: ['SELECT'], authenticated: ['SELECT'], service_role: ['DELETE', 'INSERT', 'SELECT', 'UPDATE'] },
    ),
    [
      'REVOKE ALL ON TABLE "public"."docs" FROM PUBLIC, "stranger"',
      'REVOKE DELETE, INSERT ON TABLE "public"."docs" FROM "anon", "authenticated"',
      'REVOKE UPDATE ("metadata") ON TABLE "public"."docs" FROM "anon"',
      // What service_role granted onward goes with its grant option (CASCADE: nothing else may revoke it).
      'REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."docs" FROM "service_role" CASCADE',
      'GRANT DELETE, INSERT, UPDATE ON TABLE "public"."docs" TO "service_role"',
    ],
  );
  assert.deepEqual(aclSql(target, { anon: ['SELECT'] }, { anon: ['SELECT'] }), []);
});

test('the initial ACL of an object is what PostgreSQL gives it: built-in defaults, the global entry, the schema entry', () => {
  assert.deepEqual(initialAcl(undefined, 'f', 'public'), { public: ['EXECUTE'] });
  assert.deepEqual(initialAcl(undefined, 'r', 'public'), {});
  const supabase = { global: {}, inSchema: { public: { r: { anon: ['SELECT', 'INSERT'] }, f: { anon: ['EXECUTE'] } } } };
  assert.deepEqual(initialAcl(supabase, 'r', 'public'), { anon: ['INSERT', 'SELECT'] });
  assert.deepEqual(initialAcl(supabase, 'f', 'public'), { anon: ['EXECUTE'], public: ['EXECUTE'] });
  assert.deepEqual(initialAcl(supabase, 'r', 'vecscale_remote'), {});
  // A global entry replaces the built-in default (here: functions no longer executable by PUBLIC).
  assert.deepEqual(initialAcl({ global: { f: {} }, inSchema: {} }, 'f', 'vecscale'), {});
});
