/**
 * From the `llama:` section to complete service descriptions: defaults merged
 * in, paths expanded, every check that needs the project or the file system
 * done, and the exact llama-server argv built.
 *
 * Every problem is a ConfigError naming `llama.services.<name>.<key>` (or
 * `llama.defaults.<key>` when the value came from there), thrown before any
 * unit is rendered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { isName, llamaUnitName, NAME_HINT, ondemandSocketUnit, stackOfUnitName, stackUnitName } from '../names.js';
import { homeDir } from '../paths.js';
import type { Project } from '../stacks/discover.js';
import {
  DEFAULT_BINARY,
  DEFAULT_HOST,
  DEFAULT_MODELS_DIR,
  DEFAULT_MODELS_MAX,
  DEFAULT_NICE,
  DEFAULT_ONDEMAND_START_TIMEOUT,
  DEFAULT_RESTART_SEC,
  DEFAULT_ROUTER_SLEEP_IDLE,
  DEFAULT_WORKING_DIRECTORY,
  type LlamaConfig,
  type LlamaDefaults,
  type LlamaServiceConfig,
} from './config.js';
import { CpusSpecError, formatCpus, parseCpus } from './cpus.js';
import { expandPath, hostSet, isUnixSocketHost, loopbackPort, overlaps, upstreamFor } from './address.js';
import { loadModeOf, MANAGED_FLAGS, OLD_LOAD_FLAGS } from './flags.js';

export interface LlamaOndemand {
  /** host:port the on-demand proxy forwards to (or a unix socket path). */
  upstream: string;
  /** Idle time before the proxy stops the service; undefined: the on-demand default. */
  idle: number | undefined;
  /** How long a first request may wait for /health to answer 200. */
  startTimeout: number;
}

export interface LlamaService {
  name: string;
  /** `<name>.service` */
  unit: string;
  description: string;
  mode: 'model' | 'router';
  /** Absolute model file (model mode). */
  modelPath: string | undefined;
  mmprojPath: string | undefined;
  alias: string | undefined;
  /** Absolute models folder (router mode serves all of it). */
  modelsDir: string;
  binary: string;
  workingDirectory: string;
  host: string;
  port: number;
  /** Sorted CPU numbers, when `cpus` is set. */
  cpus: number[] | undefined;
  threads: number | undefined;
  threadsBatch: number | undefined;
  nice: number;
  restartSec: number;
  /** The whole ExecStart argv, binary first. */
  argv: string[];
  ondemand: LlamaOndemand | undefined;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Check that model files and the models folder exist (render, install).
   * `zoopa llama list` turns it off to show what is missing instead of failing.
   */
  checkFiles?: boolean;
}

type TuningKey = keyof LlamaDefaults;

/** Service names in the order written in zoopa.yaml. */
export function llamaServiceNames(config: LlamaConfig | undefined): string[] {
  return Object.keys(config?.services ?? {});
}

/**
 * The on-demand side of every llama service that has `ondemand:`, for the
 * on-demand renderer (socket zoopa-ondemand@<name>.socket and env file
 * ~/.config/zoopa-ondemand/<name>.env). Pure: reads only the config.
 */
export interface LlamaOndemandTarget {
  name: string;
  /** ZOOPA_STACK_UNIT */
  unit: string;
  /** ZOOPA_UPSTREAM */
  upstream: string;
  /** ZOOPA_READY: llama-server answers 503 on /health while it loads the model. */
  ready: 'http:/health';
  /** ZOOPA_START_TIMEOUT, seconds */
  startTimeout: number;
  /** ZOOPA_IDLE_TIMEOUT, seconds; undefined: the on-demand default */
  idle: number | undefined;
}

export function llamaOndemandTargets(config: LlamaConfig | undefined): LlamaOndemandTarget[] {
  const out: LlamaOndemandTarget[] = [];
  for (const name of llamaServiceNames(config)) {
    const s = config!.services[name]!;
    const od = ondemandOf(s, config?.defaults?.host);
    if (!od) continue;
    out.push({ name, unit: llamaUnitName(name), upstream: od.upstream, ready: 'http:/health', startTimeout: od.startTimeout, idle: od.idle });
  }
  return out;
}

