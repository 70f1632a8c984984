/**
 * Units and env files of the on-demand feature, compatible with the original
 * (see the seed's systemd README: same unit names, same env file, same socket path).
 *
 * Always rendered (a hand-written ~/.config/zoopa-ondemand/<stack>.env from the
 * original setup keeps working with no zoopa.yaml at all):
 *
 *  - zoopa-ondemand-dir.service  oneshot, creates %t/ondemand (mode 0711 by default).
 *  - zoopa-ondemand@.socket      ListenStream=%t/ondemand/%i.sock, Accept=no, modes as configured,
 *                                Requires/After the dir unit, WantedBy=sockets.target.
 *  - zoopa-ondemand@.service     the proxy: defaults in Environment= (with the top-level
 *                                `ondemand:` wait, page_after and page_template, so they reach
 *                                every stack, hand-written env files included), then the env
 *                                file(s), which override them (systemd reads EnvironmentFile=
 *                                after Environment=), ExecStart=<node> <zoopa.js> proxy %i.
 *
 * Extra listeners of a stack (`stacks.<s>.ondemand.listeners: [{name, upstream}]`) are
 * concrete instance files, no drop-ins (systemd uses a file named like the instance
 * instead of the template):
 *
 *  - zoopa-ondemand@<s>.<name>.socket  ListenStream=%t/ondemand/<s>.<name>.sock,
 *        FileDescriptorName=<name>, Service=zoopa-ondemand@<s>.service (so a connection to
 *        it wakes the same proxy, which then gets every listening fd of the stack with
 *        LISTEN_FDNAMES), PartOf= the stack's main socket (stopping, freezing or disabling
 *        the main socket stops it too).
 *  - zoopa-ondemand@<s>.socket  the template's text plus Wants= on each extra socket, so
 *        `systemctl --user enable --now zoopa-ondemand@<s>.socket` (the README's command)
 *        brings up all of the stack's sockets.
 *
 * This concrete main socket is rendered for every stack whose on-demand settings are in
 * zoopa.yaml, listeners or not: adding or removing a listener then changes a file instead
 * of adding or removing one (install disables a unit it removes, which would drop the
 * socket's enablement). A stack on demand only through a hand-written env file uses the
 * template, exactly like the original.
 *
 * Stack names match [a-z0-9][a-z0-9_-]*, so the dot in <s>.<name> cannot collide
 * with another stack's socket. The main socket keeps systemd's default fd name (the
 * socket unit's name); an extra one is named after its listener, whose upstream comes in
 * ZOOPA_UPSTREAM_<NAME> (upper-cased, - → _).
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatEnvLine } from '../envfile.js';
import { ConfigError } from '../errors.js';
import { llamaOndemandTargets, type LlamaOndemandTarget } from '../llama/resolve.js';
import {
  DEFAULT_IDLE_TIMEOUT_S,
  ENV_IDLE_MODE,
  ENV_IDLE_TIMEOUT,
  ENV_READY,
  ENV_WAIT,
  ENV_PAGE_AFTER,
  ENV_PAGE_TEMPLATE,
  ENV_MAINTENANCE_TEMPLATE,
  ENV_STACK_UNIT,
  ENV_START_TIMEOUT,
  ENV_STOP_CHECK,
  ENV_UPSTREAM,
  listenerEnvName,
  ONDEMAND_DIR_UNIT,
  ONDEMAND_SERVICE_TEMPLATE,
  ONDEMAND_SOCKET_TEMPLATE,
  ondemandListenerSocketUnit,
  ondemandServiceUnit,
  ondemandSocketUnit,
  stackUnitName,
} from '../names.js';
import { ondemandEnvFile, ondemandRuntimeDir } from '../paths.js';
import type { Stack } from '../stacks/discover.js';
import { envAssignment, execWith, GENERATED_MARKER, generatedHeader, raw, UnitFile } from '../unitfile/model.js';
import type { ManagedFile, RenderContext, RenderedUnit } from '../unitfile/types.js';
import { which } from '../unitfile/tools.js';
import { PROXY_NODE_FLAGS } from '../proxy/node-flags.js';
import {
  BUILTIN_PAGE,
  DEFAULT_DIRECTORY_MODE,
  DEFAULT_SOCKET_MODE,
  PAGE_TEMPLATE_HINT,
  PAGE_TEMPLATE_MAX_BYTES,
  type GlobalOndemandConfig,
  type StackOndemandConfig,
} from './config.js';

/** $XDG_RUNTIME_DIR/ondemand/<stack>.sock: what nginx connects to. */
export function socketPath(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.sock`);
}
export function listenerSocketPath(stack: string, listener: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.${listener}.sock`);
}

