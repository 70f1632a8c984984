/**
 * From what `zoopa init` found (scan.ts) and the original setup (original.ts)
 * to the settings of a first zoopa.yaml: plain data plus the comments and notes
 * that explain each choice. Settings are only those that keep the original
 * setup's behaviour; everything else is a commented suggestion.
 */
import path from 'node:path';
import { formatDuration, parseDuration } from '../config/duration.js';
import { DEFAULT_STACK_START_TIMEOUT_S as DEFAULT_START_TIMEOUT, DEFAULT_STACK_STOP_TIMEOUT_S as DEFAULT_STOP_TIMEOUT, ENV_IDLE_MODE, ENV_IDLE_TIMEOUT, ENV_READY, ENV_STACK_UNIT, ENV_START_TIMEOUT, ENV_STOP_CHECK, ENV_UPSTREAM, ENV_UPSTREAM_PREFIX, stackOfUnitName, stackUnitName } from '../names.js';
import { stackOndemandSchema } from '../ondemand/config.js';
import { checkRequires } from '../stacks/requires.js';
import { which } from '../unitfile/tools.js';
import type { OriginalSetup, OriginalStackUnit } from './original.js';
import { upstreamFor, type FoundStack, type Scan } from './scan.js';

export interface StackProposal {
  name: string;
  /** What goes under stacks.<name> (may be empty). */
  settings: Record<string, unknown>;
  /** Comment lines written above `<name>:`. */
  comments: string[];
}

export interface Proposal {
  /** Top-level settings besides `stacks` (podman_compose, backup). */
  top: Record<string, unknown>;
  stacks: StackProposal[];
  /** Comment lines at the top of the file. */
  header: string[];
  /** Things the user should know, printed by the command and kept as comments. */
  notes: string[];
  /** What was carried over from the original setup (files), for the summary. */
  migrated: string[];
}

function tilde(p: string, env: NodeJS.ProcessEnv): string {
  const h = env.HOME;
  return h && h !== '/' && p.startsWith(h + '/') ? '~' + p.slice(h.length) : p;
}

/** Seconds as YAML: a whole number stays a number of seconds. */
function secs(s: number): number | string {
  return Number.isInteger(s) ? s : `${Math.round(s * 1000)}ms`;
}

export function propose(scan: Scan, original: OriginalSetup, env: NodeJS.ProcessEnv): Proposal {
  const notes: string[] = [];
  const migrated: string[] = [];
  const top: Record<string, unknown> = {};
  const names = new Set(scan.stacks.map((s) => s.name));

  // podman-compose: keep the original's binary when it is not the one zoopa finds on PATH.
  const onPath = which('podman-compose', env) ?? '/usr/bin/podman-compose';
  const binaries = [...new Set([...original.stackUnits.values()].map((u) => u.podmanCompose).filter((b): b is string => !!b))];
  if (binaries.length === 1 && binaries[0] !== onPath) top.podman_compose = binaries[0];
  else if (binaries.length > 1) notes.push(`the original units run different podman-compose binaries (${binaries.join(', ')}); zoopa uses one: ${onPath}`);

  // Backups: the stacks duplicati/bin/backup was given, the timer's schedule.
  const backupStacks: string[] = [];
  const b = original.backup;
  if (b) {
    for (const arg of b.stacks) {
      const base = path.basename(arg.replace(/\/+$/, ''));
      const name = stackOfUnitName(base) ?? base;
      if (names.has(name)) backupStacks.push(name);
      else notes.push(`${tilde(b.serviceFile!, env)}: the backup script is given "${arg}", which is no stack folder here; left out of backup.stacks`);
    }
    const backup: Record<string, unknown> = {};
    if (backupStacks.length) backup.stacks = [...new Set(backupStacks)];
    if (b.onCalendar) backup.on_calendar = b.onCalendar;
    if (b.randomizedDelay !== undefined) backup.randomized_delay = secs(b.randomizedDelay);
    if (Object.keys(backup).length) top.backup = backup;
    if (b.serviceFile) migrated.push(tilde(b.serviceFile, env));
    if (b.timerFile) migrated.push(tilde(b.timerFile, env));
    if (!backupStacks.length && b.onCalendar) notes.push(`${tilde(b.timerFile!, env)}: no stack to back up was found, so zoopa renders no backup units until backup.stacks lists some`);
  }

  const stacks = scan.stacks.map((s) => proposeStack(s, original, backupStacks.includes(s.name), notes, migrated, env));
  checkProposedRequires(stacks, notes);
  for (const f of original.otherEnvFiles) notes.push(`${tilde(f, env)} belongs to no stack folder here (a llama service or an old stack?); left as it is`);

  const header = [
    ` zoopa.yaml, written by "zoopa init" from what it found in ${scan.root}.`,
    ' Every key is optional; see "zoopa.yaml reference" in the README. Check what it',
    ' renders with "zoopa install --dry-run" (add --adopt to replace hand-written units).',
  ];
  if (scan.badNames.length) {
    header.push('', ' Folders whose names cannot be stack names (zoopa never renames them; rename, then run "zoopa init" again):');
    for (const bad of scan.badNames) header.push(`   ${JSON.stringify(bad.folder)} -> ${bad.suggested}`);
  }
  return { top, stacks, header, notes, migrated };
}

