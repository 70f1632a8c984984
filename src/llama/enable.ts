/**
 * `zoopa llama enable|disable <service>...`: which units to enable for a llama
 * service. An always-on service is `<name>.service` (WantedBy=default.target);
 * an on-demand one is its socket `zoopa-ondemand@<name>.socket` (plus the
 * socket folder unit), never the service itself: the proxy starts it on the
 * first request and stops it when idle, and only when it started it.
 */
import type { UnitManager } from '../core/ports.js';
import { StateError, UsageError } from '../errors.js';
import { ONDEMAND_DIR_UNIT, ondemandSocketUnit } from '../names.js';
import type { Project } from '../stacks/discover.js';
import { llamaServiceNames, resolveLlama, type LlamaService } from './resolve.js';


export interface LlamaEnablePlan {
  services: string[];
  /** Units for `systemctl --user enable [--now]`, in order. */
  enable: string[];
  /** Units for `systemctl --user disable [--now]`. */
  disable: string[];
}

/** Resolve service arguments (`qwen` or `qwen.service`); UsageError for an unknown one. */
export function pickServices(project: Project, args: readonly string[], env: NodeJS.ProcessEnv = process.env): LlamaService[] {
  const known = llamaServiceNames(project.config.llama);
  const wanted = args.map((a) => {
    const name = a.endsWith('.service') ? a.slice(0, -'.service'.length) : a;
    if (!known.includes(name)) {
      throw new UsageError(`unknown llama service ${JSON.stringify(a)}`, {
        key: 'service',
        value: a,
        hint: known.length ? `llama services in zoopa.yaml: ${known.join(', ')}` : 'zoopa.yaml has no llama services (llama: services:)',
      });
    }
    return name;
  });
  // Render-time checks (model files exist...) apply: enabling a unit that cannot start helps nobody.
  const all = resolveLlama(project, { env });
  return all.filter((s) => wanted.includes(s.name));
}

export function planLlamaEnable(services: readonly LlamaService[]): LlamaEnablePlan {
  const enable: string[] = [];
  for (const s of services) {
    if (s.ondemand) {
      if (!enable.includes(ONDEMAND_DIR_UNIT)) enable.unshift(ONDEMAND_DIR_UNIT);
      enable.push(ondemandSocketUnit(s.name));
    } else enable.push(s.unit);
  }
  return { services: services.map((s) => s.name), enable, disable: services.map((s) => (s.ondemand ? ondemandSocketUnit(s.name) : s.unit)) };
}

/** Every unit must be installed (known to systemd) before it can be enabled. */
export async function checkInstalled(units: readonly string[], manager: UnitManager): Promise<void> {
  const info = await manager.show(units);
  const missing = units.filter((u) => (info.get(u)?.loadState ?? 'not-found') === 'not-found');
  if (missing.length) {
    throw new StateError('ZOOPA_NOT_INSTALLED', `not installed: ${missing.join(', ')}`, { hint: 'run "zoopa install" first' });
  }
}
