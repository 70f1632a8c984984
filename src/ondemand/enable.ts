/**
 * `zoopa ondemand enable|disable <stack>`: the logic, apart from the CLI.
 *
 * Where enable writes the settings (--upstream, --idle):
 *  - into zoopa.yaml `stacks.<stack>.ondemand` (comments and layout kept, through
 *    the yaml Document API; the file is created when the root has none), and
 *    `zoopa install` then writes ~/.config/zoopa-ondemand/<stack>.env from it;
 *  - EXCEPT when the user keeps a hand-written env file for the stack (one without
 *    zoopa's marker) and zoopa.yaml has no `ondemand` section for it: then the
 *    settings go into that env file, edited in place (only the ZOOPA_UPSTREAM and
 *    ZOOPA_IDLE_TIMEOUT lines change; comments and other lines stay), because that
 *    file is where the user keeps them and zoopa never takes over a file it did not
 *    write. (To move to zoopa.yaml: write the section, then `zoopa install --adopt`.)
 *
 * Everything is computed and checked first (planEnable is pure); bad input is an
 * InputError before any file or unit changes.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isScalar, type Document } from 'yaml';
import { CONFIG_FILE, parseConfigText } from '../config/load.js';
import { DURATION_HINT, formatDuration, parseDuration } from '../config/duration.js';
import { defaultStackConfig } from '../config/schema.js';
import type { UnitManager } from '../core/ports.js';
import { editEnvText, parseEnvText } from '../envfile.js';
import { EnvFileError, InputError, StateError, UsageError } from '../errors.js';
import { run } from '../exec.js';
import {
  DEFAULT_IDLE_TIMEOUT_S,
  ENV_IDLE_TIMEOUT,
  ENV_STACK_UNIT,
  ENV_UPSTREAM,
  ONDEMAND_DIR_UNIT,
  ondemandListenerSocketUnit,
  ondemandServiceUnit,
  ondemandSocketUnit,
  stackUnitName,
} from '../names.js';
import { ondemandEnvFile } from '../paths.js';
import { resolveProxySettings } from '../proxy/config.js';
import { loadProject, resolveStack, type Project } from '../stacks/discover.js';
import { applyInstall, checkConflicts, isGenerated, planInstall, type InstallPlan } from '../units/install.js';
import { normalizeUpstream } from './config.js';
import { dropFreeze, isFrozen } from './freeze.js';
import { ondemandEnvVars, socketPath } from './units.js';
import { writeFileAtomic } from '../fsutil.js';

export interface EnableOptions {
  upstream?: string | undefined;
  idle?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export type SettingsTarget =
  | { kind: 'yaml'; file: string; before: string | undefined; after: string }
  | { kind: 'envfile'; file: string; before: string; after: string; mode: number }
  | { kind: 'unchanged'; file: string; source: 'yaml' | 'envfile' };

export interface EnablePlan {
  stack: string;
  /** The project as it will be once the settings are written (install is planned from it). */
  project: Project;
  target: SettingsTarget;
  /** The proxy's settings, as it will read them. */
  upstream: string;
  idleSeconds: number | null;
  install: InstallPlan;
  /** Units enabled and started at the end. */
  enable: string[];
  socketPath: string;
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError('ZOOPA_READ', `cannot read ${p}: ${(e as Error).message}`, { file: p, cause: e });
  }
}

/** Check --idle: seconds or a span; returns the seconds. */
export function parseIdleOption(text: string): number {
  const s = parseDuration(text);
  if (s === undefined) throw new UsageError(`--idle ${JSON.stringify(text)} is not a duration`, { key: '--idle', value: text, hint: `${DURATION_HINT}; 0 never stops` });
  return s;
}

/** Set `value` at `keys`, replacing anything in the way that is not a mapping (e.g. `web:` with no value). */
function setPath(doc: Document, keys: readonly string[], value: unknown): void {
  for (let i = 1; i < keys.length; i++) {
    const at = keys.slice(0, i);
    const node = doc.getIn(at, true);
    if (node === undefined || (isScalar(node) && (node.value === null || node.value === undefined))) {
      doc.setIn(at, doc.createNode({}));
    } else if (!isMap(node)) {
      throw new InputError('ZOOPA_CONFIG', `${at.join('.')} is not a mapping, cannot add ${keys.slice(i).join('.')} under it`, {
        key: at.join('.'),
        hint: 'fix zoopa.yaml by hand first',
      });
    }
  }
  doc.setIn(keys, value);
}

