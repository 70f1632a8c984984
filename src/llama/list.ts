/**
 * `zoopa llama list`: every llama service with its model (file and size, or
 * the models folder in router mode), port, CPUs and unit state. Asks systemd
 * about every unit in one `systemctl --user show` call.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { UnitInfo, UnitManager } from '../core/ports.js';
import { ondemandSocketUnit } from '../names.js';
import { homeDir } from '../paths.js';
import type { Project } from '../stacks/discover.js';
import { formatCpus } from './cpus.js';
import { resolveLlama, type LlamaService } from './resolve.js';
import { formatBytes } from '../format.js';

export interface LlamaListEntry {
  name: string;
  unit: string;
  mode: 'model' | 'router';
  /** Absolute model file (model mode), else null. */
  model: string | null;
  /** Model file size in bytes; null when the file is missing or in router mode. */
  modelBytes: number | null;
  /** The models folder (router mode), else null. */
  modelsDir: string | null;
  /** Router mode: how many .gguf files the folder holds (null when it is missing). */
  modelFiles: number | null;
  alias: string | null;
  host: string;
  port: number;
  /** Canonical CPU list ("0 1 6-11"), null when not pinned. */
  cpus: string | null;
  threads: number | null;
  ondemand: boolean;
  /** The unit is known to systemd (linked and loaded). */
  installed: boolean;
  /** ActiveState, or 'not-installed'. */
  state: string;
  subState: string;
  /** UnitFileState (enabled, disabled, linked, static, ...), '' when not installed. */
  enabled: string;
  /** On-demand services: the socket's ActiveState (or 'not-installed'); null otherwise. */
  socket: string | null;
}

function fileSize(p: string): number | null {
  try {
    const st = fs.statSync(p);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

function countModels(dir: string): number | null {
  try {
    // llama-server's router also finds models one folder down (multi-file models); count both.
    let n = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.gguf') && !e.name.startsWith('mmproj')) n++;
      else if (e.isDirectory()) {
        try {
          if (fs.readdirSync(path.join(dir, e.name)).some((f) => f.endsWith('.gguf') && !f.startsWith('mmproj'))) n++;
        } catch {
          /* unreadable subfolder: not counted */
        }
      }
    }
    return n;
  } catch {
    return null;
  }
}

export async function collectLlama(project: Project, manager: UnitManager, env: NodeJS.ProcessEnv = process.env): Promise<LlamaListEntry[]> {
  // Missing model files are shown, not fatal: list is how you find them.
  const services = resolveLlama(project, { env, checkFiles: false });
  if (services.length === 0) return [];
  const units = services.flatMap((s) => (s.ondemand ? [s.unit, ondemandSocketUnit(s.name)] : [s.unit]));
  const info = await manager.show(units);
  return services.map((s) => entry(s, info.get(s.unit), s.ondemand ? info.get(ondemandSocketUnit(s.name)) : undefined));
}

function entry(s: LlamaService, u: UnitInfo | undefined, sock: UnitInfo | undefined): LlamaListEntry {
  const installed = !!u && u.loadState !== 'not-found';
  return {
    name: s.name,
    unit: s.unit,
    mode: s.mode,
    model: s.modelPath ?? null,
    modelBytes: s.modelPath ? fileSize(s.modelPath) : null,
    modelsDir: s.mode === 'router' ? s.modelsDir : null,
    modelFiles: s.mode === 'router' ? countModels(s.modelsDir) : null,
    alias: s.alias ?? null,
    host: s.host,
    port: s.port,
    cpus: s.cpus ? formatCpus(s.cpus) : null,
    threads: s.threads ?? null,
    ondemand: !!s.ondemand,
    installed,
    state: installed ? u!.activeState : 'not-installed',
    subState: installed ? u!.subState : '',
    enabled: installed ? u!.unitFileState : '',
    socket: s.ondemand ? (sock && sock.loadState !== 'not-found' ? sock.activeState : 'not-installed') : null,
  };
}

/** ~ for the home folder, for display. */
function tilde(p: string, env: NodeJS.ProcessEnv): string {
  const h = homeDir(env);
  return p === h ? '~' : p.startsWith(h + '/') ? '~' + p.slice(h.length) : p;
}

export function formatLlamaList(entries: LlamaListEntry[], env: NodeJS.ProcessEnv = process.env): string {
  if (entries.length === 0) return 'no llama services (add a llama: section with services: to zoopa.yaml)\n';
  const rows = entries.map((e) => {
    const model =
      e.mode === 'router'
        ? `${tilde(e.modelsDir!, env)}/ (router, ${e.modelFiles === null ? 'folder missing' : `${e.modelFiles} model${e.modelFiles === 1 ? '' : 's'}`})`
        : `${tilde(e.model!, env)}${e.alias ? ` as ${e.alias}` : ''}`;
    const size = e.mode === 'router' ? '-' : e.modelBytes === null ? 'MISSING' : formatBytes(e.modelBytes);
    let state = e.state + (e.subState && e.subState !== e.state ? ` (${e.subState})` : '');
    if (e.ondemand) state += `, on demand (socket ${e.socket})`;
    return [e.name, model, size, `${e.host}:${e.port}`, e.cpus ?? '-', state];
  });
  const head = ['SERVICE', 'MODEL', 'SIZE', 'LISTEN', 'CPUS', 'STATE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
