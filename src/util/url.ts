/**
 * Connection URLs carry passwords. Everything vecscale prints goes through `redactUrl`, which keeps
 * `postgres://user@host:port/db` and drops the password and every query parameter that could hold one.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<invalid url>';
  }
  const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
  const port = u.port ? `:${u.port}` : '';
  return `${u.protocol}//${user}${u.hostname}${port}${u.pathname}`;
}

/** Removes every occurrence of each secret from a text (error messages from drivers may echo input). */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}