function ondemandOf(s: LlamaServiceConfig, defaultHost: string | undefined): LlamaOndemand | undefined {
  if (s.ondemand === undefined || s.ondemand === false) return undefined;
  const o = s.ondemand === true ? {} : s.ondemand;
  return {
    upstream: upstreamFor(s.host ?? defaultHost ?? DEFAULT_HOST, s.port),
    idle: o.idle,
    startTimeout: o.start_timeout ?? DEFAULT_ONDEMAND_START_TIMEOUT,
  };
}

/** Resolve every llama service. Throws ConfigError on the first problem. */
export function resolveLlama(project: Project, opts: ResolveOptions = {}): LlamaService[] {
  const config = project.config.llama;
  if (!config) return [];
  const env = opts.env ?? process.env;
  const checkFiles = opts.checkFiles ?? true;
  const file = project.configFile;
  const defaults: LlamaDefaults = config.defaults ?? {};

  const binary = expandPath(config.binary ?? DEFAULT_BINARY, project.root, env);
  const workingDirectory = expandPath(config.working_directory ?? DEFAULT_WORKING_DIRECTORY, project.root, env);
  const modelsDir = expandPath(config.models_dir ?? DEFAULT_MODELS_DIR, project.root, env);

  const services: LlamaService[] = [];
  for (const name of llamaServiceNames(config)) {
    const s = config.services[name]!;
    services.push(resolveOne(project, name, s, defaults, { binary, workingDirectory, modelsDir, checkFiles, file, modelsDirKey: config.models_dir ? 'llama.models_dir' : undefined }));
  }
  checkPortClashes(project, services, file);
  return services;
}

interface Shared {
  binary: string;
  workingDirectory: string;
  modelsDir: string;
  checkFiles: boolean;
  file: string | undefined;
  modelsDirKey: string | undefined;
}