/** Stacks that get per-stack on-demand files: enabled, with an `ondemand` section. */
export function ondemandStacks(ctx: Pick<RenderContext, 'project'>): Array<Stack & { config: { ondemand: StackOndemandConfig } }> {
  return ctx.project.stacks.filter((s): s is Stack & { config: { ondemand: StackOndemandConfig } } => s.config.enabled && !!s.config.ondemand);
}

function modes(ctx: RenderContext): { socket: string; directory: string } {
  return {
    socket: ctx.project.config.ondemand?.socket_mode ?? DEFAULT_SOCKET_MODE,
    directory: ctx.project.config.ondemand?.directory_mode ?? DEFAULT_DIRECTORY_MODE,
  };
}

const TEMPLATE_SOURCE = 'zoopa.yaml (on-demand units shared by every stack)';

export function renderDirUnit(ctx: RenderContext): RenderedUnit {
  const u = new UnitFile(generatedHeader(TEMPLATE_SOURCE));
  u.section('Unit')
    .add('Description', 'Zoopa on-demand socket directory')
    // Sockets are ordered after this unit and sockets.target after them: the
    // default After=basic.target would make an ordering cycle.
    .add('DefaultDependencies', false)
    .add('Before', 'sockets.target');
  const install = which('install', ctx.env) ?? '/usr/bin/install';
  u.section('Service')
    .add('Type', 'oneshot')
    .add('RemainAfterExit', true)
    // install -d sets the mode on an existing directory too.
    .add('ExecStart', execWith([install, '-d', '-m', modes(ctx).directory, raw('%t/ondemand')]));
  u.section('Install').add('WantedBy', 'sockets.target');
  return { name: ONDEMAND_DIR_UNIT, content: u.toString(), kind: 'ondemand' };
}

interface SocketOptions {
  /** Extra listener sockets of this stack that the main socket pulls in. */
  wants?: readonly string[];
}

function socketFile(ctx: RenderContext, source: string, opts: SocketOptions = {}): UnitFile {
  const m = modes(ctx);
  const u = new UnitFile(generatedHeader(source));
  const unit = u
    .section('Unit')
    .add('Description', raw('Zoopa on-demand socket for %i'))
    .add('Requires', ONDEMAND_DIR_UNIT)
    .add('After', ONDEMAND_DIR_UNIT);
  for (const w of opts.wants ?? []) unit.add('Wants', w);
  u.section('Socket')
    .add('ListenStream', raw('%t/ondemand/%i.sock'))
    .add('Accept', false)
    .add('SocketMode', m.socket)
    .add('DirectoryMode', m.directory)
    // The socket file exists exactly while zoopa listens: a client of a stopped or
    // frozen stack gets ENOENT at once (nginx: 502), and `zoopa status` can tell
    // listening from stopped by reading the directory.
    .add('RemoveOnStop', true);
  u.section('Install').add('WantedBy', 'sockets.target');
  return u;
}

export function renderSocketTemplate(ctx: RenderContext): RenderedUnit {
  return { name: ONDEMAND_SOCKET_TEMPLATE, content: socketFile(ctx, TEMPLATE_SOURCE).toString(), kind: 'ondemand' };
}

export function renderServiceTemplate(ctx: RenderContext): RenderedUnit {
  const u = new UnitFile(generatedHeader(TEMPLATE_SOURCE));
  u.section('Unit')
    .add('Description', raw('Zoopa on-demand proxy for %i'))
    .add('After', ONDEMAND_DIR_UNIT);
  const service = u.section('Service');
  service
    // Defaults first: settings from EnvironmentFile= override Environment= (systemd.exec(5)).
    .add('Environment', raw(`${ENV_STACK_UNIT}=${stackUnitName('%i')}`))
    .add('Environment', envAssignment(ENV_IDLE_TIMEOUT, String(DEFAULT_IDLE_TIMEOUT_S)));
  // The top-level ondemand section: every stack's defaults, a stack's own env file wins.
  for (const [k, v] of globalOndemandEnvVars(ctx.project.config.ondemand)) service.add('Environment', envAssignment(k, v));
  service
    // The original's path, read as it always was...
    .add('EnvironmentFile', raw('-%h/.config/zoopa-ondemand/%i.env'))
    // ...and $XDG_CONFIG_HOME's (where zoopa install writes), the same file unless
    // XDG_CONFIG_HOME is set elsewhere; read last, so it wins.
    .add('EnvironmentFile', raw('-%E/zoopa-ondemand/%i.env'))
    .add('ExecStart', execWith([ctx.tools.node, ...PROXY_NODE_FLAGS, ctx.tools.zoopa, 'proxy', raw('%i')]))
    .add('LimitNOFILE', 16384); // the proxy's descriptor budget (src/proxy/fd-budget.ts); under a user manager's usual hard limit
  return { name: ONDEMAND_SERVICE_TEMPLATE, content: u.toString(), kind: 'ondemand' };
}

