/**
 * `zoopa init`: a first, commented zoopa.yaml from what is in the stacks root
 * and the original hand-written setup. It never overwrites a zoopa.yaml: when
 * one exists, the result is what would be added to it, as a diff, and nothing
 * is written. Every text it would write is validated against the schema first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, parseConfigText } from '../config/load.js';
import { StateError } from '../errors.js';
import { lineDiff } from '../unitfile/diff.js';
import { mergeInto, renderNew } from './document.js';
import { readOriginal } from './original.js';
import { propose } from './propose.js';
import { scanRoot, type BadFolder } from './scan.js';

export interface InitPlan {
  root: string;
  file: string;
  /** zoopa.yaml exists already (then nothing is ever written). */
  exists: boolean;
  /** The new file's text, or the existing file with the additions. */
  text: string;
  /** For an existing file: the keys that would be added, and the diff. */
  added: string[];
  diff: string | undefined;
  stacks: string[];
  badNames: BadFolder[];
  notes: string[];
  /** Files of the original setup whose settings were carried over. */
  migrated: string[];
}

export function planInit(root: string, env: NodeJS.ProcessEnv): InitPlan {
  const file = path.join(root, CONFIG_FILE);
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // An existing zoopa.yaml must be valid before anything is added to it (exit 2 naming it if not).
  const current = existing !== undefined ? parseConfigText(existing, file) : undefined;
  const scan = scanRoot(root);
  const original = readOriginal({
    root,
    stacks: scan.stacks.map((s) => s.name),
    env,
    unitsDir: current?.units_dir !== undefined ? path.resolve(root, current.units_dir) : undefined,
  });
  const proposal = propose(scan, original, env);
  let text: string;
  let added: string[] = [];
  let diff: string | undefined;
  if (existing === undefined) text = renderNew(proposal);
  else {
    const m = mergeInto(existing, proposal);
    text = m.text;
    added = m.added;
    diff = added.length ? lineDiff(existing, text) : undefined;
  }
  try {
    parseConfigText(text, file);
  } catch (e) {
    throw new StateError('ZOOPA_INIT_INVALID', `zoopa init made a zoopa.yaml that does not validate (a bug in zoopa): ${(e as Error).message}`, { cause: e });
  }
  return {
    root,
    file,
    exists: existing !== undefined,
    text,
    added,
    diff,
    stacks: scan.stacks.map((s) => s.name),
    badNames: scan.badNames,
    notes: proposal.notes,
    migrated: proposal.migrated,
  };
}

/** Write a new zoopa.yaml; never replaces one (even one that appeared since planning). */
export function applyInit(plan: InitPlan): boolean {
  if (plan.exists) return false;
  const tmp = `${plan.file}.zoopa-tmp-${process.pid}`;
  fs.writeFileSync(tmp, plan.text, { mode: 0o644 });
  try {
    fs.linkSync(tmp, plan.file); // fails with EEXIST instead of overwriting
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new StateError('ZOOPA_INIT_EXISTS', `${plan.file} appeared while zoopa init ran; it was left alone`, { cause: e });
    }
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return true;
}
