/**
 * Does a stack run? Every service of its compose file(s) must have a running container
 * and, where the service defines a healthcheck, a healthy one. podman-compose 1.0.3
 * exits 0 when a container cannot be created or started (for a missing image it tries
 * to pull, `podman run` fails with 125, and no container exists for that service), so
 * its exit status says nothing: this looks at the containers.
 *
 * API (small on purpose; used by the stack unit's ExecStartPost= through
 * `zoopa check-stack`, by `zoopa up`, and by the proxy to name a failed wake's cause):
 *
 *   const services = composeServices([stack.composeFile, ...stack.extraFiles]);
 *   const problems = await verifyStack(engine, stack.name, services, { timeoutMs: 0 });   // one look
 *   const problems = await verifyStack(engine, stack.name, services, { timeoutMs: 60_000 }); // wait for health
 *   if (problems.length) log(problems.map(describeProblem).join('\n'));
 *
 * - `engine`: rootlessContainerEngine(env), or rootfulContainerEngine(env) for the rootful
 *   stack (no log lines then: its sudo rule allows `podman ps` only).
 * - With `timeoutMs > 0` it waits while something is still coming up (a health check
 *   `starting`, a container `created`), driving pending health checks itself where the
 *   engine can (podman runs them from systemd timers, which a machine without a systemd
 *   bus connection lacks), and returns what is still wrong at the deadline. Missing,
 *   exited and unhealthy containers are problems at once.
 * - Never throws for a problem; throws only when podman cannot be asked (CommandError,
 *   TimeoutError, AbortError).
 *
 * When the unit's check fails it removes the stack's containers again (so systemd has
 * nothing to wait for and the next start is a fresh `up`), after saving what it found:
 *
 *   const last = lastCheck(stack.name, env);  // { at, problems } of the unit's last failed check, or undefined
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { CallOptions, ContainerEngine, ContainerInfo } from '../core/ports.js';
import { StackError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { runtimeDir } from '../paths.js';

export interface ServiceSpec {
  name: string;
  /** image: as written in the compose file (undefined for a build-only service). */
  image: string | undefined;
  /** The service defines a healthcheck that is not disabled. */
  healthcheck: boolean;
}

export interface StackProblem {
  service: string;
  /** Container name; undefined when the service has no container at all. */
  container: string | undefined;
  /** Container state (running, exited, created, ...), or 'missing'. */
  state: string;
  exitCode: number | undefined;
  image: string | undefined;
  /** healthy, unhealthy, starting, or ''. */
  health: string;
  /** What is wrong, one phrase. */
  reason: string;
  /** The container's last log lines (rootless only). */
  logTail: string | undefined;
}

export interface VerifyOptions extends CallOptions {
  /** How long to wait for pending containers (health starting, created). 0: look once. */
  timeoutMs?: number;
  /** Log lines per problem container (default 10; 0: none). */
  logLines?: number;
  /** Pause between looks (default 1 s). */
  intervalMs?: number;
}

/** The services of a stack from its compose file(s), later files overriding earlier ones. */
export function composeServices(files: readonly string[]): ServiceSpec[] {
  const merged = new Map<string, ServiceSpec>();
  for (const file of files) {
    let data: { services?: Record<string, unknown> } | null;
    try {
      data = YAML.parse(fs.readFileSync(file, 'utf8')) as { services?: Record<string, unknown> } | null;
    } catch (e) {
      throw new StackError(`cannot read compose file ${file}: ${(e as Error).message.split('\n')[0]}`, { file, cause: e, hint: 'run "zoopa install" again after fixing the stack folder' });
    }
    for (const [name, raw] of Object.entries(data?.services ?? {})) {
      const svc = (raw ?? {}) as { image?: unknown; healthcheck?: { disable?: unknown; test?: unknown } | null; profiles?: unknown; deploy?: { replicas?: unknown } };
      const prev = merged.get(name);
      // A service behind a profile, or scaled to 0, is not started by a plain `up -d`.
      if ((Array.isArray(svc.profiles) && svc.profiles.length) || svc.deploy?.replicas === 0) {
        merged.delete(name);
        continue;
      }
      const hc = svc.healthcheck;
      const disabled = !!hc && (hc.disable === true || (Array.isArray(hc.test) && hc.test[0] === 'NONE'));
      merged.set(name, {
        name,
        image: typeof svc.image === 'string' ? svc.image : prev?.image,
        healthcheck: hc === undefined ? (prev?.healthcheck ?? false) : !!hc && !disabled,
      });
    }
  }
  return [...merged.values()];
}

const PENDING_STATES = new Set(['created', 'configured', 'initialized', 'restarting']);

interface Look {
  problems: StackProblem[];
  /** Containers not there yet but possibly on their way. */
  pending: Array<{ spec: ServiceSpec; container: ContainerInfo }>;
}

