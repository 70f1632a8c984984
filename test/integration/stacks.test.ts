/**
 * Stacks become systemd user units (issue 2), on a real systemd user manager with
 * rootless podman-compose: render, verify, install, up, status, down, idempotence,
 * uninstall, a rootful stack through a scoped sudo rule, and bad input that leaves
 * systemd untouched.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { httpStack, twoServiceStack, writeZoopaYaml, type StackFixture } from '../fixtures/stacks.js';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { run } from '../../src/exec.js';
import { freePort, httpGet, IMAGE, requireRoot, useTestbed, type Testbed } from '../testbed/index.js';

interface StatusJson {
  stacks: Array<{ name: string; state: string; installed: boolean; rootful: boolean; containers: { running: number } | null }>;
}

async function status(tb: Testbed): Promise<Map<string, StatusJson['stacks'][number]>> {
  const r = await tb.zoopa(['--root', tb.root, 'status', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return new Map((JSON.parse(r.stdout) as StatusJson).stacks.map((s) => [s.name, s]));
}

async function projectContainers(tb: Testbed, project: string, rootful = false): Promise<string[]> {
  const args = ['ps', '--format', '{{.Names}}', '--filter', `label=io.podman.compose.project=${project}`];
  const r = rootful ? await tb.podmanRootful(args) : await tb.podman(args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

function unitDir(tb: Testbed): string {
  return path.join(tb.configHome, 'systemd', 'user');
}

function listing(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

describe('stacks as systemd user units', () => {
  const bed = useTestbed({ name: 'stacks' });
  let web: StackFixture;
  let slow: StackFixture;
  let pair: StackFixture;

  it('renders three stacks that pass systemd-analyze verify with empty output', async () => {
    const tb = bed();
    web = httpStack(tb.root, 'web', { port: await freePort() });
    slow = httpStack(tb.root, 'slow', { port: await freePort(), startDelaySec: 3 });
    pair = twoServiceStack(tb.root, 'pair', { port: await freePort() });
    const r = await tb.zoopa(['--root', tb.root, 'render']);
    assert.equal(r.status, 0, r.stderr);
    const dir = path.join(tb.root, 'systemd');
    const units = listing(dir).filter((f) => f.endsWith('-stack.service'));
    assert.deepEqual(units, ['pair-stack.service', 'slow-stack.service', 'web-stack.service']);
    const v = await tb.run(['systemd-analyze', '--user', 'verify', ...listing(dir).map((f) => path.join(dir, f))]);
    assert.equal(v.stdout + v.stderr, '', 'verify prints nothing');
    assert.equal(v.status, 0);
  });

  it('installs into the user manager; a second install does nothing', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\+ web-stack\.service/);
    const show = await tb.systemctl(['show', '--property=LoadState,ActiveState', 'web-stack.service', 'slow-stack.service', 'pair-stack.service']);
    assert.equal(show.stdout.match(/LoadState=loaded/g)?.length, 3, show.stdout);
    const before = listing(unitDir(tb)).map((f) => `${f} -> ${fs.readlinkSync(path.join(unitDir(tb), f))}`);
    const again = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    assert.deepEqual(listing(unitDir(tb)).map((f) => `${f} -> ${fs.readlinkSync(path.join(unitDir(tb), f))}`), before);
  });

  it('zoopa up web brings containers up that answer HTTP; status reports it', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'up', 'web']);
    assert.equal(r.status, 0, r.stderr);
    const res = await tb.waitFor(async () => httpGet(web.url).catch(() => undefined), { what: 'web answers HTTP', timeoutMs: 60_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body, web.expectBody);
    assert.equal((await projectContainers(tb, 'web')).length, 1);
    const s = await status(tb);
    assert.equal(s.get('web')?.state, 'active');
    assert.equal(s.get('web')?.containers?.running, 1);
    assert.equal(s.get('slow')?.state, 'inactive');
    assert.equal(s.get('slow')?.containers?.running, 0);
  });

  it('a two-service stack runs both services', async () => {
    const tb = bed();
    assert.equal((await tb.zoopa(['--root', tb.root, 'up', 'pair-stack.service'])).status, 0);
    assert.equal((await projectContainers(tb, 'pair')).length, pair.services.length);
    assert.equal((await status(tb)).get('pair')?.containers?.running, pair.services.length);
    assert.equal((await tb.zoopa(['--root', tb.root, 'down', 'pair'])).status, 0);
  });

  it('zoopa down web leaves no container running; status reports it', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'down', 'web']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await projectContainers(tb, 'web'), []);
    const s = await status(tb);
    assert.equal(s.get('web')?.state, 'inactive');
    assert.equal(s.get('web')?.containers?.running, 0);
  });

  it('bad input leaves files and systemd untouched', async () => {
    const tb = bed();
    const yaml = path.join(tb.root, 'zoopa.yaml');
    writeZoopaYaml(tb.root, { stacks: { web: { stop_timeout: 30, rootfull: true } } });
    const units = listing(unitDir(tb));
    const rendered = fs.readFileSync(path.join(tb.root, 'systemd', 'web-stack.service'), 'utf8');
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /zoopa\.yaml: line \d+: stacks\.web\.rootfull: unknown key/);
    assert.deepEqual(listing(unitDir(tb)), units);
    assert.equal(fs.readFileSync(path.join(tb.root, 'systemd', 'web-stack.service'), 'utf8'), rendered);
    const show = await tb.systemctl(['show', '--property=NeedDaemonReload', 'web-stack.service']);
    assert.match(show.stdout, /NeedDaemonReload=no/);
    fs.rmSync(yaml);
  });

  it('uninstall removes exactly what zoopa installed and leaves a unit it did not write', async () => {
    const tb = bed();
    const mine = path.join(unitDir(tb), 'mine.service');
    tb.writeFile(mine, '[Service]\nType=oneshot\nExecStart=/bin/true\n');
    const r = await tb.zoopa(['--root', tb.root, 'uninstall']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(listing(unitDir(tb)), ['mine.service']);
    assert.ok(fs.existsSync(mine));
    const show = await tb.systemctl(['show', '--property=LoadState', 'web-stack.service']);
    assert.match(show.stdout, /LoadState=not-found/);
  });
});

describe('a rootful stack', () => {
  const bed = useTestbed({ name: 'rootful' });

  it('renders the sudo form and runs under exactly the rule zoopa sudoers prints', async () => {
    const tb = bed();
    const dup = httpStack(tb.root, 'duplicati', { port: await freePort() });
    writeZoopaYaml(tb.root, { stacks: { duplicati: { rootful: true } } });
    await tb.importImageRootful();
    const rule = await tb.zoopa(['--root', tb.root, 'sudoers', '--user', tb.user]);
    assert.equal(rule.status, 0, rule.stderr);
    await tb.installSudoers(rule.stdout);
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 0, r.stderr);
    const unit = fs.readFileSync(path.join(tb.root, 'systemd', 'duplicati-stack.service'), 'utf8');
    const file = dup.composeFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    assert.match(unit, new RegExp(`^ExecStart=/usr/bin/sudo -n /usr/bin/podman-compose -p duplicati -f ${file} up -d$`, 'm'));
    assert.match(unit, new RegExp(`^ExecStop=/usr/bin/sudo -n /usr/bin/podman-compose -p duplicati -f ${file} down$`, 'm'));
    const up = await tb.zoopa(['--root', tb.root, 'up', 'duplicati']);
    assert.equal(up.status, 0, `${up.stderr}\n${tb.managerLog().slice(-2000)}`);
    assert.equal((await projectContainers(tb, 'duplicati', true)).length, 1, 'runs in root podman');
    assert.deepEqual(await projectContainers(tb, 'duplicati'), [], 'not in the user podman');
    const res = await tb.waitFor(async () => httpGet(dup.url).catch(() => undefined), { what: 'rootful stack answers', timeoutMs: 60_000 });
    assert.equal(res.body, dup.expectBody);
    const s = await status(tb);
    assert.equal(s.get('duplicati')?.rootful, true);
    assert.equal(s.get('duplicati')?.containers?.running, 1);
    const doctor = await tb.zoopa(['--root', tb.root, 'doctor', '--json']);
    const sudoCheck = (JSON.parse(doctor.stdout) as Array<{ check: string; verdict: string }>).find((c) => c.check.startsWith('sudo rule'));
    assert.equal(sudoCheck?.verdict, 'ok', doctor.stdout);
    assert.equal((await tb.zoopa(['--root', tb.root, 'down', 'duplicati'])).status, 0);
    assert.deepEqual(await projectContainers(tb, 'duplicati', true), []);
  });
});

/**
 * podman-compose 1.0.3 exits 0 when a container cannot be created (a missing image: it
 * tries to pull, `podman run` exits 125, no container exists for that service) or exits
 * at once: the unit's ExecStartPost= check (zoopa check-stack) fails the start instead.
 */