/** The concrete main socket and the extra listener sockets of one stack with on-demand settings in zoopa.yaml. */
export function renderStackSocketUnits(stack: Stack & { config: { ondemand: StackOndemandConfig } }, ctx: RenderContext): RenderedUnit[] {
  const listeners = stack.config.ondemand.listeners ?? [];
  const source = `zoopa.yaml stacks.${stack.name}.ondemand`;
  const main = ondemandSocketUnit(stack.name);
  const extras = listeners.map((l) => ondemandListenerSocketUnit(stack.name, l.name));
  const out: RenderedUnit[] = [
    { name: main, content: socketFile(ctx, source, { wants: extras }).toString(), kind: 'ondemand', stack: stack.name },
  ];
  const m = modes(ctx);
  for (const l of listeners) {
    const u = new UnitFile(generatedHeader(source));
    u.section('Unit')
      .add('Description', `Zoopa on-demand socket for ${stack.name}, listener ${l.name}`)
      .add('Requires', ONDEMAND_DIR_UNIT)
      .add('After', ONDEMAND_DIR_UNIT)
      .add('PartOf', main);
    u.section('Socket')
      .add('ListenStream', raw(`%t/ondemand/${stack.name}.${l.name}.sock`))
      .add('Accept', false)
      .add('SocketMode', m.socket)
      .add('DirectoryMode', m.directory)
      .add('RemoveOnStop', true)
      .add('FileDescriptorName', l.name)
      .add('Service', ondemandServiceUnit(stack.name));
    out.push({ name: ondemandListenerSocketUnit(stack.name, l.name), content: u.toString(), kind: 'ondemand', stack: stack.name });
  }
  return out;
}

export function renderOndemandUnits(ctx: RenderContext): RenderedUnit[] {
  const units = [renderDirUnit(ctx), renderSocketTemplate(ctx), renderServiceTemplate(ctx)];
  for (const s of ondemandStacks(ctx)) units.push(...renderStackSocketUnits(s, ctx));
  return units;
}

// ---------------------------------------------------------------------------
// Env files

/** Seconds as ZOOPA_IDLE_TIMEOUT / ZOOPA_START_TIMEOUT carry them (the original: seconds). */
function seconds(s: number): string {
  return Number.isInteger(s) ? String(s) : String(Math.round(s * 1000) / 1000);
}

/**
 * The top-level section's proxy defaults (Environment= of zoopa-ondemand@.service),
 * in the order the per-stack ones take in an env file.
 */
export function globalOndemandEnvVars(c: GlobalOndemandConfig | undefined): Array<[string, string]> {
  const vars: Array<[string, string]> = [];
  if (c?.wait !== undefined) vars.push([ENV_WAIT, c.wait]);
  if (c?.page_after !== undefined) vars.push([ENV_PAGE_AFTER, seconds(c.page_after)]);
  if (c?.page_template !== undefined) vars.push([ENV_PAGE_TEMPLATE, c.page_template]);
  if (c?.maintenance_template !== undefined) vars.push([ENV_MAINTENANCE_TEMPLATE, c.maintenance_template]);
  return vars;
}

/**
 * The page templates zoopa.yaml names, read once as the proxy reads them when it
 * starts (src/proxy/config.ts readPageTemplate): a missing or unreadable file would
 * keep the proxy from starting (for a top-level one: every stack's), so `zoopa
 * install` refuses it first. Run with the env files (install, not `zoopa render`);
 * a hand-written env file's ZOOPA_PAGE_TEMPLATE is the proxy's to check.
 */
export function checkPageTemplates(ctx: Pick<RenderContext, 'project'>): void {
  const named: Array<[string, string]> = [];
  const top = ctx.project.config.ondemand?.page_template;
  if (top !== undefined) named.push(['ondemand.page_template', top]);
  const topM = ctx.project.config.ondemand?.maintenance_template;
  if (topM !== undefined) named.push(['ondemand.maintenance_template', topM]);
  for (const s of ondemandStacks(ctx)) {
    const p = s.config.ondemand.page_template;
    if (p !== undefined && p !== BUILTIN_PAGE) named.push([`stacks.${s.name}.ondemand.page_template`, p]);
    const m = s.config.ondemand.maintenance_template;
    if (m !== undefined && m !== BUILTIN_PAGE) named.push([`stacks.${s.name}.ondemand.maintenance_template`, m]);
  }
  for (const [key, file] of named) {
    const bad = (why: string, cause?: unknown) =>
      new ConfigError(`${key}: ${JSON.stringify(file)} ${why}`, { file: ctx.project.configFile, key, value: file, hint: PAGE_TEMPLATE_HINT, cause });
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
      fs.accessSync(file, fs.constants.R_OK);
    } catch (e) {
      throw bad(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
    }
    if (!st.isFile()) throw bad('is not a file');
    if (st.size > PAGE_TEMPLATE_MAX_BYTES) throw bad(`is larger than 256 KiB (${st.size} bytes)`);
  }
}