function problem(spec: ServiceSpec, c: ContainerInfo | undefined, reason: string): StackProblem {
  return {
    service: spec.name,
    container: c?.name,
    state: c?.state ?? 'missing',
    exitCode: c && c.state === 'exited' ? c.exitCode : undefined,
    image: c?.image || spec.image,
    health: c?.health ?? '',
    reason,
    logTail: undefined,
  };
}

async function look(engine: ContainerEngine, stack: string, services: readonly ServiceSpec[], call: CallOptions): Promise<Look> {
  const containers = await engine.projectContainers(stack, call);
  const out: Look = { problems: [], pending: [] };
  for (const spec of services) {
    const mine = containers.filter((c) => c.service === spec.name || (!c.service && c.name === `${stack}_${spec.name}_1`));
    if (mine.length === 0) {
      out.problems.push(problem(spec, undefined, `no container: podman-compose could not create it${spec.image ? ` (is the image ${spec.image} there? "podman images")` : ''}`));
      continue;
    }
    for (const c of mine) {
      if (c.state === 'running') {
        if (c.health === 'unhealthy') out.problems.push(problem(spec, c, 'running but unhealthy'));
        else if (spec.healthcheck && c.health !== 'healthy') out.pending.push({ spec, container: c });
      } else if (PENDING_STATES.has(c.state)) {
        out.pending.push({ spec, container: c });
      } else {
        out.problems.push(problem(spec, c, c.state === 'exited' ? `exited with code ${c.exitCode}` : `not running (${c.state})`));
      }
    }
  }
  return out;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** What is wrong with the stack's containers (empty: every service runs, healthy where checked). */
export async function verifyStack(engine: ContainerEngine, stack: string, services: readonly ServiceSpec[], opts: VerifyOptions = {}): Promise<StackProblem[]> {
  const call: CallOptions = { signal: opts.signal, timeoutMs: opts.timeoutMs && opts.timeoutMs > 0 ? Math.min(opts.timeoutMs, 30_000) : undefined };
  const deadline = Date.now() + (opts.timeoutMs ?? 0);
  let seen = await look(engine, stack, services, call);
  while (seen.problems.length === 0 && seen.pending.length > 0 && Date.now() < deadline && !opts.signal?.aborted) {
    for (const p of seen.pending) {
      if (p.container.state === 'running' && p.spec.healthcheck) await engine.runHealthcheck(p.container.name, call).catch(() => undefined);
    }
    await sleep(Math.min(opts.intervalMs ?? 1000, Math.max(0, deadline - Date.now())), opts.signal);
    seen = await look(engine, stack, services, call);
  }
  const problems = [
    ...seen.problems,
    ...seen.pending.map((p) =>
      problem(p.spec, p.container, p.container.state === 'running' ? `health check still ${p.container.health || 'not run'} after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s` : `still ${p.container.state}`),
    ),
  ];
  const lines = opts.logLines ?? 10;
  if (lines > 0) {
    for (const p of problems) {
      if (p.container) p.logTail = (await engine.logTail(p.container, lines, call).catch(() => undefined))?.trimEnd() || undefined;
    }
  }
  return problems;
}

/** One problem as text: "web_app_1 (service app, image x): exited with code 3", then its log lines indented. */
export function describeProblem(p: StackProblem): string {
  const head = `${p.container ?? `service ${p.service}`} (${[p.container ? `service ${p.service}` : '', p.image ? `image ${p.image}` : '', `state ${p.state}`].filter(Boolean).join(', ')}): ${p.reason}`;
  return p.logTail ? `${head}\n  last log lines:\n${p.logTail.split('\n').map((l) => `    ${l}`).join('\n')}` : head;
}

/** The unit's last failed check: when (ms since the epoch) and what it found. */
export interface CheckRecord {
  at: number;
  problems: StackProblem[];
}

function checkFile(stack: string, env: NodeJS.ProcessEnv): string {
  return path.join(runtimeDir(env), 'zoopa', 'check-stack', `${stack}.json`);
}

/** Saves a failed check's problems (for `zoopa up` and the proxy, which read them with lastCheck()). */
export function saveCheck(stack: string, problems: StackProblem[], env: NodeJS.ProcessEnv = process.env): void {
  writeFileAtomic(checkFile(stack, env), JSON.stringify({ at: Date.now(), problems } satisfies CheckRecord), { mode: 0o600, dirMode: 0o700 });
}

/** Forgets the last failed check (a check that passes calls this). */
export function clearCheck(stack: string, env: NodeJS.ProcessEnv = process.env): void {
  fs.rmSync(checkFile(stack, env), { force: true });
}

/** The last failed check of the stack's unit, if one is recorded. */
export function lastCheck(stack: string, env: NodeJS.ProcessEnv = process.env): CheckRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(checkFile(stack, env), 'utf8')) as CheckRecord;
    return typeof r.at === 'number' && Array.isArray(r.problems) ? r : undefined;
  } catch {
    return undefined;
  }
}