describe('a stack whose containers do not run', () => {
  const bed = useTestbed({ name: 'notrunning' });
  const MISSING = 'localhost/zoopa-missing:1';

  function writeCompose(tb: Testbed, name: string, services: Record<string, unknown>): void {
    tb.writeFile(path.join(tb.root, name, 'compose.yaml'), YAML.stringify({ services }));
  }

  it('zoopa up and systemctl start fail, naming the missing image and the exited container with its exit code and last log lines', async () => {
    const tb = bed();
    writeCompose(tb, 'noimage', {
      app: { image: MISSING, command: ['sleep', '1000'], stop_signal: 'SIGKILL' },
      ok: { image: IMAGE, command: ['sleep', '1000'], stop_signal: 'SIGKILL', healthcheck: { test: ['CMD', 'true'], interval: '2s' } },
    });
    writeCompose(tb, 'crash', {
      crash: { image: IMAGE, command: ['sh', '-c', 'echo boom-before-exit; exit 3'], stop_signal: 'SIGKILL' },
    });
    writeZoopaYaml(tb.root, { stacks: { noimage: { start_timeout: 60 }, crash: { start_timeout: 60 } } });
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    const unit = fs.readFileSync(path.join(tb.root, 'systemd', 'noimage-stack.service'), 'utf8');
    assert.match(unit, /^ExecStartPost=\S+ \S+zoopa\.js check-stack noimage --file compose\.yaml --timeout 60 --compose \S+podman-compose$/m);

    const up = await tb.zoopa(['--root', tb.root, 'up', 'noimage'], { timeoutMs: 150_000 });
    assert.notEqual(up.status, 0, 'zoopa up fails');
    assert.match(up.stderr, /noimage-stack\.service failed: 1 container\(s\) of noimage do not run/);
    assert.match(up.stderr, /service app \(image localhost\/zoopa-missing:1, state missing\): no container/);
    assert.doesNotMatch(up.stderr, /noimage_ok_1/, 'the healthy service is not named');
    assert.equal((await tb.systemctl(['is-failed', 'noimage-stack.service'])).stdout.trim(), 'failed');
    // The failed start removed what it had started: nothing keeps running, the next start is a fresh up.
    assert.equal((await tb.podman(['ps', '-a', '-q', '--filter', 'label=io.podman.compose.project=noimage'])).stdout.trim(), '');
    assert.match(tb.managerLog(), /check-stack noimage: 1 of 2 service\(s\) not running:\n.*service app \(image localhost\/zoopa-missing:1, state missing\)/);

    const start = await tb.systemctl(['start', 'crash-stack.service'], { timeoutMs: 150_000 });
    assert.notEqual(start.status, 0, 'systemctl --user start fails');
    const log = tb.managerLog();
    assert.match(log, /crash_crash_1 \(service crash, image localhost\/zoopa-busybox:latest, state exited\): exited with code 3/);
    assert.match(log, /last log lines:\n\s+boom-before-exit/);
    const up2 = await tb.zoopa(['--root', tb.root, 'up', 'crash'], { timeoutMs: 150_000 });
    assert.match(up2.stderr, /crash_crash_1 .*exited with code 3\n\s+last log lines:\n\s+boom-before-exit/);
  });

  it('once the image exists, zoopa up starts the stack, waiting for the health check', async () => {
    const tb = bed();
    // UnitManager.resetFailed: the failed state goes (and an unknown unit is no error).
    const systemctlJs = path.join(tb.appDir, 'dist', 'src', 'systemd', 'systemctl.js');
    const reset = await tb.run([
      process.execPath,
      '--input-type=module',
      '-e',
      `const { SystemctlUserManager } = await import(${JSON.stringify(systemctlJs)}); const u = new SystemctlUserManager(); await u.resetFailed('noimage-stack.service'); await u.resetFailed('no-such-unit.service');`,
    ]);
    assert.equal(reset.status, 0, reset.stderr);
    assert.equal((await tb.systemctl(['is-failed', 'noimage-stack.service'])).stdout.trim(), 'inactive');
    const tag = await tb.podman(['tag', IMAGE, MISSING]);
    assert.equal(tag.status, 0, tag.stderr);
    const up = await tb.zoopa(['--root', tb.root, 'up', 'noimage'], { timeoutMs: 150_000 });
    assert.equal(up.status, 0, `${up.stderr}\n${tb.managerLog().slice(-2000)}`);
    assert.equal((await tb.systemctl(['is-active', 'noimage-stack.service'])).stdout.trim(), 'active');
    const ps = await tb.podman(['ps', '--format', '{{.Names}} {{.Status}}', '--filter', 'label=io.podman.compose.project=noimage']);
    assert.match(ps.stdout, /noimage_ok_1 .*\(healthy\)/);
    assert.match(ps.stdout, /noimage_app_1 Up/);
    assert.equal((await tb.zoopa(['--root', tb.root, 'down', 'noimage'])).status, 0);
  });
});

