/**
 * Reading the original, hand-written setup (see the seed's systemd README) so
 * `zoopa init` can carry its settings over:
 *
 *  - `<stack>-stack.service` in the units folder (or linked into
 *    ~/.config/systemd/user): Description=, TimeoutStartSec=, TimeoutStopSec=,
 *    `-f` files, and `sudo` before podman-compose (the rootful stack);
 *  - `~/.config/zoopa-ondemand/<stack>.env`: ZOOPA_UPSTREAM, ZOOPA_IDLE_TIMEOUT,
 *    ZOOPA_STACK_UNIT and the other ZOOPA_* settings the proxy reads;
 *  - `duplicati-backup.service` (`ExecStart=.../duplicati/bin/backup <stack>...`)
 *    and `duplicati-backup.timer` (OnCalendar=, RandomizedDelaySec=).
 *
 * Files zoopa generated itself are skipped (they came from zoopa.yaml). Reading
 * never fails on what it does not understand: that becomes a note for the user.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../config/duration.js';
import { stackOfUnitName, stackUnitName } from '../names.js';
import { homeDir, ondemandEnvDir, ondemandEnvFile, userUnitDir } from '../paths.js';
import { parseEnvText } from '../envfile.js';
import { isGenerated } from '../units/install.js';
import { parseUnitText } from '../unitfile/model.js';

export interface OriginalStackUnit {
  file: string;
  description?: string;
  startTimeout?: number;
  stopTimeout?: number;
  /** Timeout keys present but not readable as seconds (e.g. infinity). */
  oddTimeouts: string[];
  rootful: boolean;
  /** The podman-compose binary the unit ran (absolute), if any. */
  podmanCompose?: string;
  /** `-f` files after the first, relative to the stack folder. */
  extraFiles: string[];
  /** The first `-f` file, when given. */
  mainFile?: string;
  /** `-p` project, when given. */
  project?: string;
  workingDirectory?: string;
  /** Stack units named in Requires= / BindsTo= (`db` for db-stack.service). */
  requires: string[];
  /** Stack units named in After= only (ordering without a requirement). */
  afterOnly: string[];
  stopWhenUnneeded: boolean;
  /** Settings zoopa's stack unit does not have (`[Section] Key=value`). */
  unmapped: string[];
}

/** What zoopa's stack unit has (or renders from zoopa.yaml); anything else in an original unit is reported. */
const MAPPED: Record<string, readonly string[]> = {
  Unit: ['Description', 'Documentation', 'Requires', 'BindsTo', 'After', 'StopWhenUnneeded'],
  Service: ['Type', 'RemainAfterExit', 'WorkingDirectory', 'ExecStart', 'ExecStop', 'TimeoutStartSec', 'TimeoutStopSec'],
  Install: ['WantedBy'],
};

export interface OriginalEnvFile {
  file: string;
  vars: Map<string, string>;
}

export interface OriginalBackup {
  serviceFile?: string;
  /** Arguments of the backup script, as written. */
  stacks: string[];
  timerFile?: string;
  onCalendar?: string;
  randomizedDelay?: number;
}

export interface OriginalSetup {
  unitsDir: string;
  stackUnits: Map<string, OriginalStackUnit>;
  envFiles: Map<string, OriginalEnvFile>;
  /** Hand-written env files in ~/.config/zoopa-ondemand for names that are no stack here (llama services, old stacks). */
  otherEnvFiles: string[];
  backup: OriginalBackup | undefined;
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** A hand-written unit called `name`: in the units folder, else in the user unit folder. */
function handWritten(name: string, dirs: readonly string[]): { file: string; text: string } | undefined {
  for (const d of dirs) {
    const file = path.join(d, name);
    const text = readText(file);
    if (text !== undefined) return isGenerated(text) ? undefined : { file, text };
  }
  return undefined;
}

/** systemd's word splitting of an Exec*= line (quotes and backslash escapes), `%h` and `%%` expanded. */
export function execWords(line: string, env: NodeJS.ProcessEnv): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  if (words[0]) words[0] = words[0].replace(/^[-@:+!]+/, '');
  return words.map((w) => w.replace(/%(.)/g, (_m, c: string) => (c === 'h' ? homeDir(env) : c === '%' ? '%' : `%${c}`)));
}

