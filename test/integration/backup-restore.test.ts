/**
 * zoopa backup restore for real: an isolated systemd user manager, a rootless
 * podman stack whose container writes a file as its own user (uid 1000 inside,
 * a subordinate uid outside), the real restic with `restic.unshare: true`.
 *
 * Issue 12's restore acceptance:
 *  - back up the running stack; delete and alter files; `--dry-run` changes nothing;
 *    an unknown snapshot is exit 2 before anything stops; without --yes and a
 *    terminal, exit 2; `--to DIR` restores there and the stack is untouched;
 *  - `restore --yes`: the stack was stopped during the restore (a post_stop hook
 *    records `podman ps`: empty), runs again, its files are identical to the
 *    snapshot (content, type, mode, owner as seen in the user namespace), the
 *    altered data is kept aside and named in the output;
 *  - a verify hook that fails after the data was moved: the previous data is back,
 *    the stack is running, the restored copy kept aside as failed;
 *  - a restore killed with SIGKILL after the swap (in its pre_start hook): `zoopa
 *    backup repair` puts the previous data back, then the stack.
 *
 *   npm run build && node scripts/run-tests.mjs backup-restore
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import YAML from 'yaml';
import { IMAGE, useTestbed, type Testbed } from '../testbed/index.js';
import { runningContainers } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };

describe('zoopa backup restore on the test bed', () => {
  const bed = useTestbed({ name: 'restore' });
  let dir: string;
  let data: string;
  let snapshotState: string;
  let cfg: { backup: unknown; stacks: { vault: { stop_timeout: number; backup: { jobs: unknown[]; restore: string; hooks: Record<string, unknown> } } } };

  const journal = (tb: Testbed) => path.join(tb.stateHome, 'zoopa', 'backup', 'journal', 'vault.json');
  const psFile = (tb: Testbed, point: string) => path.join(tb.home, `ps-${point}.txt`);
  const failFlag = (tb: Testbed) => path.join(tb.home, 'fail-verify');

  async function ok(p: Promise<{ status: number | null; stdout: string; stderr: string }>, what: string) {
    const r = await p;
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    return r;
  }

  /** Every entry under `root`: type, mode, owner (in the user namespace), size, content hash. */
  async function state(tb: Testbed, root: string): Promise<string> {
    const meta = await ok(tb.run(['podman', 'unshare', 'find', root, '-printf', '%P %y %m %U:%G %s\n']), 'find');
    const sums = await ok(tb.run(['podman', 'unshare', 'find', root, '-type', 'f', '-exec', 'sha256sum', '{}', '+']), 'sha256sum');
    const lines = [
      ...meta.stdout.split('\n').filter(Boolean),
      ...sums.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(root + '/', '')),
    ];
    return lines.sort().join('\n');
  }

  function zoopa(tb: Testbed, args: string[]) {
    return tb.zoopa(['--root', tb.root, 'backup', ...args], { timeoutMs: 300_000 });
  }

  before(async () => {
    const tb = bed();
    dir = path.join(tb.root, 'vault');
    data = path.join(dir, 'data');
    const repo = path.join(tb.dir, 'restic-repo');
    const pwFile = tb.writeFile('restic-password', 'correct horse battery staple\n', 0o600);
    tb.writeFile(path.join(data, 'public.txt'), 'public\n');
    tb.writeFile(path.join(data, 'sub', 'notes.txt'), 'line one\nline two\n', 0o600);
    tb.writeFile(path.join(data, 'sub', 'blob.bin'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)));
    fs.chmodSync(path.join(data, 'sub', 'blob.bin'), 0o640);
    fs.chmodSync(data, 0o777);
    tb.writeFile(
      path.join(dir, 'compose.yaml'),
      YAML.stringify({
        services: {
          app: {
            image: IMAGE,
            user: '1000:1000',
            // Written once, as the container's user: a restart keeps what the restore put there.
            command: ['sh', '-c', '[ -e /data/secret.txt ] || { echo secret > /data/secret.txt && chmod 600 /data/secret.txt; }; exec sleep 100000'],
            volumes: ['./data:/data'],
            stop_signal: 'SIGKILL',
          },
        },
      }),
    );
    const ps = (point: string) => ({ run: ['sh', '-c', `podman ps --filter label=io.podman.compose.project=vault --format '{{.Names}}' > "$HOME/ps-${point}.txt"`] });
    cfg = {
      backup: { restic: { repository: repo, password_file: pwFile, unshare: true } },
      stacks: {
        vault: {
          stop_timeout: 60,
          backup: {
            jobs: [{ restic: {} }],
            restore: 'always',
            hooks: { post_stop: ps('post-stop'), post_start: ps('post-start'), verify: { run: ['test', '!', '-e', failFlag(tb)] } } as Record<string, unknown>,
          },
        },
      },
    };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
    await ok(tb.run(['restic', '-r', repo, '--password-file', pwFile, 'init']), 'restic init');
    await ok(tb.zoopa(['--root', tb.root, 'install']), 'zoopa install');
    await ok(tb.systemctl(['start', 'vault-stack.service']), 'start vault');
    await tb.waitFor(() => fs.existsSync(path.join(data, 'secret.txt')), { ...DEADLINE, what: 'the container to write its file' });
    const r = await ok(zoopa(tb, ['vault']), 'zoopa backup vault');
    assert.match(r.stdout, /vault +ok +.*snapshot [0-9a-f]{8}: 4 files/);
    fs.rmSync(psFile(tb, 'post-stop'));
    snapshotState = await state(tb, data);
    assert.match(snapshotState, /^secret\.txt f 600 1000:1000 7$/m, 'the container user owns its file');
    assert.deepEqual(await runningContainers(tb, 'vault'), ['vault_app_1']);
  });

  it('dry-run, unknown snapshot, no --yes, --to DIR: the stack and its data untouched', async () => {
    const tb = bed();
    // Lose and alter data.
    await ok(tb.run(['podman', 'unshare', 'rm', path.join(data, 'secret.txt')]), 'rm secret');
    fs.rmSync(path.join(data, 'sub', 'notes.txt'));
    tb.writeFile(path.join(data, 'public.txt'), 'altered\n');
    const altered = await state(tb, data);
    assert.notEqual(altered, snapshotState);

    const dry = await ok(zoopa(tb, ['restore', 'vault', '--dry-run']), 'dry-run');
    assert.match(dry.stdout, /^restore of vault from snapshot [0-9a-f]{8} /);
    assert.match(dry.stdout, /state: active; running: vault_app_1/);
    assert.ok(dry.stdout.includes(`${data}: replaced; the current data is kept as ${data}.zoopa-before-restore-`), dry.stdout);
    assert.equal(await state(tb, data), altered, 'dry-run changed nothing');

    const unknown = await zoopa(tb, ['restore', 'vault', '--snapshot', 'deadbeef', '--yes']);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /--snapshot deadbeef: no snapshot of vault has this id/);
    assert.equal(fs.existsSync(psFile(tb, 'post-stop')), false, 'nothing stopped');

    const noYes = await zoopa(tb, ['restore', 'vault']);
    assert.equal(noYes.status, 2, noYes.stderr);
    assert.match(noYes.stderr, /--yes is required when stdin is not a terminal/);

    const to = path.join(tb.dir, 'look');
    const r = await ok(zoopa(tb, ['restore', 'vault', '--to', to, '--yes']), 'restore --to');
    assert.match(r.stdout, /the stack was not touched/);
    assert.equal(await state(tb, path.join(to, data)), snapshotState, 'the snapshot, in the folder');
    assert.equal(await state(tb, data), altered, 'the stack data untouched');
    assert.equal(fs.existsSync(psFile(tb, 'post-stop')), false, 'nothing stopped');
    assert.deepEqual(await runningContainers(tb, 'vault'), ['vault_app_1']);
    assert.equal(fs.existsSync(journal(tb)), false);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.zoopa-')), [], 'nothing set aside or staged');
  });

  it('restore --yes: stopped during the restore, running again, files as in the snapshot, the altered data kept aside', async () => {
    const tb = bed();
    const altered = await state(tb, data);
    const r = await ok(zoopa(tb, ['restore', 'vault', '--yes']), 'restore');
    assert.match(r.stdout, /vault +ok +.*snapshot [0-9a-f]{8} restored/);
    const kept = new RegExp(`^  (${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.zoopa-before-restore-[0-9TZ-]+)$`, 'm').exec(r.stdout);
    assert.ok(kept, `the kept copy is named: ${r.stdout}`);
    assert.equal(fs.readFileSync(psFile(tb, 'post-stop'), 'utf8'), '', 'no container ran while the data was replaced');
    assert.equal(fs.readFileSync(psFile(tb, 'post-start'), 'utf8'), 'vault_app_1\n');
    assert.deepEqual(await runningContainers(tb, 'vault'), ['vault_app_1']);
    assert.equal(await state(tb, data), snapshotState, 'content, modes and owners as in the snapshot');
    assert.equal(await state(tb, kept[1]!), altered, 'the replaced data, kept as it was');
    assert.equal(fs.existsSync(journal(tb)), false);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.zoopa-restore-')), [], 'no staging folder left');
  });

  it('a verify hook failing after the data was replaced: the previous data and the stack are put back', async () => {
    const tb = bed();
    tb.writeFile(path.join(data, 'public.txt'), 'changed after the restore\n');
    const current = await state(tb, data);
    fs.rmSync(psFile(tb, 'post-stop'));
    tb.writeFile(failFlag(tb), '');
    const r = await zoopa(tb, ['restore', 'vault', '--yes']);
    fs.rmSync(failFlag(tb));
    assert.equal(r.status, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /vault +FAILED /);
    assert.match(r.stdout, /the previous data and the stack were put back/);
    assert.equal(fs.readFileSync(psFile(tb, 'post-stop'), 'utf8'), '', 'it was stopped');
    assert.equal(await state(tb, data), current, 'the previous data is back');
    assert.deepEqual(await runningContainers(tb, 'vault'), ['vault_app_1'], 'running again');
    const failed = fs.readdirSync(dir).filter((n) => n.startsWith('data.zoopa-failed-restore-'));
    assert.equal(failed.length, 1, 'the restored copy is kept, not deleted');
    assert.equal(await state(tb, path.join(dir, failed[0]!)), snapshotState);
    assert.equal(fs.existsSync(journal(tb)), false);
  });

  it('a restore killed with SIGKILL after the data was swapped: zoopa backup repair puts the previous data and the stack back', async () => {
    const tb = bed();
    const reached = path.join(tb.home, 'pre-start-reached');
    const go = path.join(tb.home, 'pre-start-go');
    cfg.stacks.vault.backup.hooks.pre_start = { run: ['sh', '-c', `touch '${reached}'; while [ ! -e '${go}' ]; do sleep 0.2; done`] };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
    tb.writeFile(path.join(data, 'public.txt'), 'before the killed restore\n');
    const current = await state(tb, data);
    const failedBefore = fs.readdirSync(dir).filter((n) => n.startsWith('data.zoopa-failed-restore-')).length;
    const run = tb.spawn([process.execPath, path.join(tb.appDir, 'bin', 'zoopa.js'), '--root', tb.root, 'backup', 'restore', 'vault', '--yes']);
    await tb.waitFor(() => fs.existsSync(reached), { ...DEADLINE, what: 'the restore to reach its pre_start hook' });
    await run.stop('SIGKILL');
    tb.writeFile(go, ''); // lets the orphaned hook end
    assert.equal(await state(tb, data), snapshotState, 'killed with the snapshot in place');
    assert.ok(fs.existsSync(journal(tb)), 'the journal is left');
    assert.ok(fs.existsSync(path.join(tb.stateHome, 'zoopa', 'backup', 'restore', 'vault.json')), 'the moves are recorded');

    delete cfg.stacks.vault.backup.hooks.pre_start;
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
    const r = await ok(zoopa(tb, ['repair']), 'repair');
    assert.match(r.stdout, /repaired: vault/);
    assert.equal(await state(tb, data), current, 'the previous data is back');
    assert.deepEqual(await runningContainers(tb, 'vault'), ['vault_app_1'], 'running again');
    assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('data.zoopa-failed-restore-')).length, failedBefore + 1, 'the restored copy kept');
    assert.equal(fs.existsSync(journal(tb)), false);
    assert.equal(fs.existsSync(path.join(tb.stateHome, 'zoopa', 'backup', 'restore', 'vault.json')), false);
  });
});