function yamlValueForIdle(text: string): string | number {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : text.trim();
}

/** Check what the proxy will read, with the proxy's own parser; errors name `file`. */
function checkProxyEnv(stack: string, vars: ReadonlyArray<[string, string]>, file: string): { upstream: string; idleSeconds: number | null } {
  const env: NodeJS.ProcessEnv = { [ENV_STACK_UNIT]: stackUnitName(stack), [ENV_IDLE_TIMEOUT]: String(DEFAULT_IDLE_TIMEOUT_S) };
  for (const [k, v] of vars) env[k] = v;
  try {
    const s = resolveProxySettings(stack, env);
    return { upstream: s.upstream.text, idleSeconds: s.idleTimeoutMs === null ? null : s.idleTimeoutMs / 1000 };
  } catch (e) {
    if (e instanceof InputError) throw new EnvFileError(e.message, { file, key: e.key, value: e.value, hint: e.hint, cause: e });
    throw e;
  }
}

/** Everything `ondemand enable` will do, computed and checked; writes nothing. */
export function planEnable(project: Project, stackArg: string, opts: EnableOptions = {}): EnablePlan {
  const env = opts.env ?? process.env;
  const stack = resolveStack(project, stackArg);
  if (!stack.config.enabled) {
    throw new UsageError(`stack ${stack.name} has "enabled: false" in zoopa.yaml: it has no units`, {
      file: project.configFile,
      key: `stacks.${stack.name}.enabled`,
      value: false,
      hint: 'remove "enabled: false" first',
    });
  }
  const upstream = opts.upstream !== undefined ? normalizeUpstream(opts.upstream, '--upstream') : undefined;
  if (opts.idle !== undefined) parseIdleOption(opts.idle);

  const envFile = ondemandEnvFile(stack.name, env);
  const envText = readText(envFile);
  const handWritten = envText !== undefined && !isGenerated(envText);
  const inYaml = !!stack.config.ondemand;

  let target: SettingsTarget;
  let next: Project = project;
  let vars: Array<[string, string]>;
  let varsFile: string;

  if (!inYaml && handWritten) {
    // The user's own env file: edit it in place.
    const set: Array<[string, string]> = [];
    if (upstream !== undefined) set.push([ENV_UPSTREAM, upstream]);
    if (opts.idle !== undefined) set.push([ENV_IDLE_TIMEOUT, String(parseIdleOption(opts.idle))]);
    const after = set.length ? editEnvText(envText, set) : envText;
    vars = parseEnvText(after, envFile).map((e) => [e.key, e.value]);
    varsFile = envFile;
    if (!vars.some(([k]) => k === ENV_UPSTREAM)) {
      throw new UsageError(`${envFile} has no ZOOPA_UPSTREAM`, { key: '--upstream', hint: `pass --upstream HOST:PORT (the stack's published port), e.g. zoopa ondemand enable ${stack.name} --upstream 127.0.0.1:8080` });
    }
    const mode = fs.statSync(envFile).mode & 0o777;
    target = after === envText ? { kind: 'unchanged', file: envFile, source: 'envfile' } : { kind: 'envfile', file: envFile, before: envText, after, mode };
  } else {
    const file = project.configFile ?? path.join(project.root, CONFIG_FILE);
    const before = project.configFile ? readText(file) : undefined;
    if (!inYaml && upstream === undefined) {
      throw new UsageError(`no upstream known for stack ${stack.name}`, {
        key: '--upstream',
        hint: `pass --upstream HOST:PORT (the port the stack publishes), e.g. zoopa ondemand enable ${stack.name} --upstream 127.0.0.1:8080`,
      });
    }
    let after = before;
    if (upstream !== undefined || opts.idle !== undefined) {
      const doc = before !== undefined ? YAML.parseDocument(before) : new YAML.Document({});
      const base = ['stacks', stack.name, 'ondemand'];
      if (upstream !== undefined) setPath(doc, [...base, 'upstream'], upstream);
      if (opts.idle !== undefined) setPath(doc, [...base, 'idle'], yamlValueForIdle(opts.idle));
      after = doc.toString();
    }
    const config = parseConfigText(after ?? '', file);
    next = {
      ...project,
      configFile: file,
      config,
      stacks: project.stacks.map((s) => ({ ...s, config: config.stacks[s.name] ?? defaultStackConfig() })),
    };
    const od = config.stacks[stack.name]?.ondemand;
    if (!od) throw new Error('internal: ondemand section missing after edit');
    vars = ondemandEnvVars(od);
    varsFile = file;
    target = after === before ? { kind: 'unchanged', file, source: 'yaml' } : { kind: 'yaml', file, before, after: after! };
  }

  const checked = checkProxyEnv(stack.name, vars, varsFile);
  const install = planInstall(next, { env });
  return {
    stack: stack.name,
    project: next,
    target,
    upstream: checked.upstream,
    idleSeconds: checked.idleSeconds,
    install,
    enable: [ONDEMAND_DIR_UNIT, ondemandSocketUnit(stack.name)],
    socketPath: socketPath(stack.name, env),
  };
}

