/** Small zod building blocks shared by every section of zoopa.yaml. */
import { z } from 'zod';
import { DURATION_HINT, parseDuration } from './duration.js';

/** A duration in zoopa.yaml, parsed to seconds. */
export const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const s = parseDuration(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration (${DURATION_HINT})` });
    return z.NEVER;
  }
  return s;
});

/** A TCP port number. */
export const port = z.number().int().min(1).max(65535);

/** argv form of a command: a list of strings, or one string split on white space. */
export const argvCommand = z
  .union([z.array(z.string()).min(1), z.string().min(1)])
  .transform((v) => (typeof v === 'string' ? v.trim().split(/\s+/) : v));