function resolveOne(project: Project, name: string, s: LlamaServiceConfig, defaults: LlamaDefaults, sh: Shared): LlamaService {
  const base = `llama.services.${name}`;
  const fail = (key: string | undefined, message: string, value: unknown, hint?: string): never => {
    const k = key ?? base;
    throw new ConfigError(`${k}: ${message}`, { file: sh.file, key: k, value, hint });
  };
  /** The merged value of a tuning key and where it came from. */
  const get = <K extends TuningKey>(key: K): { value: LlamaDefaults[K] | undefined; key: string } => {
    if (s[key] !== undefined) return { value: s[key] as LlamaDefaults[K], key: `${base}.${key}` };
    if (defaults[key] !== undefined) return { value: defaults[key], key: `llama.defaults.${key} (used by service ${name})` };
    return { value: undefined, key: `${base}.${key}` };
  };

  // The name becomes a unit name and an on-demand instance name.
  if (!isName(name)) fail(base, `${JSON.stringify(name)} cannot be a service name`, name, `${NAME_HINT}; the name becomes the unit ${name}.service`);
  const stack = stackOfUnitName(llamaUnitName(name));
  if (stack !== undefined) {
    const taken = project.stacks.some((x) => x.name === stack);
    fail(base, `the unit ${name}.service would ${taken ? `collide with stack ${stack}'s unit` : 'look like the unit of a stack called ' + stack}`, name, `rename the service: names ending in -stack are kept for stack units (${stackUnitName('<stack>')})`);
  }
  if (name.startsWith('zoopa-') || name === 'zoopa') fail(base, `names starting with "zoopa" are kept for zoopa's own units`, name, 'rename the service');
  if (project.stacks.some((x) => x.name === name)) {
    fail(base, `a stack is also called ${name}`, name, `rename the service: stacks and llama services share on-demand socket names (${ondemandSocketUnit(name)})`);
  }

  // Model or router.
  const router = s.router === true;
  if (router && s.model !== undefined) fail(`${base}.model`, 'a service is either one model (model:) or router mode (router: true), not both', s.model, 'remove model: to serve every model in models_dir, or remove router: true');
  if (!router && s.model === undefined) fail(`${base}.model`, 'required: the model file to serve (relative to llama.models_dir), or router: true', undefined, 'e.g. model: qwen3-8b-q4_k_m.gguf');
  if (router && s.alias !== undefined) fail(`${base}.alias`, 'router mode names models after their files; alias applies to one model', s.alias, 'remove alias, or serve one model with model:');
  if (router && s.mmproj !== undefined) fail(`${base}.mmproj`, 'mmproj applies to one model, not router mode', s.mmproj, 'remove mmproj, or serve one model with model:');
  const modelsMax = get('models_max');
  if (!router && modelsMax.value !== undefined && s.models_max !== undefined) fail(modelsMax.key, 'models_max applies to router mode only', modelsMax.value, 'remove it, or set router: true');

  let modelPath: string | undefined;
  let mmprojPath: string | undefined;
  if (!router) {
    modelPath = path.resolve(sh.modelsDir, s.model!);
    if (sh.checkFiles) checkFile(modelPath, `${base}.model`, s.model!, sh, 'model file');
    if (s.mmproj !== undefined) {
      mmprojPath = path.resolve(sh.modelsDir, s.mmproj);
      if (sh.checkFiles) checkFile(mmprojPath, `${base}.mmproj`, s.mmproj, sh, 'projector file');
    }
  } else if (sh.checkFiles) {
    let ok = false;
    try {
      ok = fs.statSync(sh.modelsDir).isDirectory();
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new ConfigError(`${base}.router: the models folder ${sh.modelsDir} does not exist`, {
        file: sh.file,
        key: `${base}.router`,
        value: sh.modelsDir,
        hint: `create it, or set llama.models_dir${sh.modelsDirKey ? '' : ' (default ~/models)'}`,
      });
    }
  }

  // cpus → CPUAffinity= and default threads.
  const cpusIn = get('cpus');
  let cpus: number[] | undefined;
  if (cpusIn.value !== undefined) {
    try {
      cpus = parseCpus(cpusIn.value);
    } catch (e) {
      if (!(e instanceof CpusSpecError)) throw e;
      fail(cpusIn.key, `bad CPU list ${JSON.stringify(cpusIn.value)}: ${e.message}`, cpusIn.value, 'write CPU numbers and ranges separated by spaces, e.g. "0 1 6-11"');
    }
  }
  const threadsIn = get('threads');
  const threadsBatchIn = get('threads_batch');
  const threads = threadsIn.value ?? cpus?.length;
  const threadsBatch = threadsBatchIn.value ?? cpus?.length;
  if (cpus) {
    for (const [v, k, what] of [[threadsIn.value, threadsIn.key, 'threads'], [threadsBatchIn.value, threadsBatchIn.key, 'threads_batch']] as const) {
      if (v !== undefined && v > cpus.length) {
        fail(k, `${v} ${what} on ${cpus.length} CPU${cpus.length === 1 ? '' : 's'} (cpus: ${formatCpus(cpus)}) would oversubscribe them`, v, `remove ${what} to use one thread per CPU, or list more cpus`);
      }
    }
  }

  // mmap/mlock vs load_mode: the same choice written two ways (mmap/mlock render --load-mode).
  const loadMode = get('load_mode');
  const mmap = get('mmap');
  const mlock = get('mlock');
  if (loadMode.value !== undefined && (mmap.value !== undefined || mlock.value !== undefined)) {
    fail(loadMode.key, `load_mode cannot be combined with ${mmap.value !== undefined ? 'mmap' : 'mlock'}`, loadMode.value, 'builds with --load-mode have no --mmap/--mlock: use load_mode alone (mmap, mlock, mmap+mlock, ...), or mmap/mlock alone for older builds');
  }

  const extra = get('extra_args');
  // Older llama.cpp builds (before --load-mode) take --mmap/--no-mmap/--mlock; zoopa no longer writes them.
  const chosen = loadMode.value !== undefined ? 'load_mode' : mmap.value !== undefined ? 'mmap' : mlock.value !== undefined ? 'mlock' : undefined;
  for (const a of extra.value ?? []) {
    const flag = (a.startsWith('--') ? a.replace(/_/g, '-') : a).split('=')[0]!;
    const owner = MANAGED_FLAGS[flag];
    if (owner) fail(extra.key, `${a} is set by zoopa from the ${owner} key`, a, `use ${owner}: instead of passing ${flag} in extra_args`);
    if (OLD_LOAD_FLAGS.includes(flag) && chosen) {
      fail(extra.key, `${a} and the ${chosen} key both choose how the model is loaded`, a, `remove one: ${chosen} renders --load-mode (llama.cpp with --load-mode); ${flag} in extra_args is for older builds`);
    }
  }

  const host = get('host').value ?? DEFAULT_HOST;
  if (/\s/.test(host)) fail(get('host').key, 'a host has no white space', host, 'write an address like 127.0.0.1, or several separated by commas');
  const sleepIdle = get('sleep_idle').value ?? (router ? DEFAULT_ROUTER_SLEEP_IDLE : undefined);

  const argv: string[] = [sh.binary];
  if (router) {
    argv.push('--models-dir', sh.modelsDir, '--models-max', String(modelsMax.value ?? DEFAULT_MODELS_MAX));
  } else {
    argv.push('--model', modelPath!);
    if (mmprojPath) argv.push('--mmproj', mmprojPath);
    if (s.alias !== undefined) argv.push('--alias', s.alias);
  }
  const num = (flag: string, v: number | undefined) => {
    if (v !== undefined) argv.push(flag, String(v));
  };
  num('--ctx-size', get('ctx_size').value);
  num('--threads', threads);
  num('--threads-batch', threadsBatch);
  num('--batch-size', get('batch_size').value);
  num('--ubatch-size', get('ubatch_size').value);
  num('--parallel', get('parallel').value);
  const ctk = get('cache_type_k').value;
  const ctv = get('cache_type_v').value;
  if (ctk) argv.push('--cache-type-k', ctk);
  if (ctv) argv.push('--cache-type-v', ctv);
  const mode = loadMode.value ?? loadModeOf(mmap.value, mlock.value);
  if (mode !== undefined) argv.push('--load-mode', mode);
  if (sleepIdle !== undefined) argv.push('--sleep-idle-seconds', String(Math.ceil(sleepIdle)));
  argv.push('--host', host, '--port', String(s.port));
  argv.push(...(extra.value ?? []));

  const what = router ? `router mode, models in ${sh.modelsDir}` : path.basename(modelPath!);
  return {
    name,
    unit: llamaUnitName(name),
    description: s.description ?? `llama.cpp server ${name} (${what})`,
    mode: router ? 'router' : 'model',
    modelPath,
    mmprojPath,
    alias: s.alias,
    modelsDir: sh.modelsDir,
    binary: sh.binary,
    workingDirectory: sh.workingDirectory,
    host,
    port: s.port,
    cpus,
    threads,
    threadsBatch,
    nice: get('nice').value ?? DEFAULT_NICE,
    restartSec: get('restart_sec').value ?? DEFAULT_RESTART_SEC,
    argv,
    ondemand: ondemandOf(s, defaults.host),
  };
}

function checkFile(p: string, key: string, value: string, sh: Shared, what: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(p);
  } catch {
    st = undefined;
  }
  if (!st || !st.isFile()) {
    throw new ConfigError(`${key}: ${what} ${p} ${st ? 'is not a file' : 'does not exist'}`, {
      file: sh.file,
      key,
      value,
      hint: `paths are relative to llama.models_dir (${sh.modelsDir}); put the file there or fix the name`,
    });
  }
}

