/** Small file-system helpers shared by every feature. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Write a file so readers see the old content or the new, never a half-written
 * one: write a temporary file beside it (fsync'd when asked), then rename it over.
 *
 * The temporary file has an unpredictable name and is created exclusively
 * (`wx`, O_EXCL: an existing file or symlink planted at that name is never
 * followed), with its final mode from the start; it is removed when anything fails.
 */
export function writeFileAtomic(file: string, content: string | Buffer, opts: { mode?: number; dirMode?: number; fsync?: boolean } = {}): void {
  const mode = opts.mode ?? 0o644;
  fs.mkdirSync(path.dirname(file), { recursive: true, ...(opts.dirMode !== undefined ? { mode: opts.dirMode } : {}) });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.zoopa-tmp-${randomBytes(8).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', mode & 0o700);
  let done = false;
  try {
    try {
      fs.writeFileSync(fd, content);
      fs.fchmodSync(fd, mode);
      if (opts.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    done = true;
  } finally {
    if (!done) fs.rmSync(tmp, { force: true });
  }
}

/** An existing regular file we may execute. */
export function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
