/**
 * Env files in the format podman-compose and systemd's EnvironmentFile= share:
 * KEY=VALUE lines, `#` comments, optional `export `, optional single or double
 * quotes around the value. A line that is none of these is an error naming the
 * file and line.
 */
import fs from 'node:fs';
import { EnvFileError } from '../errors.js';

export interface EnvEntry {
  key: string;
  value: string;
  line: number;
}

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
