/**
 * Replacing one of the proxy's runtime files (%t/ondemand/<stack>.state.json,
 * <stack>.owned) atomically: a temp file created exclusively (`wx`, mode 0600,
 * so nothing planted at its name is followed or reused), renamed over the
 * file, and removed when anything fails.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

export function replaceRuntimeFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
