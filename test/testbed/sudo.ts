/**
 * A scoped sudoers rule for the test user, as the original setup needs for its one
 * rootful stack (`sudo /usr/bin/podman-compose ...` from a user unit):
 *
 *   Defaults:<user> env_keep += "CONTAINERS_CONF"
 *   <user> ALL=(root) NOPASSWD: /usr/bin/podman-compose
 *
 * Written to a temp file, checked with `visudo -cf`, then renamed into
 * /etc/sudoers.d/ (mode 0440). File names contain no '.', which sudo would skip.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/exec.js';

export const SUDOERS_DIR = '/etc/sudoers.d';
export const SUDOERS_PREFIX = 'zoopa-testbed-';

/** A command allowed in the rule: an absolute path without spaces or sudoers syntax. */
const COMMAND = /^\/[A-Za-z0-9_./+-]+$/;

export function renderSudoers(user: string, commands: readonly string[]): string {
  for (const c of commands) {
    if (!COMMAND.test(c)) throw new Error(`allowSudo: "${c}" is not an absolute command path`);
  }
  if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new Error(`allowSudo: unexpected user name "${user}"`);
  return [
    '# Written by the Zoopa test bed; removed when the test bed stops.',
    `Defaults:${user} env_keep += "CONTAINERS_CONF"`,
    `Defaults:${user} !lecture`,
    `${user} ALL=(root) NOPASSWD: ${commands.join(', ')}`,
    '',
  ].join('\n');
}

/**
 * What the test bed itself needs around any rule: root's podman here only works
 * with the test bed's containers.conf (CONTAINERS_CONF), which sudo must keep.
 * Not part of what Zoopa asks users for (a real host needs no CONTAINERS_CONF).
 */
export function renderTestbedDefaults(user: string): string {
  if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new Error(`installSudoers: unexpected user name "${user}"`);
  return ['# Written by the Zoopa test bed; removed when the test bed stops.', `Defaults:${user} env_keep += "CONTAINERS_CONF"`, `Defaults:${user} !lecture`, ''].join('\n');
}

/** Writes (or rewrites) the rule file after validating it with visudo. */
export async function writeSudoers(file: string, user: string, commands: readonly string[]): Promise<void> {
  await writeSudoersText(file, renderSudoers(user, commands));
}

/** Writes `text` verbatim as a sudoers file (mode 0440) after `visudo -cf` accepted it. */
export async function writeSudoersText(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o440 });
  try {
    const check = await run(['visudo', '-cf', tmp], { reject: false });
    if (check.status !== 0) throw new Error(`allowSudo: visudo rejected the rule: ${check.stderr.trim() || check.stdout.trim()}`);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
