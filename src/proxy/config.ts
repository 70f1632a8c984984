/**
 * `zoopa proxy <stack>` settings: the environment (the unit's defaults, then the
 * stack's env file) overridden by command-line flags. Everything is checked here,
 * before a socket is touched or a unit started; bad input is an InputError naming
 * the env var or flag and the value, with a hint.
 *
 * Env (all optional except the upstream):
 *   ZOOPA_UPSTREAM          host:port, [v6]:port, name:port or /abs/unix.sock (required)
 *   ZOOPA_UPSTREAM_<NAME>   upstream for the listening fd named NAME (LISTEN_FDNAMES;
 *                           upper-cased, "-" → "_")
 *   ZOOPA_IDLE_TIMEOUT      seconds or a span (10m); 0 or "infinity": never stop (default 600)
 *   ZOOPA_IDLE_MODE         traffic (default) | connections
 *   ZOOPA_STACK_UNIT        default <stack>-stack.service; "none": plain proxy, no unit
 *   ZOOPA_READY             tcp (default) | http:/path
 *   ZOOPA_START_TIMEOUT     default 120 s
 *   ZOOPA_STOP_CHECK        veto command (split on white space, no shell)
 *   ZOOPA_MAX_HELD          connections held at most while the stack wakes (default 1024)
 *   ZOOPA_CONN_IDLE_TIMEOUT close a connection silent this long (default: never)
 *   ZOOPA_WAIT              auto (default: browsers get the waiting page) | hold | page
 *   ZOOPA_PAGE_AFTER        a held browser gets the waiting page after this long (default 1 s; 0: at once)
 *   ZOOPA_PAGE_TEMPLATE     an HTML file (absolute path) replacing the built-in waiting page
 *   ZOOPA_MAINTENANCE_TEMPLATE  the same for the maintenance page (while frozen)
 */
import fs from 'node:fs';
import path from 'node:path';
import { DURATION_HINT, parseDuration } from '../config/duration.js';
import { InputError, UsageError } from '../errors.js';
import {
  checkStackArgument,
  DEFAULT_IDLE_TIMEOUT_S,
  DEFAULT_ONDEMAND_START_TIMEOUT_S,
  ENV_CONN_IDLE_TIMEOUT,
  ENV_IDLE_MODE,
  ENV_IDLE_TIMEOUT,
  ENV_MAX_HELD,
  ENV_READY,
  ENV_STACK_UNIT,
  ENV_START_TIMEOUT,
  ENV_STOP_CHECK,
  ENV_UPSTREAM,
  ENV_UPSTREAM_PREFIX,
  ENV_PAGE_AFTER,
  ENV_PAGE_TEMPLATE,
  ENV_MAINTENANCE_TEMPLATE,
  ENV_WAIT,
  stackUnitName,
} from '../names.js';
import { parseUpstream, type Upstream } from './upstream.js';
import { PAGE_TEMPLATE_MAX_BYTES } from './waitpage.js';

export type IdleMode = 'traffic' | 'connections';
/** How held HTTP clients wait for a wake (waitpage.ts): browsers get a page (auto), nobody (hold), every HTTP request (page). */
export type WaitStyle = 'auto' | 'hold' | 'page';
export const WAIT_STYLES: readonly WaitStyle[] = ['auto', 'hold', 'page'];
export const DEFAULT_PAGE_AFTER_MS = 1000;
export type ReadyCheck = { kind: 'tcp' } | { kind: 'http'; path: string };
export type ListenSpec = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface ProxySettings {
  stack: string;
  /** Where connections on unnamed (or unmapped) listeners go. */
  upstream: Upstream;
  /** Upstreams for named listeners, keyed by listenerEnvKey(name) from names.ts ("API" for fd name "api"). */
  namedUpstreams: Map<string, Upstream>;
  /** null: never stop for idleness. */
  idleTimeoutMs: number | null;
  idleMode: IdleMode;
  /** null: plain proxy with no unit to start or stop (`--stack-unit none`). */
  stackUnit: string | null;
  ready: ReadyCheck;
  startTimeoutMs: number;
  /** argv of the veto command, or null. */
  stopCheck: string[] | null;
  /** `--listen`: bind this socket ourselves instead of taking systemd's. */
  listen: ListenSpec | null;
  /** Connections held at most while the stack wakes; more are closed. */
  maxHeld: number;
  /** Close an attached connection with no byte either way for this long; null: never. */
  connIdleTimeoutMs: number | null;
  wait: WaitStyle;
  /** In `auto`, a held navigation still waiting this long gets the waiting page. */
  pageAfterMs: number;
  /** The text of ZOOPA_PAGE_TEMPLATE (read once, at start), or null: the built-in page. */
  pageTemplate: string | null;
  /** The text of ZOOPA_MAINTENANCE_TEMPLATE, or null: the built-in maintenance page. */
  maintenanceTemplate: string | null;
}

