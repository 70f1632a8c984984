/**
 * Every name Zoopa shares with users, systemd and its own proxy, in one place:
 * the stack-name rule and its hint, unit names, the `ZOOPA_*` environment names,
 * and default durations. The unit names and env names are the original system's
 * contract (see the seed README): change them only with it.
 *
 * This module imports nothing but src/errors.ts (itself dependency-free), so the
 * proxy can load it without zod or the config code.
 */
import { UsageError } from './errors.js';

// ---- names of stacks, services and listeners --------------------------------

/** Stack, service and listener names: compose project rules, which are also safe unit names. */
export const NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;
export const NAME_HINT = 'use lowercase letters, digits, "-" and "_", starting with a letter or digit';

export function isName(name: string): boolean {
  return NAME_RE.test(name);
}

/** A stack name given as an argument (`zoopa proxy <stack>`, freeze, thaw); a UsageError when it is none. */
export function checkStackArgument(stack: string): string {
  if (!isName(stack)) throw new UsageError(`${JSON.stringify(stack)} is not a stack name`, { key: 'stack', value: stack, hint: NAME_HINT });
  return stack;
}

// ---- unit names ---------------------------------------------------------------

export const STACK_UNIT_SUFFIX = '-stack.service';

/** `<stack>-stack.service` (also with `%i` for the on-demand service template). */
export function stackUnitName(stack: string): string {
  return `${stack}${STACK_UNIT_SUFFIX}`;
}

/** `web` for `web-stack.service`; undefined for any other name. */
export function stackOfUnitName(unit: string): string | undefined {
  return unit.endsWith(STACK_UNIT_SUFFIX) ? unit.slice(0, -STACK_UNIT_SUFFIX.length) : undefined;
}

/** Creates %t/ondemand before any on-demand socket binds in it. */
export const ONDEMAND_DIR_UNIT = 'zoopa-ondemand-dir.service';
export const ONDEMAND_SOCKET_TEMPLATE = 'zoopa-ondemand@.socket';
export const ONDEMAND_SERVICE_TEMPLATE = 'zoopa-ondemand@.service';

/** `zoopa-ondemand@<name>.socket`: a stack's (or on-demand llama service's) socket. */
export function ondemandSocketUnit(name: string): string {
  return `zoopa-ondemand@${name}.socket`;
}

/** `zoopa-ondemand@<name>.service`: the proxy behind the socket. */
export function ondemandServiceUnit(name: string): string {
  return `zoopa-ondemand@${name}.service`;
}

/** The prefix every extra listener socket of a stack starts with: `zoopa-ondemand@<stack>.`. */
export function ondemandListenerPrefix(stack: string): string {
  return `zoopa-ondemand@${stack}.`;
}

/** `zoopa-ondemand@<stack>.<listener>.socket`: an extra listener of a stack. */
export function ondemandListenerSocketUnit(stack: string, listener: string): string {
  return `${ondemandListenerPrefix(stack)}${listener}.socket`;
}

/** Patterns for `systemctl --user list-units`: every stack unit, every on-demand socket. */
export const STACK_UNIT_PATTERN = `*${STACK_UNIT_SUFFIX}`;
export const ONDEMAND_SOCKET_PATTERN = ondemandSocketUnit('*');

/** A llama service's unit: `<name>.service`. */
export function llamaUnitName(name: string): string {
  return `${name}.service`;
}

/** The backup units are `<base>.service` and `<base>.timer` (backup.unit, default duplicati-backup). */
export const DEFAULT_BACKUP_UNIT = 'duplicati-backup';

export function backupServiceUnit(base: string): string {
  return `${base}.service`;
}

export function backupTimerUnit(base: string): string {
  return `${base}.timer`;
}

// ---- environment names ----------------------------------------------------------

/** The on-demand proxy's environment (the env file ~/.config/zoopa-ondemand/<stack>.env and the unit's defaults). */
export const ENV_UPSTREAM = 'ZOOPA_UPSTREAM';
export const ENV_IDLE_TIMEOUT = 'ZOOPA_IDLE_TIMEOUT';
export const ENV_IDLE_MODE = 'ZOOPA_IDLE_MODE';
export const ENV_STACK_UNIT = 'ZOOPA_STACK_UNIT';
export const ENV_READY = 'ZOOPA_READY';
export const ENV_START_TIMEOUT = 'ZOOPA_START_TIMEOUT';
export const ENV_STOP_CHECK = 'ZOOPA_STOP_CHECK';
/** Connections the proxy holds at most while a stack wakes, and its timeout for silent connections. */
export const ENV_MAX_HELD = 'ZOOPA_MAX_HELD';
export const ENV_CONN_IDLE_TIMEOUT = 'ZOOPA_CONN_IDLE_TIMEOUT';
/** How a held browser waits (auto | hold | page), and after how long it gets the waiting page. */
export const ENV_WAIT = 'ZOOPA_WAIT';
export const ENV_PAGE_AFTER = 'ZOOPA_PAGE_AFTER';
/** An HTML file replacing the built-in waiting page ({{stack}}, {{elapsed}}, {{typical}}, {{ready_path}}, {{retry_after}}). */
export const ENV_PAGE_TEMPLATE = 'ZOOPA_PAGE_TEMPLATE';
/** An HTML file replacing the built-in maintenance page ({{stack}}, {{reason}}, {{remaining}}, {{ready_path}}, {{retry_after}}). */
export const ENV_MAINTENANCE_TEMPLATE = 'ZOOPA_MAINTENANCE_TEMPLATE';
/** Prefix of ZOOPA_UPSTREAM_<NAME>, the upstream of the listening fd named NAME. */
export const ENV_UPSTREAM_PREFIX = `${ENV_UPSTREAM}_`;

/** The env var suffix for a listener (fd) name: "web-ui" → "WEB_UI". */
export function listenerEnvKey(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/** `ZOOPA_UPSTREAM_<NAME>` for an extra listener. */
export function listenerEnvName(name: string): string {
  return `${ENV_UPSTREAM_PREFIX}${listenerEnvKey(name)}`;
}

/** The stacks root when --root is not given. */
export const ENV_ROOT = 'ZOOPA_ROOT';

/** What a backup hook sees besides the caller's environment. */
export const ENV_HOOK_STACK = 'ZOOPA_STACK';
export const ENV_HOOK_STACK_DIR = 'ZOOPA_STACK_DIR';
export const ENV_HOOK_UNIT = 'ZOOPA_UNIT';
export const ENV_HOOK_PROJECT = 'ZOOPA_PROJECT';
export const ENV_HOOK_PHASE = 'ZOOPA_BACKUP_PHASE';

// ---- default durations, in seconds ---------------------------------------------------

/** On-demand: stop the stack after this long without traffic (ZOOPA_IDLE_TIMEOUT). */
export const DEFAULT_IDLE_TIMEOUT_S = 600;
/** On-demand: how long a wake may take before connections are refused (ZOOPA_START_TIMEOUT). */
export const DEFAULT_ONDEMAND_START_TIMEOUT_S = 120;
/** A stack unit's TimeoutStartSec= / TimeoutStopSec= (stacks.<name>.start_timeout / stop_timeout). */
export const DEFAULT_STACK_START_TIMEOUT_S = 300;
export const DEFAULT_STACK_STOP_TIMEOUT_S = 120;