describe('a rootful stack that cannot start, under exactly the rule zoopa sudoers prints', () => {
  const bed = useTestbed({ name: 'rootfulfail' });

  it('zoopa up fails naming the missing image; the check lists root\'s containers and removes them with the allowed argvs only', async () => {
    requireRoot('rootful podman, sudoers');
    const tb = bed();
    tb.writeFile(
      path.join(tb.root, 'rf', 'compose.yaml'),
      YAML.stringify({
        services: {
          app: { image: 'localhost/zoopa-missing-rootful:1', command: ['sleep', '1000'], stop_signal: 'SIGKILL' },
          ok: { image: IMAGE, command: ['sleep', '1000'], stop_signal: 'SIGKILL' },
        },
      }),
    );
    writeZoopaYaml(tb.root, { stacks: { rf: { rootful: true, start_timeout: 60 } } });
    await tb.importImageRootful();
    const rule = await tb.zoopa(['--root', tb.root, 'sudoers', '--user', tb.user]);
    assert.equal(rule.status, 0, rule.stderr);
    await tb.installSudoers(rule.stdout);
    assert.equal((await tb.zoopa(['--root', tb.root, 'install'])).status, 0);
    const up = await tb.zoopa(['--root', tb.root, 'up', 'rf'], { timeoutMs: 150_000 });
    assert.notEqual(up.status, 0);
    assert.match(up.stderr, /rf-stack\.service failed: 1 container\(s\) of rf do not run:\n.*service app \(image localhost\/zoopa-missing-rootful:1, state missing\)/);
    const log = tb.managerLog();
    assert.match(log, /check-stack rf: removing its containers again/);
    assert.doesNotMatch(log, /check-stack rf: .* failed|password is required|not allowed/, 'every sudo -n call was allowed');
    const left = await tb.podmanRootful(['ps', '-a', '--format', '{{.Names}}', '--filter', 'label=io.podman.compose.project=rf']);
    assert.equal(left.stdout.trim(), '', 'root\'s containers of the failed start are gone');
  });
});