function proposeStack(
  s: FoundStack,
  original: OriginalSetup,
  inBackup: boolean,
  notes: string[],
  migrated: string[],
  env: NodeJS.ProcessEnv,
): StackProposal {
  const settings: Record<string, unknown> = {};
  const comments: string[] = [];
  comments.push(` ${s.name}/${s.composeFile}: ${s.services.length === 1 ? 'service' : 'services'} ${s.services.join(', ') || '(none)'}`);
  if (s.autoOverrides.length) comments.push(`   podman-compose also reads ${s.autoOverrides.join(', ')} by itself`);

  const unit = original.stackUnits.get(s.name);
  if (s.projectName && s.projectName !== s.name && !(unit?.project)) {
    notes.push(`${s.name}/${s.composeFile} names its project ${JSON.stringify(s.projectName)}; zoopa runs it as -p ${s.name}, so its containers get new names (rename the folder to ${s.projectName} to keep them)`);
  }
  if (unit) {
    migrated.push(tilde(unit.file, env));
    comments.push(`   carried over from ${tilde(unit.file, env)}`);
    fromUnit(s, unit, settings, notes, env);
  }
  if (!unit && s.otherComposeFiles.length) {
    comments.push(`   more compose files here; to pass them with -f after ${s.composeFile}:`, `   files: [${s.otherComposeFiles.join(', ')}]`);
  }

  const ports = s.ports.map((p) => `${upstreamFor(p)} (${p.service})`);
  if (ports.length) comments.push(`   published ports: ${ports.join(', ')}`);

  const envFile = original.envFiles.get(s.name);
  const ondemand = envFile ? fromEnvFile(s.name, envFile.file, envFile.vars, notes, env) : undefined;
  if (ondemand) {
    settings.ondemand = ondemand;
    migrated.push(tilde(envFile!.file, env));
    comments.push(`   on demand as in ${tilde(envFile!.file, env)}`);
  } else if (s.ports.length) {
    comments.push('   to wake it on demand (nginx -> $XDG_RUNTIME_DIR/ondemand/' + s.name + '.sock):', `   ondemand: { upstream: ${upstreamFor(s.ports[0]!)}, idle: 10m }`);
  }

  if (inBackup) {
    settings.backup = { jobs: [s.name] };
    comments.push(`   backed up by the original duplicati/bin/backup: the Duplicati job named ${s.name} (check the name in Duplicati)`);
  } else if (s.bindMounts.length) {
    comments.push(`   bind mounts (restic's default paths for this stack): ${s.bindMounts.join(', ')}`, '   backup: { jobs: [{ restic: {} }] }');
  }
  return { name: s.name, settings, comments };
}

/**
 * Requirements and StopWhenUnneeded= carried over must pass the same checks as
 * zoopa.yaml (src/stacks/requires.ts); what does not is left out, with the reason.
 */
function checkProposedRequires(stacks: StackProposal[], notes: string[]): void {
  for (let round = 0; round <= stacks.length + 1; round++) {
    const asStacks = stacks.map((p) => ({
      name: p.name,
      config: {
        enabled: true,
        rootful: p.settings.rootful === true,
        requires: (p.settings.requires as string[] | undefined) ?? [],
        stop_when_unneeded: p.settings.stop_when_unneeded === true,
        ondemand: p.settings.ondemand,
      },
    }));
    try {
      checkRequires(asStacks, 'zoopa.yaml');
      return;
    } catch (e) {
      const key = (e as { key?: string }).key ?? '';
      const m = /^stacks\.([^.]+)\.stop_when_unneeded$/.exec(key);
      if (m) {
        delete stacks.find((p) => p.name === m[1])!.settings.stop_when_unneeded;
        notes.push(`StopWhenUnneeded= of ${m[1]}-stack.service is left out: ${(e as Error).message}`);
      } else {
        for (const p of stacks) delete p.settings.requires;
        notes.push(`the Requires= of the original units make no valid stacks.<name>.requires (${(e as Error).message}); left out`);
      }
    }
  }
}

