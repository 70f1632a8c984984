/**
 * The `stacks.<name>.backup` and top-level `backup` sections of zoopa.yaml.
 *
 *   backup:
 *     stacks: [cryptpad, web]          # what the timer's service backs up
 *     on_calendar: "*-*-* 03:30:00"
 *     check_calendar: "Sun *-*-* 05:00:00"   # zoopa backup check, weekly
 *     unit: duplicati-backup           # <unit>.service + <unit>.timer
 *     log_dir: duplicati/logs          # relative to the stacks root
 *     ping_url: https://hc-ping.com/<uuid>
 *     call_timeout: 2m                 # each systemctl/podman call (plus the stack's stop/start timeout)
 *     hook_timeout: 10m                # a hook without its own timeout
 *     duplicati:
 *       command: sudo -n podman exec duplicati duplicati-server-util
 *       stack: duplicati
 *     restic:
 *       repository: /srv/restic
 *       password_file: /home/me/.config/restic-password
 *       forget: { keep_daily: 7, keep_weekly: 4, prune: true }
 *       max_age: 2d                    # zoopa backup check: latest snapshot younger than this
 *
 *   stacks:
 *     cryptpad:
 *       backup:
 *         jobs:
 *           - cryptpad                   # a Duplicati job name or ID
 *           - duplicati: 3
 *             timeout: 2h
 *           - restic: { paths: [data] }  # default paths: the compose file's bind mounts
 *         restore: previous              # or always
 *         hooks:
 *           pre_stop: { run: [occ, maintenance:mode, --on], undo: [occ, maintenance:mode, --off] }
 *           verify: curl -fsS http://127.0.0.1:8080/
 */
import { z } from 'zod';
import { DEFAULT_BACKUP_UNIT } from '../names.js';
import { argvCommand, duration } from '../config/types.js';

export const DEFAULT_ON_CALENDAR = '*-*-* 03:30:00';
export const DEFAULT_LOG_DIR = 'duplicati/logs';
export const DEFAULT_DUPLICATI_COMMAND = ['sudo', '-n', 'podman', 'exec', 'duplicati', 'duplicati-server-util'];
export const DEFAULT_DUPLICATI_STACK = 'duplicati';
export const DEFAULT_JOB_TIMEOUT = 6 * 3600;
export const DEFAULT_HOOK_TIMEOUT = 600;
export const DEFAULT_CALL_TIMEOUT = 120;
export const DEFAULT_MAX_AGE = 2 * 86400;

export const HOOK_POINTS = ['pre_stop', 'post_stop', 'pre_backup', 'post_backup', 'pre_start', 'post_start', 'verify'] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

/** One hook: a command line (split on white space; no shell, no quotes), or `{ run, undo?, timeout? }` with argv lists. */
const hookObject = z.strictObject({
  run: argvCommand,
  /** Runs whatever happens afterwards, once `run` has succeeded (e.g. maintenance mode off). */
  undo: argvCommand.optional(),
  timeout: duration.optional(),
});
export const hookSchema = z
  .union([z.string().min(1), hookObject])
  .transform((v) => (typeof v === 'string' ? { run: v.trim().split(/\s+/), undo: undefined, timeout: undefined } : v));
export type HookConfig = z.output<typeof hookSchema>;

/**
 * What a hook point holds must read as written:
 *  - a list is several hooks, each a command line (split on white space: no shell,
 *    no quoting) or `{ run: [argv...] }`. A list of two or more items with a bare
 *    word among them (`[sh, -c, "..."]`) reads like one command's argv but would run
 *    each word as a hook of its own: it is refused, with the fix;
 *  - `false`, `true`, numbers and null are YAML scalars, not commands: refused;
 *  - a command line with quotes or backslashes would not be split as a shell
 *    would (there is no shell): refused, with the argv form as the fix.
 */