function checkPortClashes(project: Project, services: LlamaService[], file: string | undefined): void {
  const tcp = services.filter((s) => !isUnixSocketHost(s.host));
  for (let j = 0; j < tcp.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = tcp[i]!;
      const b = tcp[j]!;
      if (a.port === b.port && overlaps(hostSet(a.host), hostSet(b.host))) {
        throw new ConfigError(`llama.services.${b.name}.port: port ${b.port} is already used by llama service ${a.name} (${a.host}:${a.port})`, {
          file,
          key: `llama.services.${b.name}.port`,
          value: b.port,
          hint: 'give each llama service its own port',
        });
      }
    }
  }
  for (const stack of project.stacks) {
    const od = stack.config.ondemand;
    if (!stack.config.enabled || !od) continue;
    const upstreams = [{ key: `stacks.${stack.name}.ondemand.upstream`, text: od.upstream }, ...(od.listeners ?? []).map((l, i) => ({ key: `stacks.${stack.name}.ondemand.listeners.${i}.upstream`, text: l.upstream }))];
    for (const u of upstreams) {
      const lp = loopbackPort(u.text);
      if (!lp) continue;
      const s = tcp.find((x) => x.port === lp.port && overlaps(hostSet(x.host), [lp.host]));
      if (s) {
        throw new ConfigError(`llama.services.${s.name}.port: port ${s.port} is also the on-demand upstream of stack ${stack.name} (${u.key}: ${u.text})`, {
          file,
          key: `llama.services.${s.name}.port`,
          value: s.port,
          hint: `the stack publishes ${lp.host}:${lp.port}; give the llama service another port`,
        });
      }
    }
  }
}
