/**
 * The unprivileged user the test beds run as.
 *
 * As root: a dedicated user `zoopa-test` (created once with useradd, no home, no
 * login shell) with /etc/subuid and /etc/subgid ranges for rootless podman.
 * Not root: the current user (its subuid ranges are its own business; rootless
 * podman says clearly when they are missing).
 *
 * Also the machine-wide tweaks a rootless test bed needs, done only as root:
 *  - /run/systemd/system exists (systemd --user refuses to start otherwise when PID 1
 *    is not systemd);
 *  - /dev/net/tun is mode 0666 (0600 on these machines, 0666 on normal hosts):
 *    slirp4netns needs it to publish ports of rootless containers. Left that way.
 */
import fs from 'node:fs';
import os from 'node:os';
import { run } from '../../src/exec.js';
import { isRoot } from './util.js';

export const TEST_USER = 'zoopa-test';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** True for the dedicated zoopa-test user (root mode): its stray processes may be killed. */
  dedicated: boolean;
}

function lookup(name: string): TestUser | undefined {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] && f[3]) return { name, uid: Number(f[2]), gid: Number(f[3]), dedicated: true };
  }
  return undefined;
}

function hasRange(file: string, name: string, uid: number): boolean {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .some((l) => l.startsWith(`${name}:`) || l.startsWith(`${uid}:`));
  } catch {
    return false;
  }
}

/** First start of a free 65536-wide range above every range in /etc/subuid and /etc/subgid. */
function nextFreeRange(): number {
  let top = 100_000;
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) {
      const [, start, count] = l.split(':');
      if (start && count) top = Math.max(top, Number(start) + Number(count));
    }
  }
  return top;
}

/** Finds or creates the test user (root), or describes the current user (not root). */
export async function ensureTestUser(): Promise<TestUser> {
  if (!isRoot()) {
    const me = os.userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid, dedicated: false };
  }
  let user = lookup(TEST_USER);
  if (!user) {
    const r = await run(
      ['useradd', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', TEST_USER],
      { reject: false },
    );
    user = lookup(TEST_USER); // another test process may have created it meanwhile
    if (!user) throw new Error(`testbed: useradd ${TEST_USER} failed: ${r.stderr.trim()}`);
  }
  if (!hasRange('/etc/subuid', user.name, user.uid) || !hasRange('/etc/subgid', user.name, user.uid)) {
    const start = nextFreeRange();
    const range = `${start}-${start + 65535}`;
    await run(['usermod', '--add-subuids', range, '--add-subgids', range, user.name]);
  }
  return user;
}

/** Machine-wide preparation for rootless podman and systemd --user (root only; see header). */
export function prepareMachine(): void {
  if (!isRoot()) return;
  fs.mkdirSync('/run/systemd/system', { recursive: true });
  try {
    const st = fs.statSync('/dev/net/tun');
    if ((st.mode & 0o666) !== 0o666) fs.chmodSync('/dev/net/tun', 0o666);
  } catch (e) {
    throw new Error(`testbed: /dev/net/tun is not usable (${(e as Error).message}); rootless podman needs it`);
  }
}