describe('the demo', () => {
  it('npm run demo with an image that does not exist fails with the named cause, not a gateway error', async () => {
    const demo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'demo.js');
    const r = await run([process.execPath, demo, '--image', 'localhost/zoopa-demo-missing:1'], { reject: false, timeoutMs: 180_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    // Whether the proxy answers first (502) or the demo sees the failed unit first, the cause is named.
    assert.match(r.stderr, /demo failed: .*web-stack\.service failed to start.*its containers do not run:\n- service app \(image localhost\/zoopa-demo-missing:1, state missing\)/);
  });
});

describe('env files', () => {
  const bed = useTestbed({ name: 'envfiles', manager: false, image: false });

  it('env init copies .env.example once (0600) and env check reports what is missing', async () => {
    const tb = bed();
    const app = httpStack(tb.root, 'app', { port: 18999, dotenvExample: { DB_PASSWORD: 'change-me', MODE: 'prod' } });
    const yaml = 'x-vars: "${DB_PASSWORD} ${NOT_DEFINED} ${WITH_DEFAULT:-x} $$ESCAPED"\n' + fs.readFileSync(app.composeFile, 'utf8');
    fs.writeFileSync(app.composeFile, yaml);
    const check1 = await tb.zoopa(['--root', tb.root, 'env', 'check', '--json']);
    assert.equal(check1.status, 1);
    const c1 = (JSON.parse(check1.stdout) as Array<{ undefinedVars: string[]; missingFromEnv: string[]; defaulted: string[] }>)[0]!;
    assert.deepEqual(c1.undefinedVars, ['NOT_DEFINED']);
    assert.deepEqual(c1.defaulted, ['WITH_DEFAULT']);
    assert.deepEqual(c1.missingFromEnv, ['DB_PASSWORD', 'MODE']);
    const init = await tb.zoopa(['--root', tb.root, 'env', 'init', 'app']);
    assert.equal(init.status, 0, init.stderr);
    const envFile = path.join(app.dir, '.env');
    assert.equal(fs.statSync(envFile).mode & 0o777, 0o600);
    fs.appendFileSync(envFile, 'MINE=1\n');
    await tb.zoopa(['--root', tb.root, 'env', 'init', '--all']);
    assert.match(fs.readFileSync(envFile, 'utf8'), /MINE=1/, 'never overwritten');
    const check2 = await tb.zoopa(['--root', tb.root, 'env', 'check', '--json']);
    const c2 = (JSON.parse(check2.stdout) as Array<{ undefinedVars: string[]; missingFromEnv: string[] }>)[0]!;
    assert.deepEqual(c2.missingFromEnv, []);
    assert.deepEqual(c2.undefinedVars, ['NOT_DEFINED']);
  });

  it('doctor names the sudo commands Duplicati backups need when sudo refuses them, with the command that writes the rule', async () => {
    const tb = bed();
    httpStack(tb.root, 'cloud', { port: 18998 });
    writeZoopaYaml(tb.root, { stacks: { cloud: { backup: { jobs: ['cloud'] } } } });
    const r = await tb.zoopa(['--root', tb.root, 'doctor', '--json']);
    const check = (JSON.parse(r.stdout) as Array<{ check: string; verdict: string; fix?: string }>).find((c) => c.check === 'sudo rule (Duplicati)') as { check: string; verdict: string; detail: string; fix?: string } | undefined;
    assert.equal(check?.verdict, 'fail', r.stdout);
    assert.match(check?.detail ?? '', /\/usr\/bin\/podman exec duplicati duplicati-server-util list-backups --detailed/);
    assert.match(check?.fix ?? '', new RegExp(`\\(${tb.user}\\): zoopa sudoers > zoopa\\.sudoers && sudo visudo -c -f zoopa\\.sudoers && sudo install -m 0440 -o root -g root zoopa\\.sudoers /etc/sudoers\\.d/zoopa$`));
  });
});
