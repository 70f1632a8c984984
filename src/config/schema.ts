/**
 * The schema of zoopa.yaml. Each feature owns its section's schema in its own
 * folder (ondemand/, backup/, llama/); this file puts them together. Unknown
 * keys are errors everywhere (strict objects), so a typo never passes silently.
 */
import { z } from 'zod';
import { globalBackupSchema, stackBackupSchema } from '../backup/config.js';
import { llamaSchema } from '../llama/config.js';
import { globalOndemandSchema, stackOndemandSchema } from '../ondemand/config.js';
import { DEFAULT_STACK_START_TIMEOUT_S, DEFAULT_STACK_STOP_TIMEOUT_S } from '../names.js';
import { duration } from './types.js';
import { NAME_HINT, NAME_RE } from '../names.js';
import { webSchema } from '../web/config.js';

export const stackSchema = z.strictObject({
  /** false: no unit is rendered for this stack. */
  enabled: z.boolean().default(true),
  /** Run podman-compose as root through `sudo -n` (at most one stack). */
  rootful: z.boolean().default(false),
  description: z.string().optional(),
  /** Extra compose files, relative to the stack folder, passed with -f after the main one. */
  files: z.array(z.string().min(1)).default([]),
  start_timeout: duration.default(DEFAULT_STACK_START_TIMEOUT_S),
  stop_timeout: duration.default(DEFAULT_STACK_STOP_TIMEOUT_S),
  ondemand: stackOndemandSchema.optional(),
  backup: stackBackupSchema.optional(),
  /** Stacks this one needs: Requires= and After= on their units (checked in src/stacks/requires.ts). */
  requires: z.array(z.string().regex(NAME_RE, NAME_HINT)).default([]),
  /** StopWhenUnneeded=yes: systemd stops the stack when no running unit requires it any more. */
  stop_when_unneeded: z.boolean().default(false),
});
export type StackConfig = z.output<typeof stackSchema>;

export const configSchema = z.strictObject({
  /** Absolute path of podman-compose; default: found on PATH at render time. */
  podman_compose: z.string().optional(),
  /** Where `zoopa render` writes units; default <root>/systemd. Relative to the root. */
  units_dir: z.string().optional(),
  stacks: z.record(z.string(), stackSchema).default({}),
  ondemand: globalOndemandSchema.optional(),
  backup: globalBackupSchema.optional(),
  llama: llamaSchema.optional(),
  /** zoopa web: status page, /metrics, /api/status (socket-activated). */
  web: webSchema.optional(),
});
export type ZoopaConfig = z.output<typeof configSchema>;

export function defaultStackConfig(): StackConfig {
  return stackSchema.parse({});
}