export function checkHookPoint(v: unknown, ctx: z.RefinementCtx): void {
  const items = Array.isArray(v) ? v : [v];
  items.forEach((item, i) => {
    const path = Array.isArray(v) ? [i] : [];
    if (item === null || typeof item === 'boolean' || typeof item === 'number') {
      const t = item === null ? 'null' : typeof item;
      ctx.addIssue({ code: 'custom', input: item, path, message: `${String(item)} is a YAML ${t}, not a command: write { run: ["${String(item)}"] }` });
    } else if (typeof item === 'string' && /['"\\]/.test(item)) {
      ctx.addIssue({
        code: 'custom',
        input: item,
        path,
        message: `a hook written as one line is split on white space only (no shell, no quotes): write its argv, e.g. { run: [sh, -c, ${JSON.stringify(item)}] } or { run: [cmd, "an argument"] }`,
      });
    }
  });
  if (Array.isArray(v) && v.length >= 2 && v.some((x) => typeof x === 'string' && /^\S+$/.test(x.trim()))) {
    ctx.addIssue({
      code: 'custom',
      input: v,
      message:
        'a list of plain words would run each word as a hook of its own, not as one command: for one command write { run: [sh, -c, "..."] } (its argv under run:); for several hooks, one command line or { run: [...] } per item',
    });
  }
}

/** One hook or a list of hooks, checked by checkHookPoint first. */
const hookList = z
  .unknown()
  .superRefine(checkHookPoint)
  .pipe(z.union([hookSchema, z.array(hookSchema)]))
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const hooksSchema = z.strictObject({
  pre_stop: hookList.default([]),
  post_stop: hookList.default([]),
  pre_backup: hookList.default([]),
  post_backup: hookList.default([]),
  pre_start: hookList.default([]),
  post_start: hookList.default([]),
  verify: hookList.default([]),
});
export type HooksConfig = z.output<typeof hooksSchema>;

const jobName = z.union([z.string().min(1), z.number().int().nonnegative()]).transform((v) => String(v));

export const resticJobSchema = z.strictObject({
  /** Folders or files to back up, relative to the stack folder. Default: the compose file's bind mounts. */
  paths: z.array(z.string().min(1)).optional(),
  /** Extra tags (zoopa and stack:<name> are always set). */
  tags: z.array(z.string().regex(/^[^,\s]+$/, 'a tag has no commas or white space')).default([]),
  exclude: z.array(z.string().min(1)).default([]),
});

/** A job: a Duplicati job name or ID, `{ duplicati: name, timeout? }`, or `{ restic: {...}, timeout? }`. */
export const jobSchema = z
  .union([
    jobName,
    z.strictObject({ duplicati: jobName, timeout: duration.optional() }),
    z.strictObject({ restic: resticJobSchema.prefault({}), timeout: duration.optional() }),
  ])
  .transform((v) => {
    if (typeof v === 'string') return { engine: 'duplicati' as const, job: v, timeout: undefined };
    if ('duplicati' in v) return { engine: 'duplicati' as const, job: v.duplicati, timeout: v.timeout };
    return { engine: 'restic' as const, ...v.restic, timeout: v.timeout };
  });
export type JobConfig = z.output<typeof jobSchema>;

export const RESTORE_POLICIES = ['previous', 'always'] as const;
export type RestorePolicy = (typeof RESTORE_POLICIES)[number];

export const stackBackupSchema = z.strictObject({
  jobs: z.array(jobSchema).default([]),
  /** The unit to stop and start; default <stack>-stack.service. */
  unit: z.string().regex(/^[A-Za-z0-9:_.\\@-]+\.service$/, 'must be a unit name ending in .service').optional(),
  /** The compose project label to wait on; default the stack name. */
  project: z.string().min(1).optional(),
  /** How long to wait for the containers to stop; default the stack's stop_timeout. */
  stop_timeout: duration.optional(),
  /** How long to wait for the containers to come back; default the stack's start_timeout. */
  start_timeout: duration.optional(),
  /** previous: start again only if its containers were running before; always: start in any case. */
  restore: z.enum(RESTORE_POLICIES).default('previous'),
  /** Freeze the on-demand socket during the run; default: yes when the stack is on demand. */
  freeze: z.boolean().optional(),
  hooks: hooksSchema.prefault({}),
  /** `zoopa backup check`: the stack's latest restic snapshot must be younger; default backup.restic.max_age. */
  max_age: duration.optional(),
});
export type StackBackupConfig = z.output<typeof stackBackupSchema>;

const keep = z.number().int().positive().optional();
export const forgetSchema = z.strictObject({
  keep_last: keep,
  keep_hourly: keep,
  keep_daily: keep,
  keep_weekly: keep,
  keep_monthly: keep,
  keep_yearly: keep,
  keep_within: z.string().regex(/^(\d+[ymdh])+$/, 'a restic duration like 30d or 1y6m').optional(),
  /** Also remove unreferenced data (restic forget --prune). */
  prune: z.boolean().default(false),
});
export type ForgetConfig = z.output<typeof forgetSchema>;

export const duplicatiSchema = z.strictObject({
  /** How to reach duplicati-server-util (argv; no shell). */
  command: argvCommand.default(DEFAULT_DUPLICATI_COMMAND),
  /** The stack running Duplicati: the backup service Wants= and After= its unit. */
  stack: z.string().min(1).optional(),
  /** auto: use `run --wait` when `run --help` offers it, else poll `status`. */
  wait: z.enum(['auto', 'flag', 'poll']).default('auto'),
  poll_interval: duration.default(5),
  job_timeout: duration.default(DEFAULT_JOB_TIMEOUT),
});
export type DuplicatiConfig = z.output<typeof duplicatiSchema>;

export const resticSchema = z.strictObject({
  /** restic's path; default found on PATH. */
  command: z.string().min(1).default('restic'),
  /** -r; default $RESTIC_REPOSITORY. A relative path is relative to the stacks root. */
  repository: z.string().min(1).optional(),
  /** --password-file; default $RESTIC_PASSWORD / $RESTIC_PASSWORD_FILE. Relative to the stacks root. */
  password_file: z.string().min(1).optional(),
  /** Create the repository on first use when it does not exist. */
  init: z.boolean().default(false),
  /**
   * Run restic through `podman unshare`: inside the rootless user namespace, so files
   * containers wrote as other users (owned by subordinate uids on the host) can be read.
   */
  unshare: z.boolean().default(false),
  forget: forgetSchema.optional(),
  job_timeout: duration.default(DEFAULT_JOB_TIMEOUT),
  /** `zoopa backup check`: a stack whose latest snapshot is older fails the check (default 2 days). */
  max_age: duration.default(DEFAULT_MAX_AGE),
});
export type ResticConfig = z.output<typeof resticSchema>;

export const NOTIFY_EVENTS = ['failure', 'success'] as const;
const notifyCommon = {
  /** When to send: `[failure]` (default) or `[failure, success]`. */
  on: z.array(z.enum(NOTIFY_EVENTS)).min(1).default(['failure']),
  /** Deadline of the POST: a target that does not answer delays the run by at most this. */
  timeout: duration.default(10),
};
/** `{ ntfy: URL }` (a plain POST with Title/Priority/Tags headers) or `{ webhook: URL }` (a JSON POST). */
export const notifyTargetSchema = z.union([
  z.strictObject({ ntfy: z.url({ protocol: /^https?$/ }), ...notifyCommon }),
  z.strictObject({ webhook: z.url({ protocol: /^https?$/ }), ...notifyCommon }),
]);
export type NotifyTarget = z.output<typeof notifyTargetSchema>;

export const globalBackupSchema = z.strictObject({
  /** Stacks the backup service backs up, in order ("all" for every stack with jobs). */
  stacks: z.array(z.string().min(1)).default([]),
  on_calendar: z.string().min(1).default(DEFAULT_ON_CALENDAR),
  /** When set: <unit>-check.service and .timer run `zoopa backup check` on this calendar (e.g. "Sun *-*-* 05:00:00"). */
  check_calendar: z.string().min(1).optional(),
  randomized_delay: duration.optional(),
  /** Base name of the service and timer units. */
  unit: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'use lowercase letters, digits, ".", "-" and "_" (no .service suffix)')
    .default(DEFAULT_BACKUP_UNIT),
  /** Per stack per day logs: <log_dir>/backup-<stack>-YYYY-MM-DD.log. Relative to the stacks root. */
  log_dir: z.string().min(1).default(DEFAULT_LOG_DIR),
  /** healthchecks-style URL: <url>/start, <url> on success, <url>/fail on failure. */
  ping_url: z.url({ protocol: /^https?$/ }).optional(),
  ping_timeout: duration.default(10),
  /** Where to report a stack's result (src/backup/notify.ts). */
  notify: z.array(notifyTargetSchema).default([]),
  /** Deadline of each systemctl/podman call of a run (a stop or start adds the stack's stop/start timeout). */
  call_timeout: duration.default(DEFAULT_CALL_TIMEOUT),
  /** Deadline of a hook that sets no `timeout` of its own. */
  hook_timeout: duration.default(DEFAULT_HOOK_TIMEOUT),
  duplicati: duplicatiSchema.prefault({}),
  restic: resticSchema.prefault({}),
});
export type GlobalBackupConfig = z.output<typeof globalBackupSchema>;

export function defaultGlobalBackupConfig(): GlobalBackupConfig {
  return globalBackupSchema.parse({});
}
