/**
 * SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677), computed here as `psql \password` computes them, so that
 * `CREATE/ALTER ROLE … PASSWORD` carries a verifier and the plain password never reaches the server.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's default (`scram_iterations` is 4096 in PG15, not settable before PG16). */
export const SCRAM_ITERATIONS = 4096;

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form pg_authid.rolpassword stores.
 * NOTE: PostgreSQL SASLprep-normalises the password first; vecscale's generated passwords are ASCII (base64url), and a
 * configured non-ASCII password is used byte for byte — as libpq does for a password that SASLprep rejects.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