function values(parsed: Map<string, Array<[string, string]>>, section: string, key: string): string[] {
  return (parsed.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

function last(parsed: Map<string, Array<[string, string]>>, section: string, key: string): string | undefined {
  const all = values(parsed, section, key);
  return all[all.length - 1];
}

export function readStackUnit(file: string, text: string, env: NodeJS.ProcessEnv): OriginalStackUnit {
  const parsed = parseUnitText(text);
  const out: OriginalStackUnit = { file, oddTimeouts: [], rootful: false, extraFiles: [], requires: [], afterOnly: [], stopWhenUnneeded: false, unmapped: [] };
  const stackOf = (v: string) => v.split(/\s+/).flatMap((u) => stackOfUnitName(u) ?? []);
  out.requires = [...new Set([...values(parsed, 'Unit', 'Requires'), ...values(parsed, 'Unit', 'BindsTo')].flatMap(stackOf))];
  out.afterOnly = [...new Set(values(parsed, 'Unit', 'After').flatMap(stackOf))].filter((s) => !out.requires.includes(s));
  out.stopWhenUnneeded = /^(yes|true|on|1)$/i.test(last(parsed, 'Unit', 'StopWhenUnneeded') ?? '');
  for (const [section, entries] of parsed) {
    for (const [k, v] of entries) {
      const known = MAPPED[section]?.includes(k);
      const otherTargets = (k === 'Requires' || k === 'BindsTo' || k === 'After') && v.split(/\s+/).some((u) => stackOfUnitName(u) === undefined);
      const otherWanted = section === 'Install' && k === 'WantedBy' && v !== 'default.target';
      const oddService = (k === 'Type' && v !== 'oneshot') || (k === 'RemainAfterExit' && !/^(yes|true|on|1)$/i.test(v));
      if (!known || otherTargets || otherWanted || oddService) out.unmapped.push(`[${section}] ${k}=${v}`);
    }
  }
  const desc = last(parsed, 'Unit', 'Description');
  if (desc !== undefined) out.description = desc.replace(/%%/g, '%');
  for (const [key, field] of [
    ['TimeoutStartSec', 'startTimeout'],
    ['TimeoutStopSec', 'stopTimeout'],
  ] as const) {
    const v = last(parsed, 'Service', key);
    if (v === undefined) continue;
    const s = parseDuration(v);
    if (s === undefined) out.oddTimeouts.push(`${key}=${v}`);
    else out[field] = s;
  }
  const wd = last(parsed, 'Service', 'WorkingDirectory');
  if (wd) out.workingDirectory = execWords(wd, env)[0];
  const start = values(parsed, 'Service', 'ExecStart')[0];
  if (start) {
    const words = execWords(start, env);
    const at = words.findIndex((w) => path.basename(w) === 'podman-compose');
    if (at >= 0) {
      out.rootful = words.slice(0, at).some((w) => path.basename(w) === 'sudo');
      if (path.isAbsolute(words[at]!)) out.podmanCompose = words[at]!;
      const files: string[] = [];
      for (let i = at + 1; i < words.length; i++) {
        const w = words[i]!;
        if ((w === '-f' || w === '--file') && words[i + 1] !== undefined) files.push(words[++i]!);
        else if (w.startsWith('--file=')) files.push(w.slice(7));
        else if ((w === '-p' || w === '--project-name') && words[i + 1] !== undefined) out.project = words[++i]!;
        else if (w.startsWith('--project-name=')) out.project = w.slice(15);
      }
      if (files.length) {
        out.mainFile = files[0];
        out.extraFiles = files.slice(1);
      }
    }
  }
  return out;
}

export interface ReadOriginalOptions {
  root: string;
  /** The stacks found in the root (names). */
  stacks: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Where the original kept its units; default <root>/systemd. */
  unitsDir?: string;
}

export function readOriginal(opts: ReadOriginalOptions): OriginalSetup {
  const unitsDir = opts.unitsDir ?? path.join(opts.root, 'systemd');
  const dirs = [unitsDir, userUnitDir(opts.env)];
  const stackUnits = new Map<string, OriginalStackUnit>();
  const envFiles = new Map<string, OriginalEnvFile>();
  for (const name of opts.stacks) {
    const u = handWritten(stackUnitName(name), dirs);
    if (u) stackUnits.set(name, readStackUnit(u.file, u.text, opts.env));
    const file = ondemandEnvFile(name, opts.env);
    const text = readText(file);
    if (text !== undefined && !isGenerated(text)) {
      envFiles.set(name, { file, vars: new Map(parseEnvText(text, file).map((e) => [e.key, e.value])) });
    }
  }
  const otherEnvFiles: string[] = [];
  let listed: string[] = [];
  try {
    listed = fs.readdirSync(ondemandEnvDir(opts.env)).filter((f) => f.endsWith('.env')).sort();
  } catch {
    // no env folder: nothing on demand
  }
  for (const f of listed) {
    if (opts.stacks.includes(f.slice(0, -'.env'.length))) continue;
    const file = path.join(ondemandEnvDir(opts.env), f);
    const text = readText(file);
    if (text !== undefined && !isGenerated(text)) otherEnvFiles.push(file);
  }
  return { unitsDir, stackUnits, envFiles, otherEnvFiles, backup: readBackup(dirs, opts.env) };
}

function readBackup(dirs: readonly string[], env: NodeJS.ProcessEnv): OriginalBackup | undefined {
  const service = handWritten('duplicati-backup.service', dirs);
  const timer = handWritten('duplicati-backup.timer', dirs);
  if (!service && !timer) return undefined;
  const out: OriginalBackup = { stacks: [] };
  if (service) {
    out.serviceFile = service.file;
    const start = values(parseUnitText(service.text), 'Service', 'ExecStart')[0];
    if (start) {
      const words = execWords(start, env);
      const at = words.findIndex((w) => /(^|\/)bin\/backup$/.test(w) || path.basename(w) === 'backup');
      if (at >= 0) out.stacks = words.slice(at + 1).filter((w) => !w.startsWith('-'));
    }
  }
  if (timer) {
    out.timerFile = timer.file;
    const parsed = parseUnitText(timer.text);
    const cal = last(parsed, 'Timer', 'OnCalendar');
    if (cal) out.onCalendar = cal;
    const delay = last(parsed, 'Timer', 'RandomizedDelaySec');
    const d = delay !== undefined ? parseDuration(delay) : undefined;
    if (d !== undefined && d > 0) out.randomizedDelay = d;
  }
  return out;
}