/** Command-line flags; each one overrides its env var. */
export interface ProxyFlags {
  upstream?: string | undefined;
  idle?: string | undefined;
  listen?: string | undefined;
  stackUnit?: string | undefined;
  ready?: string | undefined;
  startTimeout?: string | undefined;
}

export const DEFAULT_MAX_HELD = 1024;

/**
 * An env value as the proxy reads it: trimmed, and an unquoted trailing
 * "  # comment" dropped (the original README shows `ZOOPA_IDLE_TIMEOUT=600   # ...`,
 * which systemd passes through whole). Empty means unset.
 */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const v = raw.replace(/\s+#.*$/s, '').trim();
  return v === '' ? undefined : v;
}

interface Source {
  /** How to name it in an error: "--idle" or "ZOOPA_IDLE_TIMEOUT". */
  key: string;
  value: string;
}

function pick(flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string): Source | undefined {
  if (flag !== undefined) return { key: flagName, value: flag };
  const v = envValue(env, envName);
  return v === undefined ? undefined : { key: envName, value: v };
}

function durationMs(src: Source, opts: { allowNever: boolean }): number | null {
  const v = src.value.trim().toLowerCase();
  if (opts.allowNever && (v === 'infinity' || v === 'never')) return null;
  const s = parseDuration(v);
  if (s === undefined) {
    throw new InputError('ZOOPA_BAD_DURATION', `${src.key}=${JSON.stringify(src.value)} is not a duration`, {
      key: src.key,
      value: src.value,
      hint: DURATION_HINT + (opts.allowNever ? '; 0 or "infinity" never stops' : ''),
    });
  }
  if (s === 0) {
    if (opts.allowNever) return null;
    throw new InputError('ZOOPA_BAD_DURATION', `${src.key}=${JSON.stringify(src.value)} must be longer than 0`, {
      key: src.key,
      value: src.value,
      hint: DURATION_HINT,
    });
  }
  return Math.round(s * 1000);
}

export function parseReady(src: Source): ReadyCheck {
  const v = src.value.trim();
  if (v === 'tcp') return { kind: 'tcp' };
  const m = /^http:(\/\S*)$/.exec(v);
  if (m) return { kind: 'http', path: m[1]! };
  throw new InputError('ZOOPA_BAD_READY', `${src.key}=${JSON.stringify(src.value)} is not a readiness check`, {
    key: src.key,
    value: src.value,
    hint: 'write "tcp" (the upstream accepts a connection) or "http:/path" (GET /path answers 2xx or 3xx)',
  });
}

/** `--listen PATH|HOST:PORT`. A value with a "/" is a unix socket path; port 0 picks a free port. */
export function parseListen(src: Source, cwd = process.cwd()): ListenSpec {
  const v = src.value.trim();
  const bad = (why: string) =>
    new UsageError(`${src.key} ${JSON.stringify(src.value)}: ${why}`, {
      key: src.key,
      value: src.value,
      hint: 'write a unix socket path (/run/user/1000/ondemand/web.sock, ./web.sock) or HOST:PORT (127.0.0.1:8080, [::1]:8080)',
    });
  if (v === '') throw bad('it is empty');
  if (v.includes('/')) return { kind: 'unix', path: path.resolve(cwd, v) };
  let host: string;
  let portText: string;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0 || v[close + 1] !== ':') throw bad('an IPv6 address needs the form [address]:port');
    host = v.slice(1, close);
    portText = v.slice(close + 2);
  } else {
    const colon = v.lastIndexOf(':');
    if (colon <= 0) throw bad('write HOST:PORT, or a path containing "/" for a unix socket');
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`the port ${JSON.stringify(portText)} is not a port number`);
  return { kind: 'tcp', host, port: Number(portText) };
}

