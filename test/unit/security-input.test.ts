/**
 * Least privilege, through the real CLI (issue 9): hostile values are refused as
 * input errors (exit 2, naming the key, nothing written), `zoopa sudoers` prints
 * a rule `visudo -c` accepts with exactly the argvs zoopa runs as root, and
 * writeFileAtomic creates its temp file exclusively and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { run } from '../../src/exec.js';
import { unsafePaths } from '../../src/doctor/rootful.js';
import { writeFileAtomic } from '../../src/fsutil.js';
import { which } from '../../src/unitfile/tools.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

async function refused(root: string, args: string[], env: NodeJS.ProcessEnv, expect: RegExp[]): Promise<void> {
  const base = path.dirname(root);
  const before = snapshot(base);
  const r = await zoopa(['--root', root, ...args], { env });
  assert.equal(r.status, 2, `exit 2 expected: ${r.stderr}${r.stdout}`);
  for (const re of expect) assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.deepEqual(snapshot(base), before, 'nothing written');
}

describe('hostile values are input errors naming the key', () => {
  test('a stacks root whose path holds a line break: exit 2 naming WorkingDirectory=, not internal error 70', async () => {
    const base = tmpDir();
    const root = path.join(base, 'my\nstacks');
    writeFiles(root, { 'web/compose.yaml': COMPOSE });
    await refused(root, ['render'], isolatedEnv(base), [/\[Service\] WorkingDirectory=: the value "[^"]*my\\nstacks\/web" contains a line break/, /hint: remove the line break/]);
  });

  test('llama.working_directory ending in a backslash: exit 2 naming WorkingDirectory=', async () => {
    const base = tmpDir();
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'zoopa.yaml': `llama:\n  working_directory: '/tmp/wd\\'\n  binary: /bin/true\n  services:\n    m1: { model: /etc/hostname, port: 18093 }\n` });
    await refused(root, ['render'], isolatedEnv(base), [/WorkingDirectory=: the value "\/tmp\/wd\\\\" ends in a backslash/, /hint: remove the trailing backslash/]);
  });

  test('stop_check with a word starting with # is refused (the env reader would drop it and the rest)', async () => {
    const base = tmpDir();
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  web:\n    ondemand:\n      upstream: 8080\n      stop_check: [/bin/check, --label, "#prod", --x]\n' });
    await refused(root, ['install', '--dry-run'], isolatedEnv(base), [/stacks\.web\.ondemand\.stop_check/, /starts with "#"/]);
  });

  for (const mode of ['"0777"', '"1777"', '"0775"', '"0733"']) {
    test(`ondemand.directory_mode ${mode} (group or other writable) is refused`, async () => {
      const base = tmpDir();
      const root = path.join(base, 'stacks');
      writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': `ondemand:\n  directory_mode: ${mode}\nstacks:\n  web:\n    ondemand: { upstream: 8080 }\n` });
      await refused(root, ['render'], isolatedEnv(base), [/ondemand\.directory_mode/, /must not let group or others write/]);
    });
  }

  test('ondemand.directory_mode 0711 and 0755 are accepted', async () => {
    for (const mode of ['"0711"', '"0755"']) {
      const base = tmpDir();
      const root = path.join(base, 'stacks');
      writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': `ondemand:\n  directory_mode: ${mode}\nstacks:\n  web:\n    ondemand: { upstream: 8080 }\n` });
      const r = await zoopa(['--root', root, 'render'], { env: isolatedEnv(base) });
      assert.equal(r.status, 0, r.stderr);
    }
  });
});

describe('zoopa sudoers', () => {
  const compose = which('podman-compose') ?? '/usr/bin/podman-compose';
  const podman = which('podman') ?? '/usr/bin/podman';

  function project(yaml: string): { base: string; root: string; env: NodeJS.ProcessEnv } {
    const base = tmpDir();
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'duplicati/compose.yaml': COMPOSE, 'web/compose.yaml': COMPOSE, 'zoopa.yaml': yaml });
    return { base, root, env: isolatedEnv(base) };
  }

  test('prints a Cmnd_Alias of exact argvs and the NOPASSWD line; visudo -c accepts it', async () => {
    const p = project('stacks:\n  duplicati: { rootful: true }\n  web:\n    backup: { jobs: [web, { duplicati: 12 }] }\nbackup:\n  duplicati: { wait: flag, poll_interval: 2 }\n');
    const r = await zoopa(['--root', p.root, 'sudoers', '--user', 'alice'], { env: p.env });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const alias = lines.slice(lines.indexOf('Cmnd_Alias ZOOPA_ROOT = \\') + 1, lines.findIndex((l) => l.startsWith('alice '))).map((l) => l.trim().replace(/,? \\$/, ''));
    const util = `${podman} exec duplicati duplicati-server-util`;
    const file = path.join(p.root, 'duplicati', 'compose.yaml');
    assert.deepEqual(alias, [
      `${compose} -p duplicati -f ${file} up -d`,
      `${compose} -p duplicati -f ${file} down`,
      `${podman} ps --format json --filter label\\=io.podman.compose.project`,
      `${podman} ps --all --format json --filter label\\=io.podman.compose.project`,
      `${util} list-backups --detailed`,
      `${util} run [0-9] --wait --poll-interval 2`,
      `${util} run [0-9][0-9] --wait --poll-interval 2`,
      `${util} run [0-9][0-9][0-9] --wait --poll-interval 2`,
      `${util} run [0-9][0-9][0-9][0-9] --wait --poll-interval 2`,
      `${util} run 12 --wait --poll-interval 2`,
    ]);
    assert.ok(lines.includes('alice ALL=(root) NOPASSWD: ZOOPA_ROOT'), r.stdout);
    assert.ok(!r.stdout.includes('*'), 'no * (it matches spaces, hence any argument)');
    const file2 = path.join(p.base, 'zoopa.sudoers');
    fs.writeFileSync(file2, r.stdout);
    const v = await run(['visudo', '-c', '-f', file2], { reject: false });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // The rootful unit runs exactly the first two (after sudo -n).
    await zoopa(['--root', p.root, 'render'], { env: p.env });
    const unit = fs.readFileSync(path.join(p.root, 'systemd', 'duplicati-stack.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=\\S+/sudo -n ${alias[0]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    assert.match(unit, new RegExp(`^ExecStop=\\S+/sudo -n ${alias[1]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  });

  test('wait: auto adds run --help, status and run <ID>; --json lists each command', async () => {
    const p = project('stacks:\n  web:\n    backup: { jobs: [{ duplicati: 3 }] }\n');
    const r = await zoopa(['--root', p.root, 'sudoers', '--user', 'bob', '--json'], { env: p.env });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { user: string; commands: Array<{ argv: string[]; sudoers: string }> };
    assert.equal(j.user, 'bob');
    assert.deepEqual(
      j.commands.map((c) => c.argv.slice(4).join(' ')),
      ['list-backups --detailed', 'run --help', 'status', 'run 3 --wait --poll-interval 5', 'run 3'],
    );
  });

  test('a rootful stack whose path holds a space cannot be written exactly: exit 2 naming the path', async () => {
    const base = tmpDir();
    const root = path.join(base, 'my stacks');
    writeFiles(root, { 'duplicati/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  duplicati: { rootful: true }\n' });
    const r = await zoopa(['--root', root, 'sudoers'], { env: isolatedEnv(base) });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /my stacks\/duplicati\/compose\.yaml" cannot be written exactly in a sudoers rule/);
  });

  test('no rootful stack and no Duplicati through sudo: nothing to allow', async () => {
    const p = project('stacks: {}\n');
    const r = await zoopa(['--root', p.root, 'sudoers', '--user', 'carol'], { env: p.env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Nothing to allow/);
    assert.doesNotMatch(r.stdout, /NOPASSWD/);
  });
});

describe('writeFileAtomic', () => {
  test('writes with the mode asked, through an exclusive temp file that never stays behind', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'state.json');
    writeFileAtomic(file, 'one', { mode: 0o600 });
    writeFileAtomic(file, 'two', { mode: 0o600 });
    assert.equal(fs.readFileSync(file, 'utf8'), 'two');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir), ['state.json']);
  });

  test('a failing rename removes the temp file', () => {
    const dir = tmpDir();
    const target = path.join(dir, 'target');
    fs.mkdirSync(path.join(target, 'sub'), { recursive: true }); // rename over a non-empty folder fails
    assert.throws(() => writeFileAtomic(target, 'x'));
    assert.deepEqual(fs.readdirSync(dir), ['target']);
  });

  test('a link planted at the old predictable temp name is not followed', () => {
    const dir = tmpDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'untouched');
    const file = path.join(dir, 'out');
    fs.symlinkSync(victim, `${file}.zoopa-tmp-${process.pid}`);
    writeFileAtomic(file, 'new');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
    assert.equal(fs.readFileSync(file, 'utf8'), 'new');
  });
});

describe('the rootful stack files check', () => {
  test('names a file others may write and, when not root, every path of ours; accepts root\'s own /usr/bin/env', () => {
    assert.deepEqual(unsafePaths(['/usr/bin/env']), [], '/usr/bin/env and its folders are root\'s alone');
    const dir = tmpDir();
    const file = path.join(dir, 'compose.yaml');
    fs.writeFileSync(file, COMPOSE);
    fs.chmodSync(file, 0o666);
    const bad = unsafePaths([file]);
    const entry = bad.find((b) => b.path === file);
    assert.ok(entry, JSON.stringify(bad));
    assert.match(entry.why, /writable by its group and others \(mode 0666\)/);
    if (process.getuid?.() !== 0) assert.match(entry.why, /owned by uid \d+, not root/);
    // A sticky, world-writable folder above (like /tmp) is accepted; the file's own folder is not.
    if (process.getuid?.() === 0) {
      const sticky = path.join(dir, 'sticky');
      const own = path.join(sticky, 'stack');
      fs.mkdirSync(own, { recursive: true });
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(sticky, 0o1777);
      const f = path.join(own, 'compose.yaml');
      fs.writeFileSync(f, COMPOSE, { mode: 0o644 });
      assert.deepEqual(unsafePaths([f]).filter((b) => b.path.startsWith(dir)), []);
      fs.chmodSync(own, 0o1777);
      assert.deepEqual(unsafePaths([f]).map((b) => b.path).filter((p) => p.startsWith(dir)), [own]);
    }
  });
});
