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
 *  - a value never contains a newline, and never ends in a backslash (systemd
 *    would join the next line to it: `WorkingDirectory=~/wd\` swallows the
 *    `ExecStart=` after it). Exec words and Environment= assignments are quoted,
 *    so a backslash there is escaped and round-trips; in any other value it is
 *    refused.
 *
 * A value that cannot be written is not an exception where it is built but a
 * value carrying its problem: `Section.add()` then throws a `UnitValueError`
 * (an InputError, exit 2) naming the unit, section, key and value, so the user
 * learns which setting to change instead of seeing an internal error.
 *
 * Raw values (`raw()`) are for systemd syntax we write ourselves, such as `%t`
 * or `%i` specifiers, and are checked the same way (thrown at once).
 */
import path from 'node:path';
import { InputError, type InputLocation, type ZoopaErrorOptions } from '../errors.js';

/** A value that cannot be written into a unit file (line break, trailing backslash, relative path...). */
export class UnitValueError extends InputError {
  constructor(message: string, loc: InputLocation & ZoopaErrorOptions = {}) {
    super('ZOOPA_UNIT_VALUE', message, loc);
  }
}

/** Why a line of unit-file text cannot hold this value, or undefined. */
function lineProblem(text: string): { problem: string; hint: string } | undefined {
  if (/[\n\r]/.test(text)) return { problem: 'contains a line break', hint: 'remove the line break: a unit file value is one line' };
  if (text.includes('\0')) return { problem: 'contains a NUL character', hint: 'remove the NUL character' };
  if (/\\\s*$/.test(text)) {
    return { problem: 'ends in a backslash, which systemd reads as a line continuation (the next line would be joined to it)', hint: 'remove the trailing backslash' };
  }
  return undefined;
}

/** A value already in unit-file syntax. Build one with the helpers below. */
export class UnitValue {
  private constructor(
    readonly text: string,
    /** Set when the value cannot be written; Section.add() reports it naming the key. */
    readonly problem?: { problem: string; hint: string; input: unknown },
  ) {}
  static of(text: string, input: unknown = text): UnitValue {
    const p = lineProblem(text);
    return new UnitValue(text, p && { ...p, input });
  }
  /** A value that cannot be written: reported by Section.add() with the key it was meant for. */
  static invalid(input: unknown, problem: string, hint: string): UnitValue {
    return new UnitValue('', { problem, hint, input });
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
  return UnitValue.of(escapeSpecifiers(s), s);
}

/** An absolute path, specifiers escaped. Spaces are fine (value runs to end of line). */
export function absPath(p: string): UnitValue {
  if (!path.isAbsolute(p)) return UnitValue.invalid(p, 'is not an absolute path', 'give an absolute path (starting with /)');
  if (p !== p.trim()) return UnitValue.invalid(p, 'has leading or trailing white space', 'remove the white space around the path');
  return literal(p);
}

/**
 * An Exec*= command line. The first word must be an absolute path; `prefix`
 * may hold systemd's executable prefixes (e.g. '-' to ignore failure).
 */
export function exec(argv: readonly string[], prefix = ''): UnitValue {
  const [bin, ...args] = argv;
  if (!bin || !path.isAbsolute(bin)) return UnitValue.invalid(argv, `does not start with an absolute program path (${JSON.stringify(bin ?? '')})`, 'name the program by its absolute path');
  if (!/^[-@:+!]*$/.test(prefix)) throw new UnitValueError(`bad Exec prefix ${prefix}`, { value: prefix });
  return UnitValue.of(prefix + [bin, ...args].map(execWord).join(' '), argv);
}

/**
 * An Exec*= command line whose words may hold systemd syntax we write on
 * purpose (`%i`, `%t`, `${VAR}`): each word is given as either a literal
 * string or a raw UnitValue inserted as it is.
 */
export function execWith(words: ReadonlyArray<string | UnitValue>, prefix = ''): UnitValue {
  const first = words[0];
  const input = words.map((w) => (typeof w === 'string' ? w : w.text));
  if (typeof first === 'string' && !path.isAbsolute(first)) return UnitValue.invalid(input, `does not start with an absolute program path (${JSON.stringify(first)})`, 'name the program by its absolute path');
  const bad = words.find((w): w is UnitValue => typeof w !== 'string' && w.problem !== undefined);
  if (bad) return bad;
  return UnitValue.of(prefix + words.map((w) => (typeof w === 'string' ? execWord(w) : w.text)).join(' '), input);
}

/** One Environment= assignment: `"NAME=value"`. */
export function envAssignment(name: string, value: string): UnitValue {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return UnitValue.invalid(name, 'is not an environment variable name', 'use letters, digits and _, not starting with a digit');
  const word = `${name}=${value}`;
  return UnitValue.of(SAFE_WORD.test(word) ? escapeSpecifiers(word) : `"${cEscape(word, false)}"`, word);
}

/** Systemd syntax written on purpose (specifiers like %t, %i). Checked for line breaks and a trailing backslash, at once. */
export function raw(text: string): UnitValue {
  const v = UnitValue.of(text);
  if (v.problem) throw new UnitValueError(`unit value ${JSON.stringify(text)} ${v.problem.problem}`, { value: text, hint: v.problem.hint });
  return v;
}

function toValue(v: ValueLike): UnitValue {
  if (v instanceof UnitValue) return v;
  if (typeof v === 'boolean') return UnitValue.of(v ? 'yes' : 'no');
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return UnitValue.invalid(v, 'is not a finite number', 'give a number');
    return UnitValue.of(String(v));
  }
  return literal(v);
}

function showInput(v: unknown): string {
  return Array.isArray(v) ? `[${v.map((w) => JSON.stringify(w)).join(', ')}]` : JSON.stringify(v);
}

export interface Entry {
  key: string;
  value: UnitValue;
}

export class Section {
  readonly entries: Entry[] = [];
  /** `origin`: what the unit is and where it comes from (e.g. `web-stack.service (stacks.web)`), for error messages. */
  constructor(
    readonly name: string,
    readonly origin?: string,
  ) {}

  /**
   * Append `key=value`; strings are treated as literals (specifiers escaped).
   * A value that cannot be written throws a UnitValueError naming this key.
   */
  add(key: string, value: ValueLike): this {
    const unitKey = `[${this.name}] ${key}=`;
    const where = `${this.origin ? `${this.origin}: ` : ''}${unitKey}`;
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new UnitValueError(`${where}: not a unit key`, { key: unitKey, value: key });
    const v = toValue(value);
    if (v.problem) {
      throw new UnitValueError(`${where}: the value ${showInput(v.problem.input)} ${v.problem.problem}`, {
        key: unitKey,
        value: v.problem.input,
        hint: v.problem.hint,
      });
    }
    this.entries.push({ key, value: v });
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

  /** `origin`: what the unit is and where it comes from, named in error messages. */
  constructor(
    readonly comments: readonly string[] = [],
    readonly origin?: string,
  ) {
    for (const c of comments) {
      const p = lineProblem(c);
      if (p) throw new UnitValueError(`${origin ? `${origin}: ` : ''}the header comment ${JSON.stringify(c)} ${p.problem}`, { key: 'comment', value: c, hint: p.hint });
    }
  }

  /** The section called `name`, created (at the end) on first use. */
  section(name: string): Section {
    let s = this.sections.find((x) => x.name === name);
    if (!s) {
      s = new Section(name, this.origin);
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
