/**
 * The sudoers rule for this setup: exactly the commands Zoopa runs as root, and
 * nothing else (`zoopa sudoers` prints it, `zoopa doctor` probes each one).
 *
 *  - the rootful stack's `up -d` and `down`, as its unit runs them
 *    (composeArgv in src/stacks/units.ts: `-p <stack> -f <absolute compose file>`);
 *  - `podman ps` for root's containers (status, backups, verification):
 *    `podman ps [--all] --format json --filter label=io.podman.compose.project`;
 *  - the `duplicati-server-util` calls the Duplicati engine makes
 *    (src/backup/engines/duplicati.ts), when its command goes through sudo:
 *    `list-backups --detailed`, `run --help` (wait: auto), `run <ID> --wait
 *    --poll-interval <N>` (auto, flag), `run <ID>` and `status` (auto, poll).
 *    A job given by ID is allowed by that exact ID; a job given by name gets
 *    Duplicati's numeric IDs of 1 to 4 digits (`[0-9]`, `[0-9][0-9]`, ...), as the
 *    name is resolved to its ID only at run time. No `*`: in sudoers it matches
 *    spaces, hence any further arguments.
 *
 * sudoers compares a command's arguments as one string joined by spaces, so an
 * argument holding a space (or a glob character) cannot be told apart from
 * several; such paths are refused with an input error naming them.
 */
import { DEFAULT_DUPLICATI_COMMAND } from '../backup/config.js';
import { ConfigError, UsageError } from '../errors.js';
import type { Project, Stack } from '../stacks/discover.js';
import { stackUnitArgvs } from '../stacks/units.js';
import { resolveTools, which } from '../unitfile/tools.js';

/** One command sudo must allow. */
export interface RootCommand {
  /** Which part of Zoopa runs it: the rootful stack (unit, podman ps) or the Duplicati engine. */
  group: 'rootful' | 'duplicati';
  /** What Zoopa runs it for. */
  purpose: string;
  /** An argv sudo runs (after `sudo -n`); for a pattern, one concrete instance (what doctor probes). */
  argv: string[];
  /** The sudoers words when they are a pattern rather than `argv` itself (already escaped). */
  pattern?: string;
}

/** The two `podman ps` argvs (after `podman`) status, backups and verification use for root's containers. */
export const ROOT_PS_ARGS: readonly (readonly string[])[] = [
  ['ps', '--format', 'json', '--filter', 'label=io.podman.compose.project'],
  ['ps', '--all', '--format', 'json', '--filter', 'label=io.podman.compose.project'],
];

/** Duplicati job IDs are numbers; a job named in zoopa.yaml is resolved to its ID at run time. */
const ID_PATTERNS = ['[0-9]', '[0-9][0-9]', '[0-9][0-9][0-9]', '[0-9][0-9][0-9][0-9]'];

const PLAIN = /^[A-Za-z0-9_./@%+-]+$/;
const ESCAPED = /^[A-Za-z0-9_./@%+,:=-]+$/;

/** One argv word in sudoers syntax: `,` `:` `=` escaped; anything sudoers cannot state exactly is refused. */
export function sudoersWord(word: string, what: string): string {
  if (PLAIN.test(word)) return word;
  if (ESCAPED.test(word)) return word.replace(/[,:=]/g, (c) => `\\${c}`);
  throw new UsageError(`${what}: ${JSON.stringify(word)} cannot be written exactly in a sudoers rule`, {
    value: word,
    hint: 'sudoers joins arguments with spaces and reads * ? [ ] ! \\ as patterns or syntax: use paths made of letters, digits and . _ - / @ % + , : =',
  });
}

function program(name: string, env: NodeJS.ProcessEnv, what: string): string {
  const abs = which(name, env);
  if (!abs) throw new UsageError(`${what}: ${name} is not installed (not found on PATH)`, { value: name, hint: `install ${name}, or name it by its absolute path` });
  return abs;
}

function rootfulStack(project: Project): Stack | undefined {
  return project.stacks.find((s) => s.config.rootful && s.config.enabled);
}

/** The rootful stack's commands: exactly its unit's ExecStart= and ExecStop= after `sudo -n`. */
function stackCommands(stack: Stack, project: Project, env: NodeJS.ProcessEnv): RootCommand[] {
  const tools = resolveTools({ podmanCompose: project.config.podman_compose, configFile: project.configFile, env });
  const { start, stop } = stackUnitArgvs(stack, { tools });
  return [
    { group: 'rootful', purpose: `start the rootful stack ${stack.name} (${stack.name}-stack.service ExecStart=)`, argv: start.slice(2) },
    { group: 'rootful', purpose: `stop the rootful stack ${stack.name} (${stack.name}-stack.service ExecStop=)`, argv: stop.slice(2) },
  ];
}

function psCommands(env: NodeJS.ProcessEnv): RootCommand[] {
  const podman = program('podman', env, 'podman ps for root\'s containers');
  return ROOT_PS_ARGS.map((args) => ({ group: 'rootful' as const, purpose: `list root's compose containers (status, backups)${args.includes('--all') ? ', stopped ones too' : ''}`, argv: [podman, ...args] }));
}

