/**
 * Where `zoopa freeze` records a stack's prior state: %t/ondemand/<stack>.frozen.json.
 * Kept apart from freeze.ts (and its imports) so the proxy can check it cheaply.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ondemandRuntimeDir } from '../paths.js';

export function freezeRecordPath(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.frozen.json`);
}

/** A freeze record exists: activation is meant to be off (a backup may be running). */
export function freezeRecordExists(stack: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return fs.existsSync(freezeRecordPath(stack, env));
}
