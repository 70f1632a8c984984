/**
 * Why did a stack not come up? Asked by the wake after its start job ended
 * (failed, or "succeeded" while a container did not start: podman-compose
 * 1.0.3 exits 0 then). Answers one line naming each service's container,
 * image, state and exit code, or null when every container runs (or this
 * cannot tell: a unit that is not a rootless podman-compose stack).
 *
 * `fixed`, when given, tells cheaply whether the cause is gone (a missing image
 * now exists, or the stack's compose file or .env was edited since), so the
 * next connection after the fix wakes the stack at once instead of waiting out
 * the failure backoff.
 *
 * When the stack unit's own check (src/stacks/verify.ts through `zoopa
 * check-stack`, its ExecStartPost=) failed since the start job began, its
 * record is the cause (it saw the containers before removing them); otherwise
 * `podman ps --all` of the project. Behind the `Diagnose` type (ProxyDeps.diagnose).
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';
import { stackUnitName } from '../names.js';
import type { ProxyUnits } from './units.js';

export interface Diagnosis {
  /** One line: "service web: image localhost/app:1 does not exist". */
  cause: string;
  /** Resolves true when the cause looks fixed; absent when this cannot tell. */
  fixed?: (o: { timeoutMs: number }) => Promise<boolean>;
}

export interface DiagnoseOptions {
  unit: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Date.now() of the start job: a record of the unit's own check (ExecStartPost) since then is used first. */
  since?: number | undefined;
}

export type Diagnose = (stack: string, o: DiagnoseOptions) => Promise<Diagnosis | null>;

const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

interface PsEntry {
  Names?: string[];
  Image?: string;
  State?: string;
  ExitCode?: number;
  Labels?: Record<string, string> | null;
}

/** Services and their images from the stack's compose file (yaml is loaded only here, on a failure). */
async function composeServices(dir: string): Promise<Map<string, string | undefined> | null> {
  const file = COMPOSE_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!file) return null;
  try {
    const YAML = await import('yaml');
    const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { services?: Record<string, { image?: unknown } | null> } | null;
    const out = new Map<string, string | undefined>();
    for (const [name, svc] of Object.entries(doc?.services ?? {})) out.set(name, typeof svc?.image === 'string' ? svc.image : undefined);
    return out;
  } catch {
    return null;
  }
}

/** The compose files' and .env's modification times, as one string (changes when the user edits the stack). */
function stackFiles(dir: string): string {
  return [...COMPOSE_FILES, '.env']
    .map((f) => {
      try {
        return `${f}:${fs.statSync(path.join(dir, f)).mtimeMs}`;
      } catch {
        return '';
      }
    })
    .join(',');
}

/** Fixed: the stack's files changed since, or the missing images exist now (when they were the only cause). */
function fixedCheck(dir: string, files: string, missing: string[], causes: number, imageExists: (image: string, o: { timeoutMs: number }) => Promise<boolean>): Diagnosis['fixed'] {
  return async (f) => {
    if (stackFiles(dir) !== files) return true;
    if (missing.length === 0 || missing.length !== causes) return false;
    for (const image of missing) if (!(await imageExists(image, f))) return false;
    return true;
  };
}

export function podmanDiagnose(units: ProxyUnits, env: NodeJS.ProcessEnv): Diagnose {
  const podman = (args: string[], o: { timeoutMs: number; signal?: AbortSignal | undefined }) =>
    run(['podman', ...args], { env, timeoutMs: o.timeoutMs, signal: o.signal, reject: false });
  const imageExists = async (image: string, o: { timeoutMs: number }) => (await podman(['image', 'exists', image], o)).status === 0;

  return async (stack, opts) => {
    if (opts.unit !== stackUnitName(stack)) return null;
    // One deadline for every call this makes.
    const end = Date.now() + opts.timeoutMs;
    const o = { get timeoutMs() { return Math.max(1000, end - Date.now()); }, signal: opts.signal };
    const info = await units.show(opts.unit, o, ['WorkingDirectory', 'ExecStart']);
    const dir = info.props.WorkingDirectory ?? '';
    // Not a rootless podman-compose stack: nothing this can look at.
    if (!dir.startsWith('/') || !/podman-compose/.test(info.props.ExecStart ?? '') || /\bsudo\b/.test(info.props.ExecStart ?? '')) return null;
    const files = stackFiles(dir);
    // The unit's own check (zoopa check-stack, ExecStartPost=) saw the containers before it removed them.
    const checked = opts.since === undefined ? undefined : (await import('../stacks/verify.js').catch(() => null))?.lastCheck(stack, env);
    if (checked && opts.since !== undefined && checked.at >= opts.since && checked.problems.length > 0) {
      const { describeProblem } = await import('../stacks/verify.js');
      const missing: string[] = [];
      const causes: string[] = [];
      for (const p of checked.problems) {
        if (p.state === 'missing' && p.image && !(await imageExists(p.image, o))) {
          missing.push(p.image);
          causes.push(`service ${p.service}: image ${p.image} does not exist`);
        } else causes.push(describeProblem({ ...p, logTail: undefined }));
      }
      return { cause: causes.join('; '), fixed: fixedCheck(dir, files, missing, causes.length, imageExists) };
    }
    const ps = await podman(['ps', '--all', '--filter', `label=io.podman.compose.project=${stack}`, '--format', 'json'], o);
    if (ps.status !== 0) return { cause: `podman ps failed: ${ps.stderr.trim().split('\n').pop() ?? ''}` };
    let containers: PsEntry[];
    try {
      containers = JSON.parse(ps.stdout || '[]') as PsEntry[];
    } catch {
      return null;
    }
    const services = (await composeServices(dir)) ?? new Map<string, string | undefined>();
    const causes: string[] = [];
    const missing: string[] = [];
    const serviceOf = (c: PsEntry) => c.Labels?.['com.docker.compose.service'] ?? '';
    for (const [svc, image] of services) {
      const mine = containers.filter((c) => serviceOf(c) === svc);
      if (mine.length > 0) continue;
      if (image && !(await imageExists(image, o))) {
        missing.push(image);
        causes.push(`service ${svc}: image ${image} does not exist`);
      } else {
        causes.push(`service ${svc}: no container${image ? ` (image ${image})` : ''}`);
      }
    }
    for (const c of containers) {
      const state = c.State ?? 'unknown';
      if (state === 'running' || (state === 'exited' && c.ExitCode === 0)) continue;
      const code = state === 'exited' ? ` (exit code ${c.ExitCode ?? '?'})` : '';
      causes.push(`container ${c.Names?.[0] ?? '?'} (image ${c.Image ?? '?'}) is ${state}${code}`);
    }
    if (services.size === 0 && containers.length === 0) causes.push(`no container of project ${stack} exists`);
    if (causes.length === 0) return null;
    return { cause: causes.join('; '), fixed: fixedCheck(dir, files, missing, causes.length, imageExists) };
  };
}