/** The Duplicati engine's calls, when its command starts with sudo. */
function duplicatiCommands(project: Project, env: NodeJS.ProcessEnv): RootCommand[] {
  const jobs = project.stacks.flatMap((s) => (s.config.backup?.jobs ?? []).filter((j) => j.engine === 'duplicati').map((j) => ({ stack: s.name, job: String((j as { job: string }).job) })));
  if (!jobs.length) return [];
  const cfg = project.config.backup?.duplicati;
  const command = cfg?.command ?? DEFAULT_DUPLICATI_COMMAND;
  if (!/(^|\/)sudo$/.test(command[0] ?? '')) return [];
  let rest = command.slice(1);
  while (rest[0] === '-n' || rest[0] === '--non-interactive') rest = rest.slice(1);
  if (!rest.length || rest[0]!.startsWith('-')) {
    throw new ConfigError(`backup.duplicati.command: only "sudo -n <command>..." is supported for a sudoers rule, not ${JSON.stringify(command.join(' '))}`, {
      file: project.configFile,
      key: 'backup.duplicati.command',
      value: command,
      hint: 'write e.g. sudo -n podman exec duplicati duplicati-server-util',
    });
  }
  const base = [program(rest[0]!, env, 'backup.duplicati.command'), ...rest.slice(1)];
  const wait = cfg?.wait ?? 'auto';
  const poll = String(Math.max(1, Math.round(cfg?.poll_interval ?? 5)));
  const out: RootCommand[] = [{ group: 'duplicati', purpose: 'list Duplicati jobs and their last results', argv: [...base, 'list-backups', '--detailed'] }];
  if (wait === 'auto') out.push({ group: 'duplicati', purpose: 'ask whether run offers --wait', argv: [...base, 'run', '--help'] });
  if (wait === 'poll' || wait === 'auto') out.push({ group: 'duplicati', purpose: 'read Duplicati status while a job runs', argv: [...base, 'status'] });
  const seen = new Set<string>();
  for (const { stack, job } of jobs) {
    const ids = /^\d+$/.test(job) ? [{ id: job, pattern: undefined }] : ID_PATTERNS.map((p) => ({ id: '1'.repeat(p.length / 5), pattern: p }));
    for (const { id, pattern } of ids) {
      const variants: Array<[string[], string]> = [];
      if (wait !== 'poll') variants.push([['run', id, '--wait', '--poll-interval', poll], `run Duplicati job ${JSON.stringify(job)} of ${stack} and wait`]);
      if (wait !== 'flag') variants.push([['run', id], `queue Duplicati job ${JSON.stringify(job)} of ${stack}`]);
      for (const [args, purpose] of variants) {
        const argv = [...base, ...args];
        const words = argv.map((w, i) => (pattern && i === base.length + 1 ? pattern : sudoersWord(w, 'backup.duplicati.command')));
        const key = words.join(' ');
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ group: 'duplicati', purpose: pattern ? `${purpose} (by its ID, ${pattern.length / 5} digit${pattern.length > 5 ? 's' : ''})` : purpose, argv, ...(pattern ? { pattern: key } : {}) });
      }
    }
  }
  return out;
}

/** Every command Zoopa runs as root for this project, in a fixed order. */
export function rootCommands(project: Project, env: NodeJS.ProcessEnv = process.env): RootCommand[] {
  const rootful = rootfulStack(project);
  return [...(rootful ? [...stackCommands(rootful, project, env), ...psCommands(env)] : []), ...duplicatiCommands(project, env)];
}

/** The sudoers words of a command. */
export function sudoersLine(c: RootCommand): string {
  return c.pattern ?? c.argv.map((w) => sudoersWord(w, c.purpose)).join(' ');
}

const USER_RE = /^[a-z_][a-z0-9_.-]*\$?$/;

/** The complete sudoers file: a Cmnd_Alias of exact argvs and the user's NOPASSWD line. */
export function renderSudoers(user: string, commands: readonly RootCommand[], source: string): string {
  if (!USER_RE.test(user)) throw new UsageError(`--user: ${JSON.stringify(user)} is not a user name sudoers accepts here`, { key: '--user', value: user, hint: 'lowercase letters, digits, _ . and -' });
  const lines = [
    `# Generated by zoopa sudoers from ${JSON.stringify(source).slice(1, -1)}.`,
    '# Install: sudo visudo -f /etc/sudoers.d/zoopa   (paste this file), or',
    '#          zoopa sudoers > zoopa.sudoers && sudo visudo -c -f zoopa.sudoers && sudo install -m 0440 zoopa.sudoers /etc/sudoers.d/zoopa',
    '# Exactly what zoopa runs as root; every argument must match (no wildcards but job IDs).',
  ];
  if (!commands.length) {
    lines.push('# Nothing to allow: no enabled rootful stack and no Duplicati job through sudo.');
    return lines.join('\n') + '\n';
  }
  const words = commands.map(sudoersLine);
  lines.push('#');
  commands.forEach((c, i) => lines.push(`# ${String(i + 1).padStart(2)}. ${c.purpose}`));
  lines.push('Cmnd_Alias ZOOPA_ROOT = \\');
  words.forEach((w, i) => lines.push(`    ${w}${i < words.length - 1 ? ', \\' : ''}`));
  lines.push(`${user} ALL=(root) NOPASSWD: ZOOPA_ROOT`);
  return lines.join('\n') + '\n';
}