function fromUnit(s: FoundStack, unit: OriginalStackUnit, settings: Record<string, unknown>, notes: string[], env: NodeJS.ProcessEnv): void {
  const where = tilde(unit.file, env);
  if (unit.rootful) settings.rootful = true;
  const defaultDescription = `${s.name} podman-compose stack${unit.rootful ? ' (rootful)' : ''}`;
  if (unit.description !== undefined && unit.description !== defaultDescription) settings.description = unit.description;
  if (unit.startTimeout !== undefined && unit.startTimeout !== DEFAULT_START_TIMEOUT) settings.start_timeout = secs(unit.startTimeout);
  if (unit.stopTimeout !== undefined && unit.stopTimeout !== DEFAULT_STOP_TIMEOUT) settings.stop_timeout = secs(unit.stopTimeout);
  if (unit.startTimeout === undefined && !unit.oddTimeouts.some((t) => t.startsWith('TimeoutStartSec'))) {
    notes.push(`${where} sets no TimeoutStartSec= (a oneshot unit then waits for podman-compose without limit); zoopa's default is ${formatDuration(DEFAULT_START_TIMEOUT)}: set stacks.${s.name}.start_timeout if that is too short`);
  }
  if (unit.stopTimeout === undefined && !unit.oddTimeouts.some((t) => t.startsWith('TimeoutStopSec'))) {
    notes.push(`${where} sets no TimeoutStopSec= (systemd's default, usually 90 s); zoopa's default is ${formatDuration(DEFAULT_STOP_TIMEOUT)}`);
  }
  for (const t of unit.oddTimeouts) notes.push(`${where}: ${t} is not a number of seconds zoopa can write; zoopa uses its default (stacks.${s.name}.start_timeout / stop_timeout)`);
  if (unit.extraFiles.length) settings.files = unit.extraFiles;
  if (unit.requires.length) settings.requires = unit.requires;
  if (unit.stopWhenUnneeded) settings.stop_when_unneeded = true;
  if (unit.afterOnly.length) notes.push(`${where} is ordered After= ${unit.afterOnly.map(stackUnitName).join(', ')} without requiring it; zoopa orders only what a stack requires (stacks.${s.name}.requires)`);
  for (const u of unit.unmapped) notes.push(`${where}: ${u} has no zoopa.yaml key; zoopa's unit will not have it`);
  if (unit.mainFile && path.basename(unit.mainFile) !== s.composeFile) {
    notes.push(`${where} passes -f ${unit.mainFile} first; zoopa always uses ${s.composeFile} as the main file`);
  }
  if (unit.project && unit.project !== s.name) {
    notes.push(`${where} uses the compose project ${JSON.stringify(unit.project)}; zoopa uses the stack name ${JSON.stringify(s.name)} (-p ${s.name}), so containers get new names`);
  }
  if (unit.workingDirectory && path.resolve(unit.workingDirectory) !== s.dir) {
    notes.push(`${where} runs in ${unit.workingDirectory}; zoopa runs it in ${s.dir}`);
  }
}

/** The env file's ZOOPA_* settings as `stacks.<name>.ondemand`, or undefined (with a note) when they cannot all be expressed. */
function fromEnvFile(stack: string, file: string, vars: Map<string, string>, notes: string[], env: NodeJS.ProcessEnv): Record<string, unknown> | undefined {
  const where = tilde(file, env);
  const keep = `zoopa.yaml gets no ondemand settings for ${stack}; the env file keeps working as it is`;
  const od: Record<string, unknown> = {};
  const listeners: Array<{ name: string; upstream: string }> = [];
  for (const [k, v] of vars) {
    if (k === ENV_UPSTREAM) od.upstream = v;
    else if (k === ENV_IDLE_TIMEOUT || k === ENV_START_TIMEOUT) {
      const sec = parseDuration(v);
      if (sec === undefined) {
        notes.push(`${where}: ${k}=${v} is not a number of seconds; ${keep}`);
        return undefined;
      }
      od[k === ENV_IDLE_TIMEOUT ? 'idle' : 'start_timeout'] = secs(sec);
    } else if (k === ENV_IDLE_MODE) od.idle_mode = v;
    else if (k === ENV_READY) od.ready = v;
    else if (k === ENV_STOP_CHECK) od.stop_check = v.trim().split(/\s+/);
    else if (k === ENV_STACK_UNIT) {
      if (v !== stackUnitName(stack)) {
        notes.push(`${where}: ZOOPA_STACK_UNIT=${v} is not the stack's own unit and zoopa.yaml has no key for it; ${keep}`);
        return undefined;
      }
    } else if (k.startsWith(ENV_UPSTREAM_PREFIX)) listeners.push({ name: k.slice(ENV_UPSTREAM_PREFIX.length).toLowerCase(), upstream: v });
    else {
      notes.push(`${where}: ${k} has no zoopa.yaml key; ${keep}`);
      return undefined;
    }
  }
  if (od.upstream === undefined) {
    notes.push(`${where} has no ZOOPA_UPSTREAM; ${keep}`);
    return undefined;
  }
  if (listeners.length) od.listeners = listeners;
  const check = stackOndemandSchema.safeParse(od);
  if (!check.success) {
    const issue = check.error.issues[0]!;
    notes.push(`${where}: ${issue.path.join('.') || 'ondemand'}: ${issue.message}; ${keep}`);
    return undefined;
  }
  return od;
}
