/**
 * llama-server's flags as zoopa renders them: the flags zoopa manages itself (not
 * allowed in extra_args), the loading flags of older builds, and --load-mode from
 * the mmap/mlock keys. Checked against llama.cpp 0.7.0 (build 11669).
 */
/**
 * Flags zoopa writes itself from config keys. They may not appear in
 * extra_args: llama-server takes the last of a repeated flag, so a second
 * --port or --threads there would silently override the key (and the port
 * clash check, and cpus-derived threads).
 */
export const MANAGED_FLAGS: Record<string, string> = {
  '-m': 'model', '--model': 'model',
  '-a': 'alias', '--alias': 'alias',
  '-mm': 'mmproj', '--mmproj': 'mmproj',
  '-c': 'ctx_size', '--ctx-size': 'ctx_size',
  '-t': 'threads', '--threads': 'threads',
  '-tb': 'threads_batch', '--threads-batch': 'threads_batch',
  '-b': 'batch_size', '--batch-size': 'batch_size',
  '-ub': 'ubatch_size', '--ubatch-size': 'ubatch_size',
  '-np': 'parallel', '--parallel': 'parallel',
  '--host': 'host', '--port': 'port',
  '-ctk': 'cache_type_k', '--cache-type-k': 'cache_type_k',
  '-ctv': 'cache_type_v', '--cache-type-v': 'cache_type_v',
  '-lm': 'load_mode', '--load-mode': 'load_mode',
  '--sleep-idle-seconds': 'sleep_idle',
  '--models-dir': 'router', '--models-max': 'models_max',
};

/** Loading flags of llama.cpp builds before --load-mode: allowed in extra_args for them. */
export const OLD_LOAD_FLAGS = ['--mmap', '--no-mmap', '--mlock'];

/**
 * mmap/mlock as llama-server takes them today. Its --mmap, --no-mmap and --mlock were
 * replaced by --load-mode (llama.cpp 0.7.0, build 11669, refuses them: "error: invalid
 * argument: --mmap"), so the keys render --load-mode: mmap → mmap, no mmap → none (read
 * into memory), mlock → mmap+mlock (mmap is the default) or mlock (with mmap: false).
 * mlock: false alone is llama-server's default: nothing is written.
 */
export function loadModeOf(mmap: boolean | undefined, mlock: boolean | undefined): string | undefined {
  if (mlock === true) return mmap === false ? 'mlock' : 'mmap+mlock';
  if (mmap === true) return 'mmap';
  if (mmap === false) return 'none';
  return undefined;
}

