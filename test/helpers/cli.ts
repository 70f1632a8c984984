/** Run the real zoopa CLI as a child process (no mocks), and make throwaway folders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from '../../src/exec.js';

/** The repo's bin/zoopa.js (dist/test/helpers → ../../../bin). */
export const ZOOPA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'zoopa.js');

export function tmpDir(prefix = 'zoopa-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** An isolated HOME/XDG world with no systemd behind it (for tests that must not reach one). */
export function isolatedEnv(base: string): NodeJS.ProcessEnv {
  const runtime = path.join(base, 'run');
  fs.mkdirSync(runtime, { recursive: true, mode: 0o700 });
  return {
    PATH: process.env.PATH,
    HOME: path.join(base, 'home'),
    XDG_CONFIG_HOME: path.join(base, 'home', '.config'),
    XDG_STATE_HOME: path.join(base, 'home', '.local', 'state'),
    XDG_RUNTIME_DIR: runtime,
    LANG: 'C.UTF-8',
  };
}

export function zoopa(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return run([process.execPath, ZOOPA, ...args], { env: opts.env ?? process.env, cwd: opts.cwd, reject: false });
}

/** Every file below dir with its content, to prove a command wrote nothing. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p, e.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : fs.readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
}
