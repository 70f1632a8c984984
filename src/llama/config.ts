/**
 * The top-level `llama` section of zoopa.yaml.
 * (Placeholder shape; the llama issue owns and grows this file.)
 */
import { z } from 'zod';

export const llamaSchema = z.strictObject({}).passthrough();
export type LlamaConfig = z.output<typeof llamaSchema>;
