/**
 * llama.cpp in the test bed: the REAL llama-server and tiny models made by the project.
 *
 * ```ts
 * import { realLlamaServer, tinyModels } from '../testbed/llama.js';
 * const binary = await realLlamaServer();   // the wrapper (fetched into the cache once: scripts/llama-fetch.mjs)
 * const m = tinyModels();                   // { dir, names, files, slow }
 * ```
 *
 * - `realLlamaServer()`: the path of the wrapper that runs Debian unstable's llama-server
 *   with its own loader and libraries; fetched by scripts/prereqs.mjs (and here, when the
 *   cache is cold). Runnable by the unprivileged test user (world-readable cache entry).
 * - `realLlamaHelp()`: that llama-server's `--help` text, kept next to it.
 * - `tinyModels()`: cached, world-readable models written by tiny-gguf.ts:
 *     `<cache>/llama-models-<hash>/models/tiny-a.gguf, tiny-b.gguf` (~300 KB each; the folder
 *       router mode serves), and `<cache>/llama-models-<hash>/slow/slow.gguf`, about 100 MB
 *       of random weights: with `--load-mode none` it is read into memory, so /health
 *       answers 503 for a while (a fraction of a second to seconds, not a set time).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cacheDir, makeWorldReadable } from './cache.js';
import { writeTinyGguf, type TinyModelOptions } from './tiny-gguf.js';

/** The repository (this file is dist/test/testbed/llama.js). */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface FetchModule {
  ensureLlamaServer(log?: (line: string) => void): string;
  llamaEntryDir(): string;
}

async function fetchModule(): Promise<FetchModule> {
  return (await import(pathToFileURL(path.join(REPO, 'scripts', 'llama-fetch.mjs')).href)) as FetchModule;
}

/** The real llama-server wrapper (fetched into the test bed cache when missing). */
export async function realLlamaServer(): Promise<string> {
  const m = await fetchModule();
  return m.ensureLlamaServer((line) => process.stderr.write(`llama-fetch: ${line}\n`));
}

/** `--help` of the real llama-server, as saved next to it by scripts/llama-fetch.mjs. */
export async function realLlamaHelp(): Promise<string> {
  await realLlamaServer();
  return fs.readFileSync(path.join((await fetchModule()).llamaEntryDir(), 'help.txt'), 'utf8');
}

/** Bump when tiny-gguf.ts writes different bytes for the same options. */
const WRITER_VERSION = 1;

export const TINY_MODELS: Record<string, TinyModelOptions> = {
  // Head size 32: quantized KV caches (cache_type_k: q8_0) need it to be a multiple of their block size, 32.
  'tiny-a': { name: 'tiny-a', embd: 64, ff: 128, heads: 2, seed: 1 },
  'tiny-b': { name: 'tiny-b', embd: 64, ff: 128, heads: 2, seed: 2 },
};
export const SLOW_MODEL: TinyModelOptions = { name: 'slow', embd: 384, ff: 384, heads: 4, vocab: 32000, seed: 3 };

export interface TinyModels {
  /** The folder of the small models (router mode's --models-dir). */
  dir: string;
  /** Model names (router mode's ids): file names without .gguf. */
  names: string[];
  /** name → absolute file */
  files: Record<string, string>;
  /** The slow-loading model, in a folder of its own. */
  slow: string;
}

/** The tiny models, written once into the test bed cache. */
export function tinyModels(): TinyModels {
  const key = crypto.createHash('sha256').update(JSON.stringify([WRITER_VERSION, TINY_MODELS, SLOW_MODEL])).digest('hex').slice(0, 12);
  const entry = path.join(cacheDir(), `llama-models-${key}`);
  const names = Object.keys(TINY_MODELS).sort();
  const result: TinyModels = {
    dir: path.join(entry, 'models'),
    names,
    files: Object.fromEntries(names.map((n) => [n, path.join(entry, 'models', `${n}.gguf`)])),
    slow: path.join(entry, 'slow', 'slow.gguf'),
  };
  if (fs.existsSync(path.join(entry, 'complete'))) {
    const now = new Date();
    fs.utimesSync(entry, now, now);
    return result;
  }
  const tmp = `${entry}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  try {
    fs.mkdirSync(path.join(tmp, 'models'), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'slow'));
    for (const n of names) writeTinyGguf(path.join(tmp, 'models', `${n}.gguf`), TINY_MODELS[n]!);
    writeTinyGguf(path.join(tmp, 'slow', 'slow.gguf'), SLOW_MODEL);
    fs.writeFileSync(path.join(tmp, 'complete'), '');
    makeWorldReadable(tmp);
    try {
      fs.renameSync(tmp, entry);
    } catch (e) {
      if (!fs.existsSync(path.join(entry, 'complete'))) throw e;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return result;
}