/** The env file's variables for one stack's zoopa.yaml settings, in a fixed order. */
export function ondemandEnvVars(c: StackOndemandConfig): Array<[string, string]> {
  const vars: Array<[string, string]> = [[ENV_UPSTREAM, c.upstream]];
  if (c.idle !== undefined) vars.push([ENV_IDLE_TIMEOUT, seconds(c.idle)]);
  if (c.idle_mode !== undefined) vars.push([ENV_IDLE_MODE, c.idle_mode]);
  if (c.ready !== undefined) vars.push([ENV_READY, c.ready]);
  if (c.start_timeout !== undefined) vars.push([ENV_START_TIMEOUT, seconds(c.start_timeout)]);
  if (c.stop_check !== undefined) vars.push([ENV_STOP_CHECK, c.stop_check.join(' ')]);
  if (c.wait !== undefined) vars.push([ENV_WAIT, c.wait]);
  if (c.page_after !== undefined) vars.push([ENV_PAGE_AFTER, seconds(c.page_after)]);
  // "builtin": an empty value, which overrides a top-level template (the proxy reads empty as unset).
  if (c.page_template !== undefined) vars.push([ENV_PAGE_TEMPLATE, c.page_template === BUILTIN_PAGE ? '' : c.page_template]);
  if (c.maintenance_template !== undefined) vars.push([ENV_MAINTENANCE_TEMPLATE, c.maintenance_template === BUILTIN_PAGE ? '' : c.maintenance_template]);
  for (const l of c.listeners ?? []) vars.push([listenerEnvName(l.name), l.upstream]);
  return vars;
}

function envFile(file: string, source: string, service: string, vars: Array<[string, string]>, ctx: RenderContext): ManagedFile {
  const lines = [
    `# ${GENERATED_MARKER} from zoopa.yaml (${source}).`,
    `# Do not edit: change zoopa.yaml and run "zoopa install". Read by ${service}.`,
  ];
  for (const [k, v] of vars) {
    try {
      lines.push(formatEnvLine(k, v));
    } catch (e) {
      throw new ConfigError(`${source}: ${(e as Error).message}`, { file: ctx.project.configFile, key: source, value: v, cause: e });
    }
  }
  return { path: file, content: lines.join('\n') + '\n', mode: 0o600 };
}

export function renderOndemandEnvFile(stack: Stack & { config: { ondemand: StackOndemandConfig } }, ctx: RenderContext): ManagedFile {
  return envFile(ondemandEnvFile(stack.name, ctx.env), `stacks.${stack.name}.ondemand`, ondemandServiceUnit(stack.name), ondemandEnvVars(stack.config.ondemand), ctx);
}

/**
 * A llama service on demand (src/llama/resolve.ts llamaOndemandTargets): the same
 * socket and proxy templates, instance <name>; the env file names the service's own
 * unit (not <name>-stack.service) and waits for llama-server's /health.
 */
export function llamaOndemandEnvVars(t: LlamaOndemandTarget): Array<[string, string]> {
  const vars: Array<[string, string]> = [
    [ENV_UPSTREAM, t.upstream],
    [ENV_STACK_UNIT, t.unit],
    [ENV_READY, t.ready],
    [ENV_START_TIMEOUT, seconds(t.startTimeout)],
  ];
  if (t.idle !== undefined) vars.push([ENV_IDLE_TIMEOUT, seconds(t.idle)]);
  return vars;
}

/** Env files written from zoopa.yaml: `stacks.<name>.ondemand` and on-demand llama services. */
export function renderOndemandEnvFiles(ctx: RenderContext): ManagedFile[] {
  checkPageTemplates(ctx);
  const files = ondemandStacks(ctx).map((s) => renderOndemandEnvFile(s, ctx));
  for (const t of llamaOndemandTargets(ctx.project.config.llama)) {
    const file = ondemandEnvFile(t.name, ctx.env);
    if (files.some((f) => f.path === file)) {
      throw new ConfigError(`llama.services.${t.name}: a stack is also called ${t.name}; both would use ${file} and ${ondemandSocketUnit(t.name)}`, {
        file: ctx.project.configFile,
        key: `llama.services.${t.name}`,
        value: t.name,
        hint: 'rename the llama service',
      });
    }
    files.push(envFile(file, `llama.services.${t.name}.ondemand`, ondemandServiceUnit(t.name), llamaOndemandEnvVars(t), ctx));
  }
  return files;
}
