/**
 * Secrets that URLs carry, kept out of logs, errors and plans:
 *  - a restic repository like `rest:https://user:secret@host/repo` or
 *    `s3:https://host/bucket?access_key=...`: the password of the userinfo and
 *    the query string are replaced by `***`;
 *  - a healthchecks-style ping URL, whose path (a UUID) is the secret: only the
 *    origin is shown, with the suffix (/start, /fail).
 */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):([^/@\s]+)@/gi;
const QUERY = /\b([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)\?[^\s#]*/gi;

/** Every URL in `text` with its userinfo password and query string replaced by ***. */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1$2:***@').replace(QUERY, '$1?***');
}

/** A ping URL as warnings show it: its origin, `/***` for the secret path, and `suffix`. */
export function redactPingUrl(url: string, suffix = ''): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/***${suffix}`;
  } catch {
    return `***${suffix}`;
  }
}