/** systemctl --user reset-failed: a socket that hit the start limit before must be able to start again. */
async function resetFailed(units: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  await run(['systemctl', '--user', 'reset-failed', '--', ...units], { env, reject: false });
}

export interface EnableResult {
  wroteSettings: boolean;
  installed: boolean;
  /** The proxy was running and keeps its old settings until it next starts. */
  proxyRunning: boolean;
}

export async function applyEnable(plan: EnablePlan, units: UnitManager, opts: { adopt?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<EnableResult> {
  const env = opts.env ?? process.env;
  checkConflicts(plan.install, opts.adopt ?? false);
  if (isFrozen(plan.stack, env)) {
    throw new StateError('ZOOPA_FROZEN', `stack ${plan.stack} is frozen`, { hint: `run "zoopa thaw ${plan.stack}" first (a backup may be running)` });
  }
  const t = plan.target;
  if (t.kind === 'yaml') {
    const mode = t.before !== undefined ? fs.statSync(t.file).mode & 0o777 : 0o644;
    writeFileAtomic(t.file, t.after, { mode });
  } else if (t.kind === 'envfile') {
    writeFileAtomic(t.file, t.after, { mode: t.mode });
  }
  // Plan again from what is on disk now (the same plan unless someone raced us).
  const install = planInstall(loadProject({ root: plan.project.root, env }), { env });
  checkConflicts(install, opts.adopt ?? false);
  if (install.changes) await applyInstall(install, units, { adopt: opts.adopt ?? false, env });
  const service = ondemandServiceUnit(plan.stack);
  await resetFailed([plan.enable[1]!, service], env);
  await units.enable(plan.enable, { now: true });
  const info = await units.show([service]);
  return { wroteSettings: t.kind !== 'unchanged', installed: install.changes, proxyRunning: info.get(service)?.activeState === 'active' };
}

export interface DisablePlan {
  stack: string;
  socket: string;
  extraSockets: string[];
  service: string;
  installed: boolean;
  frozen: boolean;
}

export async function planDisable(project: Project, stackArg: string, units: UnitManager, env: NodeJS.ProcessEnv = process.env): Promise<DisablePlan> {
  const stack = resolveStack(project, stackArg);
  const extra = (stack.config.ondemand?.listeners ?? []).map((l) => ondemandListenerSocketUnit(stack.name, l.name));
  const socket = ondemandSocketUnit(stack.name);
  const info = await units.show([socket]);
  return {
    stack: stack.name,
    socket,
    extraSockets: extra,
    service: ondemandServiceUnit(stack.name),
    installed: (info.get(socket)?.loadState ?? 'not-found') !== 'not-found',
    frozen: isFrozen(stack.name, env),
  };
}

/** Stop and disable the socket(s), stop the proxy, forget a freeze. Settings stay where they are. */
export async function applyDisable(plan: DisablePlan, units: UnitManager, env: NodeJS.ProcessEnv = process.env): Promise<{ stopped: string[] }> {
  const stopped: string[] = [];
  // A freeze would otherwise start the socket again at thaw.
  dropFreeze(plan.stack, env);
  if (plan.installed) await units.disable([plan.socket], { now: true });
  const names = [...plan.extraSockets, plan.service];
  const info = await units.show(names);
  for (const n of names) {
    const i = info.get(n);
    if (i && i.loadState !== 'not-found' && i.activeState !== 'inactive' && i.activeState !== 'failed') {
      await units.stop(n);
      stopped.push(n);
    }
  }
  return { stopped };
}

export function describeIdle(seconds: number | null): string {
  return seconds === null ? 'never' : formatDuration(seconds);
}
