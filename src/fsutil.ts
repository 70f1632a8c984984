/** Small file-system helpers shared by every feature. */
import fs from 'node:fs';
import path from 'node:path';

/**
 * Write a file so readers see the old content or the new, never a half-written
 * one: write a temporary file beside it (fsync'd when asked), then rename it over.
 */
export function writeFileAtomic(file: string, content: string | Buffer, opts: { mode?: number; dirMode?: number; fsync?: boolean } = {}): void {
  const mode = opts.mode ?? 0o644;
  fs.mkdirSync(path.dirname(file), { recursive: true, ...(opts.dirMode !== undefined ? { mode: opts.dirMode } : {}) });
  const tmp = `${file}.zoopa-tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
    if (opts.fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
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
