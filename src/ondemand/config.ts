/** The `stacks.<name>.ondemand` and top-level `ondemand` sections of zoopa.yaml. */
import { z } from 'zod';
import { argvCommand, duration } from '../config/types.js';

/** `http:/path` or `tcp`. */
export const readyCheck = z.string().regex(/^(tcp|http:\/\S*)$/, 'must be "tcp" or "http:/path"');

/** host:port, [v6]:port, or an absolute unix socket path. Parsed fully by src/proxy/upstream.ts. */
export const upstreamText = z.union([z.string().min(1), z.number().int()]).transform((v) => String(v));

export const extraListener = z.strictObject({
  /** Socket name: listens on %t/ondemand/<stack>-<name>.sock */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lowercase letters, digits, "-" and "_"'),
  upstream: upstreamText,
});

export const stackOndemandSchema = z.strictObject({
  upstream: upstreamText,
  idle: duration.optional(),
  idle_mode: z.enum(['traffic', 'connections']).optional(),
  ready: readyCheck.optional(),
  start_timeout: duration.optional(),
  stop_check: argvCommand.optional(),
  listeners: z.array(extraListener).optional(),
});
export type StackOndemandConfig = z.output<typeof stackOndemandSchema>;

const octalMode = z
  .union([z.string().regex(/^0?[0-7]{3,4}$/, 'must be an octal mode like 0666'), z.number().int()])
  .transform((v) => (typeof v === 'number' ? v.toString(8).padStart(4, '0') : v.padStart(4, '0')));

export const globalOndemandSchema = z.strictObject({
  socket_mode: octalMode.optional(),
  directory_mode: octalMode.optional(),
});
export type GlobalOndemandConfig = z.output<typeof globalOndemandSchema>;
