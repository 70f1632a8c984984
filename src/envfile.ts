/**
 * The one env-file codec: KEY=VALUE files in the format podman-compose and
 * systemd's EnvironmentFile= share (`#` comments, optional `export `, optional
 * single or double quotes around the value).
 *  - parseEnvText / readEnvFile: read; a line that is none of these is an
 *    EnvFileError naming the file and line;
 *  - formatEnvLine: write one line, double-quoted (with `\` escapes) when the
 *    value is not a plain word, so parseEnvText and systemd read back the value;
 *  - editEnvText: set keys in a file's text in place, keeping comments, order and
 *    every other line.
 * Dependency-free (node:fs and src/errors.ts only), so the proxy can use it too.
 */
import fs from 'node:fs';
import { EnvFileError } from './errors.js';

export interface EnvEntry {
  key: string;
  value: string;
  line: number;
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The start of an assignment line: `KEY=` or `export KEY =`; group 1 is the key. */
const ASSIGNMENT_RE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/;
/** Values written bare: nothing systemd or a shell-like reader would treat specially. */
const PLAIN_VALUE_RE = /^[A-Za-z0-9_@%+=:,./[\]-]*$/;

export function parseEnvText(text: string, file: string): EnvEntry[] {
  const out: EnvEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      throw new EnvFileError(`line ${i + 1}: not a KEY=VALUE assignment: ${JSON.stringify(raw.length > 60 ? raw.slice(0, 57) + '...' : raw)}`, {
        file,
        key: `line ${i + 1}`,
        value: raw,
        hint: 'write NAME=value (letters, digits and _ in the name), or start the line with # for a comment',
      });
    }
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`n])/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    out.push({ key: m[1]!, value, line: i + 1 });
  });
  return out;
}

/** Parse a file; undefined when it does not exist. */
export function readEnvFile(file: string): Map<string, string> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EnvFileError(`cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  return new Map(parseEnvText(text, file).map((e) => [e.key, e.value]));
}

/**
 * One KEY=VALUE line as systemd's EnvironmentFile= (and parseEnvText) read it back.
 * Throws an EnvFileError for a key that is no variable name or a value with a line break.
 */
export function formatEnvLine(key: string, value: string): string {
  if (!KEY_RE.test(key)) {
    throw new EnvFileError(`bad environment variable name ${key}`, { key, hint: 'letters, digits and _, not starting with a digit' });
  }
  if (/[\n\r\0]/.test(value)) {
    throw new EnvFileError(`environment value contains a line break: ${JSON.stringify(value)}`, { key, value, hint: 'write the value on one line' });
  }
  if (PLAIN_VALUE_RE.test(value)) return `${key}=${value}`;
  return `${key}="${value.replace(/[\\"$`]/g, (c) => '\\' + c)}"`;
}

/**
 * Set KEY=VALUE lines in an env file's text, in place: each line assigning the
 * key is replaced (so a later duplicate cannot win), keys not present are
 * appended; comments, blank lines, order and other keys stay. The result ends
 * with a newline.
 */
export function editEnvText(text: string, set: ReadonlyArray<readonly [string, string]>): string {
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  for (const [key, value] of set) {
    const line = formatEnvLine(key, value);
    let found = false;
    lines.forEach((l, i) => {
      if (ASSIGNMENT_RE.exec(l)?.[1] === key) {
        lines[i] = line;
        found = true;
      }
    });
    if (!found) lines.push(line);
  }
  return lines.join('\n') + '\n';
}
