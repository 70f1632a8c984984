/**
 * A model of a systemd unit file: sections of ordered key/value entries,
 * serialised with systemd's escaping rules. Renderers build units only through
 * this model, never by string templates, so a path with a space, a `%` or a `$`
 * reaches systemd exactly as written.
 *
 * Rules applied (systemd.unit(5), systemd.service(5), systemd.syntax(7)):
 *  - every value has specifiers expanded by systemd, so a literal `%` is `%%`;
 *  - Exec*= lines are split into words: a word with anything but safe
 *    characters is double-quoted with C escapes (`\\`, `\"`, `\n`, `\xNN`), and
 *    `$` (environment expansion) is written `$$`;
 *  - Environment= assignments are quoted words, but `$` is not expanded there;
 *  - a value never contains a newline (no line continuations are produced).
 *
 * Raw values (`raw()`) are for systemd syntax we write ourselves, such as `%t`
 * or `%i` specifiers, and are checked for newlines only.
 */
import path from 'node:path';

/** A value already in unit-file syntax. Build one with the helpers below. */
export class UnitValue {
  private constructor(readonly text: string) {}
  static of(text: string): UnitValue {
    if (/[\n\r]/.test(text)) throw new Error(`unit value contains a line break: ${JSON.stringify(text)}`);
    return new UnitValue(text);
  }
  toString(): string {
    return this.text;
  }
}

export type ValueLike = UnitValue | string | number | boolean;

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Escape systemd specifiers: `%` → `%%`. */
export function escapeSpecifiers(s: string): string {
  return s.replace(/%/g, '%%');
}

function cEscape(s: string, dollar: boolean): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (ch === '%') out += '%%';
    else if (ch === '$' && dollar) out += '$$';
    else out += ch;
  }
  return out;
}

/** One word of an Exec*= command line, quoted only when needed. */
export function execWord(word: string): string {
  if (word === ';') return '\\;';
  if (word !== '' && SAFE_WORD.test(word)) return escapeSpecifiers(word);
  return `"${cEscape(word, true)}"`;
}

/** Literal text with specifiers escaped (Description=, paths, names). */
export function literal(s: string): UnitValue {
  return UnitValue.of(escapeSpecifiers(s));
}

/** An absolute path, specifiers escaped. Spaces are fine (value runs to end of line). */
export function absPath(p: string): UnitValue {
  if (!path.isAbsolute(p)) throw new Error(`unit path must be absolute: ${p}`);
  if (p !== p.trim()) throw new Error(`unit path has leading or trailing white space: ${JSON.stringify(p)}`);
  return literal(p);
}

/**
 * An Exec*= command line. The first word must be an absolute path; `prefix`
 * may hold systemd's executable prefixes (e.g. '-' to ignore failure).
 */
export function exec(argv: readonly string[], prefix = ''): UnitValue {
  const [bin, ...args] = argv;
  if (!bin || !path.isAbsolute(bin)) throw new Error(`Exec command must start with an absolute path: ${bin}`);
  if (!/^[-@:+!]*$/.test(prefix)) throw new Error(`bad Exec prefix ${prefix}`);
  return UnitValue.of(prefix + [bin, ...args].map(execWord).join(' '));
}

/**
 * An Exec*= command line whose words may hold systemd syntax we write on
 * purpose (`%i`, `%t`, `${VAR}`): each word is given as either a literal
 * string or a raw UnitValue inserted as it is.
 */
export function execWith(words: ReadonlyArray<string | UnitValue>, prefix = ''): UnitValue {
  const first = words[0];
  if (typeof first === 'string' && !path.isAbsolute(first)) throw new Error(`Exec command must start with an absolute path: ${first}`);
  return UnitValue.of(prefix + words.map((w) => (typeof w === 'string' ? execWord(w) : w.text)).join(' '));
}

/** One Environment= assignment: `"NAME=value"`. */
export function envAssignment(name: string, value: string): UnitValue {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad environment variable name ${name}`);
  const word = `${name}=${value}`;
  return UnitValue.of(SAFE_WORD.test(word) ? escapeSpecifiers(word) : `"${cEscape(word, false)}"`);
}

/** Systemd syntax written on purpose (specifiers like %t, %i). Checked for newlines only. */
export function raw(text: string): UnitValue {
  return UnitValue.of(text);
}

function toValue(v: ValueLike): UnitValue {
  if (v instanceof UnitValue) return v;
  if (typeof v === 'boolean') return UnitValue.of(v ? 'yes' : 'no');
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`bad number in unit: ${v}`);
    return UnitValue.of(String(v));
  }
  return literal(v);
}

export interface Entry {
  key: string;
  value: UnitValue;
}

export class Section {
  readonly entries: Entry[] = [];
  constructor(readonly name: string) {}

  /** Append `key=value`; strings are treated as literals (specifiers escaped). */
  add(key: string, value: ValueLike): this {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new Error(`bad unit key ${key}`);
    this.entries.push({ key, value: toValue(value) });
    return this;
  }

  /** Append only when the value is defined. */
  addIf(key: string, value: ValueLike | undefined | null): this {
    if (value !== undefined && value !== null) this.add(key, value);
    return this;
  }

  get(key: string): string[] {
    return this.entries.filter((e) => e.key === key).map((e) => e.value.text);
  }
}

/** A whole unit file: header comments, then sections in insertion order. */
export class UnitFile {
  private readonly sections: Section[] = [];

  constructor(readonly comments: readonly string[] = []) {
    for (const c of comments) if (/[\n\r]/.test(c)) throw new Error('comment contains a line break');
  }

  /** The section called `name`, created (at the end) on first use. */
  section(name: string): Section {
    let s = this.sections.find((x) => x.name === name);
    if (!s) {
      s = new Section(name);
      this.sections.push(s);
    }
    return s;
  }

  /** All values of a key, raw unit syntax (for tests and diffs). */
  get(section: string, key: string): string[] {
    return this.sections.find((s) => s.name === section)?.get(key) ?? [];
  }

  toString(): string {
    const out: string[] = [];
    for (const c of this.comments) out.push(c === '' ? '#' : `# ${c}`);
    for (const s of this.sections) {
      if (out.length) out.push('');
      out.push(`[${s.name}]`);
      for (const e of s.entries) out.push(`${e.key}=${e.value.text}`);
    }
    return out.join('\n') + '\n';
  }
}

/** The header every unit zoopa writes carries; install/uninstall recognise it. */
export const GENERATED_MARKER = 'Generated by zoopa';

export function generatedHeader(source: string): string[] {
  return [`${GENERATED_MARKER} from ${source}.`, 'Do not edit: change zoopa.yaml and run "zoopa install".'];
}

/** Parse a unit file's text back into sections (for tests, doctor and diffs). Values stay raw. */
export function parseUnitText(text: string): Map<string, Array<[string, string]>> {
  const out = new Map<string, Array<[string, string]>>();
  let cur: Array<[string, string]> | undefined;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) continue;
    const m = /^\[(.+)\]$/.exec(t);
    if (m) {
      cur = out.get(m[1]!) ?? [];
      out.set(m[1]!, cur);
      continue;
    }
    const eq = t.indexOf('=');
    if (eq > 0 && cur) cur.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  }
  return out;
}
