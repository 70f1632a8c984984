/**
 * The `stacks.<name>.backup` and top-level `backup` sections of zoopa.yaml.
 * (Placeholder shape; the backup issue owns and grows this file.)
 */
import { z } from 'zod';

export const stackBackupSchema = z.strictObject({}).passthrough();
export type StackBackupConfig = z.output<typeof stackBackupSchema>;

export const globalBackupSchema = z.strictObject({}).passthrough();
export type GlobalBackupConfig = z.output<typeof globalBackupSchema>;
