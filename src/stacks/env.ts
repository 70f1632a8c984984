/**
 * A stack's .env: made from .env.example (never overwritten, mode 0600), and
 * checked against the variables its compose file interpolates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCompose } from './compose.js';
import type { Stack } from './discover.js';
import { readEnvFile } from '../envfile.js';

export type InitResult = 'created' | 'exists' | 'no-example';

/** Copy .env.example to .env when .env is missing. */
export function envInit(stack: Stack): InitResult {
  const example = path.join(stack.dir, '.env.example');
  const target = path.join(stack.dir, '.env');
  if (!fs.existsSync(example)) return fs.existsSync(target) ? 'exists' : 'no-example';
  try {
    // 'wx': fail if .env exists, so a concurrent writer or an existing file is never overwritten.
    fs.writeFileSync(target, fs.readFileSync(example), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw e;
  }
  fs.chmodSync(target, 0o600);
  return 'created';
}

export interface EnvCheck {
  stack: string;
  /** Variables the compose files use that neither .env nor .env.example defines (and that have no default). */
  undefinedVars: string[];
  /** Variables used with a default (${VAR:-x}) and defined nowhere: fine, listed for information. */
  defaulted: string[];
  /** Keys of .env.example missing from .env. */
  missingFromEnv: string[];
  hasEnv: boolean;
  hasExample: boolean;
}

export function envCheck(stack: Stack): EnvCheck {
  const env = readEnvFile(path.join(stack.dir, '.env'));
  const example = readEnvFile(path.join(stack.dir, '.env.example'));
  const used = new Map<string, boolean>();
  for (const f of [stack.composeFile, ...stack.extraFiles]) {
    for (const [name, v] of readCompose(f).variables) used.set(name, (used.get(name) ?? true) && v.hasDefault);
  }
  const defined = (k: string) => env?.has(k) || example?.has(k);
  const undefinedVars: string[] = [];
  const defaulted: string[] = [];
  for (const [name, hasDefault] of [...used].sort()) {
    if (defined(name)) continue;
    (hasDefault ? defaulted : undefinedVars).push(name);
  }
  const missingFromEnv = example && env ? [...example.keys()].filter((k) => !env.has(k)).sort() : example && !env ? [...example.keys()].sort() : [];
  return { stack: stack.name, undefinedVars, defaulted, missingFromEnv, hasEnv: !!env, hasExample: !!example };
}

export function checkFailed(c: EnvCheck): boolean {
  return c.undefinedVars.length > 0 || c.missingFromEnv.length > 0;
}
