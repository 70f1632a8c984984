/**
 * `<name>.service` for each llama service: llama-server with every flag from
 * zoopa.yaml, pinned with CPUAffinity=, restarted on failure.
 *
 * On-demand services get no [Install] section: zoopa-ondemand@<name>.socket
 * starts them on the first request (the on-demand renderer writes the socket
 * and the env file from llamaOndemandTargets()).
 */
import { absPath, exec, generatedHeader, UnitFile } from '../unitfile/model.js';
import type { RenderContext, RenderedUnit } from '../unitfile/types.js';
import { formatCpus } from './cpus.js';
import { resolveLlama, type LlamaService } from './resolve.js';

export const LLAMA_SERVER_DOCS = 'https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md';

export function renderLlamaUnit(s: LlamaService, source: string): RenderedUnit {
  const u = new UnitFile(generatedHeader(source));
  u.section('Unit').add('Description', s.description).add('Documentation', LLAMA_SERVER_DOCS);
  const svc = u
    .section('Service')
    .add('Type', 'simple')
    .add('WorkingDirectory', absPath(s.workingDirectory))
    .add('ExecStart', exec(s.argv));
  if (s.cpus) svc.add('CPUAffinity', formatCpus(s.cpus));
  svc
    .add('Nice', s.nice)
    .add('Restart', 'on-failure')
    .add('RestartSec', formatSeconds(s.restartSec));
  if (!s.ondemand) u.section('Install').add('WantedBy', 'default.target');
  return { name: s.unit, content: u.toString(), kind: 'llama', stack: s.name };
}

/** Seconds for a *Sec= key: whole numbers as they are, fractions in ms. */
function formatSeconds(sec: number): string {
  return Number.isInteger(sec) ? String(sec) : `${Math.round(sec * 1000)}ms`;
}

export function renderLlamaUnits(ctx: RenderContext): RenderedUnit[] {
  const services = resolveLlama(ctx.project, { env: ctx.env, checkFiles: true });
  const source = ctx.project.configFile ? 'zoopa.yaml' : 'defaults';
  return services.map((s) => renderLlamaUnit(s, `${source} (llama.services.${s.name})`));
}
