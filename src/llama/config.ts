/**
 * The top-level `llama` section of zoopa.yaml: llama.cpp's `llama-server`
 * run as systemd user services, one unit per named service.
 *
 * ```yaml
 * llama:
 *   binary: ~/llama.cpp/build/bin/llama-server   # default
 *   working_directory: ~/llama.cpp               # default
 *   models_dir: ~/models                         # default
 *   defaults:                                    # shared by every service
 *     cpus: 0 1 6-11
 *     batch_size: 512
 *   services:
 *     router: { router: true, port: 8080 }
 *     qwen:   { model: qwen3-8b-q4_k_m.gguf, alias: qwen, port: 8081, ctx_size: 16384 }
 * ```
 *
 * This file only checks shapes and types. What needs the whole project or the
 * file system (model files exist, cpus spec, port clashes, unit names) is
 * checked when units are rendered, by resolve.ts, so the message can name the
 * service and key together.
 */
import { z } from 'zod';
import { duration, port } from '../config/types.js';

/** KV cache types llama-server accepts for --cache-type-k / --cache-type-v. */
export const CACHE_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'] as const;

/** Values of --load-mode (llama.cpp replaced --mmap/--no-mmap/--mlock with it). */
export const LOAD_MODES = ['auto', 'none', 'mmap', 'mlock', 'mmap+mlock', 'dio'] as const;

/** `cpus:` as written: "0 1 6-11", "0,1,6-11", 3, or a list of numbers and ranges. Parsed by cpus.ts. */
export const cpusText = z
  .union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))])
  .transform((v) => (Array.isArray(v) ? v.map(String).join(' ') : String(v)));

const positiveInt = z.number().int().min(1);

/** Keys a service may take from `defaults:`. */
const tuningShape = {
  /** --ctx-size */
  ctx_size: z.number().int().min(0).optional(),
  /** --threads; default: the number of `cpus` (when set). */
  threads: positiveInt.optional(),
  /** --threads-batch; default: the number of `cpus` (when set). */
  threads_batch: positiveInt.optional(),
  /** --batch-size */
  batch_size: positiveInt.optional(),
  /** --ubatch-size */
  ubatch_size: positiveInt.optional(),
  /** --parallel (server slots) */
  parallel: positiveInt.optional(),
  /** --host; default 127.0.0.1 */
  host: z.string().min(1).optional(),
  /** --cache-type-k / --cache-type-v */
  cache_type_k: z.enum(CACHE_TYPES).optional(),
  cache_type_v: z.enum(CACHE_TYPES).optional(),
  /** true: --load-mode mmap, false: --load-mode none, unset: llama-server's default (resolve.ts loadModeOf). */
  mmap: z.boolean().optional(),
  /** true: --load-mode mmap+mlock (mlock with mmap: false). false: nothing (not locking is the default). */
  mlock: z.boolean().optional(),
  /** --load-mode as it is (auto, none, mmap, mlock, mmap+mlock, dio); not combined with mmap/mlock. */
  load_mode: z.enum(LOAD_MODES).optional(),
  /** --sleep-idle-seconds: the server unloads the model after this much idleness. */
  sleep_idle: duration.optional(),
  /** Router mode: --models-max (default 1). */
  models_max: z.number().int().min(0).optional(),
  /** More llama-server arguments, appended as they are (one list item per argv word). */
  extra_args: z.array(z.string()).optional(),
  /** CPUs to run on: drives CPUAffinity= and the default --threads/--threads-batch. */
  cpus: cpusText.optional(),
  /** Nice= of the service; default 0. Negative values only take effect where RLIMIT_NICE allows them (see DEFAULT_NICE). */
  nice: z.number().int().min(-20).max(19).optional(),
  /** RestartSec=; default 2 s. */
  restart_sec: duration.optional(),
};

export const llamaDefaultsSchema = z.strictObject(tuningShape);
export type LlamaDefaults = z.output<typeof llamaDefaultsSchema>;

export const llamaOndemandSchema = z.union([
  z.boolean(),
  z.strictObject({
    /** Stop the service after this much idleness (default: the on-demand default). */
    idle: duration.optional(),
    /** How long the first request may wait for /health to answer 200 (default 10 min). */
    start_timeout: duration.optional(),
  }),
]);
export type LlamaOndemandConfig = z.output<typeof llamaOndemandSchema>;

export const llamaServiceSchema = z.strictObject({
  ...tuningShape,
  description: z.string().optional(),
  /** Model file, relative to models_dir (or absolute). Exclusive with `router`. */
  model: z.string().min(1).optional(),
  /** --alias: the model name the API reports. */
  alias: z.string().min(1).optional(),
  /** Multimodal projector file for vision models (--mmproj), relative to models_dir. */
  mmproj: z.string().min(1).optional(),
  /** llama-server's router mode: serves every model in models_dir (--models-dir). */
  router: z.boolean().optional(),
  port,
  /** Start on the first request through zoopa-ondemand@<name>.socket, stop when idle. */
  ondemand: llamaOndemandSchema.optional(),
});
export type LlamaServiceConfig = z.output<typeof llamaServiceSchema>;

export const llamaSchema = z.strictObject({
  binary: z.string().min(1).optional(),
  working_directory: z.string().min(1).optional(),
  models_dir: z.string().min(1).optional(),
  defaults: llamaDefaultsSchema.optional(),
  services: z.record(z.string(), llamaServiceSchema).default({}),
});
export type LlamaConfig = z.output<typeof llamaSchema>;

export const DEFAULT_BINARY = '~/llama.cpp/build/bin/llama-server';
export const DEFAULT_WORKING_DIRECTORY = '~/llama.cpp';
export const DEFAULT_MODELS_DIR = '~/models';
export const DEFAULT_HOST = '127.0.0.1';
/**
 * Nice= default. The original units used -5, but a user manager without
 * privileges cannot lower niceness: systemd (252, checked) then silently uses
 * the closest value RLIMIT_NICE allows, which is 0 by default. 0 says what
 * actually happens; write a negative `nice` if your limits allow it.
 */
export const DEFAULT_NICE = 0;
export const DEFAULT_RESTART_SEC = 2;
/** Router mode defaults, as in the original unit. */
export const DEFAULT_MODELS_MAX = 1;
export const DEFAULT_ROUTER_SLEEP_IDLE = 600;
/** On demand: loading a model takes longer than starting a stack. */
export const DEFAULT_ONDEMAND_START_TIMEOUT = 600;
