/**
 * A tiny image built from the machine's own /bin/busybox (busybox-static), for when no
 * registry can be reached: a folder with busybox and its applet symlinks, tarred and
 * `podman import`ed. The test beds' image and `zoopa doctor`'s throwaway probe image
 * are both built here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';

export const BUSYBOX = '/bin/busybox';

/** True when an ELF executable has no PT_INTERP program header (needs no dynamic loader). */
export function isStaticElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64);
    fs.readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) return false; // "\x7fELF"
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      fs.readSync(fd, ph, 0, phentsize, phoff + i * phentsize);
      if (u32(ph, 0) === 3) return false; // PT_INTERP
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Why /bin/busybox cannot be used for an image (undefined: it can). */
export function busyboxUnusable(busybox = BUSYBOX): string | undefined {
  if (!fs.existsSync(busybox)) return `${busybox} does not exist`;
  if (!isStaticElf(busybox)) return `${busybox} is not statically linked (it would not run inside an empty image)`;
  return undefined;
}

/**
 * Builds `<dir>/<name>.tar`: busybox plus a symlink per applet, /etc/passwd and
 * /etc/group, world-readable (another user may import it). Returns the tar's path;
 * an existing tar is reused.
 */
export async function buildBusyboxTar(dir: string, name = 'busybox', busybox = BUSYBOX): Promise<string> {
  const tar = path.join(dir, `${name}.tar`);
  if (fs.existsSync(tar)) return tar;
  const rootfs = path.join(dir, `${name}-rootfs`);
  fs.rmSync(rootfs, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run([busybox, '--list'], { timeoutMs: 30_000 });
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (!applet || applet === 'busybox' || applet.includes('/')) continue;
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tmp = `${tar}.${process.pid}.tmp`;
  await run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tmp, '.'], { timeoutMs: 60_000 });
  fs.chmodSync(tmp, 0o644);
  fs.renameSync(tmp, tar);
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tar;
}

/** `podman import` arguments (after `podman`) that turn the tar into `image`. */
export function importArgs(tar: string, image: string): string[] {
  return ['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin', tar, image];
}