function parseCount(src: Source): number {
  const v = src.value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 1_000_000) {
    throw new InputError('ZOOPA_BAD_NUMBER', `${src.key}=${JSON.stringify(src.value)} is not a count of connections`, {
      key: src.key,
      value: src.value,
      hint: `write a whole number from 1 to 1000000 (default ${DEFAULT_MAX_HELD})`,
    });
  }
  return n;
}

function parseStackUnit(src: Source | undefined, stack: string): string | null {
  if (!src) return stackUnitName(stack);
  const v = src.value.trim();
  if (v === 'none') return null;
  if (!/^[A-Za-z0-9:_.\\@-]+$/.test(v) || v.startsWith('-')) {
    throw new InputError('ZOOPA_BAD_UNIT', `${src.key}=${JSON.stringify(src.value)} is not a unit name`, {
      key: src.key,
      value: src.value,
      hint: `name the stack's unit (${stackUnitName(stack)}), or "none" to proxy without starting or stopping anything`,
    });
  }
  return /\.(service|target|socket|mount|scope|slice|path|timer)$/.test(v) ? v : `${v}.service`;
}

export function resolveProxySettings(stack: string, env: NodeJS.ProcessEnv, flags: ProxyFlags = {}, cwd = process.cwd()): ProxySettings {
  checkStackArgument(stack);

  const upSrc = pick(flags.upstream, '--upstream', env, ENV_UPSTREAM);
  if (!upSrc) {
    throw new InputError('ZOOPA_NO_UPSTREAM', `no upstream for stack ${stack}: ZOOPA_UPSTREAM is not set`, {
      key: ENV_UPSTREAM,
      hint: `put ZOOPA_UPSTREAM=127.0.0.1:8080 (the stack's published port) in ~/.config/zoopa-ondemand/${stack}.env, or pass --upstream`,
    });
  }
  const upstream = parseUpstream(upSrc.value, upSrc.key);

  const namedUpstreams = new Map<string, Upstream>();
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_UPSTREAM_PREFIX)) continue;
    const v = envValue(env, name);
    if (v === undefined) continue;
    namedUpstreams.set(name.slice(ENV_UPSTREAM_PREFIX.length), parseUpstream(v, name));
  }

  const idleSrc = pick(flags.idle, '--idle', env, ENV_IDLE_TIMEOUT);
  const idleTimeoutMs = idleSrc ? durationMs(idleSrc, { allowNever: true }) : DEFAULT_IDLE_TIMEOUT_S * 1000;

  const modeSrc = pick(undefined, '', env, ENV_IDLE_MODE);
  let idleMode: IdleMode = 'traffic';
  if (modeSrc) {
    const m = modeSrc.value.toLowerCase();
    if (m !== 'traffic' && m !== 'connections') {
      throw new InputError('ZOOPA_BAD_IDLE_MODE', `ZOOPA_IDLE_MODE=${JSON.stringify(modeSrc.value)} is not an idle mode`, {
        key: ENV_IDLE_MODE,
        value: modeSrc.value,
        hint: '"traffic" (stop after no bytes moved for the idle timeout) or "connections" (the timer runs once the last connection closed)',
      });
    }
    idleMode = m;
  }

  const stackUnit = parseStackUnit(pick(flags.stackUnit, '--stack-unit', env, ENV_STACK_UNIT), stack);

  const readySrc = pick(flags.ready, '--ready', env, ENV_READY);
  const ready = readySrc ? parseReady(readySrc) : ({ kind: 'tcp' } as const);

  const stSrc = pick(flags.startTimeout, '--start-timeout', env, ENV_START_TIMEOUT);
  const startTimeoutMs = stSrc ? (durationMs(stSrc, { allowNever: false }) as number) : DEFAULT_ONDEMAND_START_TIMEOUT_S * 1000;

  const checkText = envValue(env, ENV_STOP_CHECK);
  const stopCheck = checkText ? checkText.split(/\s+/) : null;

  const listenSrc = flags.listen !== undefined ? { key: '--listen', value: flags.listen } : undefined;
  const listen = listenSrc ? parseListen(listenSrc, cwd) : null;

  const maxHeldSrc = pick(undefined, '', env, ENV_MAX_HELD);
  const maxHeld = maxHeldSrc ? parseCount(maxHeldSrc) : DEFAULT_MAX_HELD;
  const connIdleSrc = pick(undefined, '', env, ENV_CONN_IDLE_TIMEOUT);
  const connIdleTimeoutMs = connIdleSrc ? durationMs(connIdleSrc, { allowNever: true }) : null;

  const waitSrc = pick(undefined, '', env, ENV_WAIT);
  let wait: WaitStyle = 'auto';
  if (waitSrc) {
    const w = waitSrc.value.toLowerCase();
    if (!(WAIT_STYLES as readonly string[]).includes(w)) {
      throw new InputError('ZOOPA_BAD_WAIT', `${ENV_WAIT}=${JSON.stringify(waitSrc.value)} is not a wait style`, {
        key: ENV_WAIT,
        value: waitSrc.value,
        hint: '"auto" (browsers get a waiting page, everything else is held), "hold" (every connection is held) or "page" (every HTTP request gets the waiting page)',
      });
    }
    wait = w as WaitStyle;
  }
  const afterSrc = pick(undefined, '', env, ENV_PAGE_AFTER);
  let pageAfterMs = DEFAULT_PAGE_AFTER_MS;
  if (afterSrc) {
    const s = parseDuration(afterSrc.value.trim().toLowerCase());
    if (s === undefined) {
      throw new InputError('ZOOPA_BAD_DURATION', `${ENV_PAGE_AFTER}=${JSON.stringify(afterSrc.value)} is not a duration`, { key: ENV_PAGE_AFTER, value: afterSrc.value, hint: `${DURATION_HINT}; 0 shows the page at once` });
    }
    pageAfterMs = Math.round(s * 1000);
  }

  const tplSrc = pick(undefined, '', env, ENV_PAGE_TEMPLATE);
  const pageTemplate = tplSrc ? readPageTemplate(ENV_PAGE_TEMPLATE, tplSrc.value) : null;
  const mtSrc = pick(undefined, '', env, ENV_MAINTENANCE_TEMPLATE);
  const maintenanceTemplate = mtSrc ? readPageTemplate(ENV_MAINTENANCE_TEMPLATE, mtSrc.value) : null;

  return { stack, upstream, namedUpstreams, idleTimeoutMs, idleMode, stackUnit, ready, startTimeoutMs, stopCheck, listen, maxHeld, connIdleTimeoutMs, wait, pageAfterMs, pageTemplate, maintenanceTemplate };
}

/** ZOOPA_PAGE_TEMPLATE / ZOOPA_MAINTENANCE_TEMPLATE: an absolute path to a readable file of at most 256 KiB. */
function readPageTemplate(key: string, file: string): string {
  const vars = key === ENV_PAGE_TEMPLATE ? '{{stack}}, {{elapsed}}, {{typical}}' : '{{stack}}, {{reason}}, {{remaining}}';
  const bad = (why: string, cause?: unknown) =>
    new InputError('ZOOPA_BAD_PAGE_TEMPLATE', `${key}=${JSON.stringify(file)}: ${why}`, {
      key,
      value: file,
      hint: `name an HTML file by its absolute path, readable by the stack owner; it may use ${vars}, {{ready_path}}, {{retry_after}}`,
      cause,
    });
  if (!path.isAbsolute(file)) throw bad('not an absolute path');
  try {
    if (fs.statSync(file).size > PAGE_TEMPLATE_MAX_BYTES) throw bad('larger than 256 KiB');
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw bad(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
}
