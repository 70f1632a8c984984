/**
 * Proves the test bed itself: a real systemd user manager (file-based, transient and
 * socket-activated units, output in the manager log), rootless podman-compose with the
 * local image answering HTTP, nginx in front of a unix socket and of a container, rootful
 * podman through a scoped sudo rule, and a clean stop.
 *
 *   npm run build && node scripts/run-tests.mjs testbed
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { httpStack, twoServiceStack, writeZoopaYaml } from '../fixtures/stacks.js';
import { run } from '../../src/exec.js';
import { freePort, httpGet, IMAGE, requireRoot, Testbed, useTestbed } from '../testbed/index.js';
import { subtreePids } from '../testbed/cgroup.js';
import { CONTAINERS_CONF } from '../testbed/podman.js';
import { missingNetworkHelpers, probePublishedPort } from '../../src/podman/probe.js';

const isRoot = process.getuid?.() === 0;


describe('testbed', () => {
  const bed = useTestbed({ name: 'selftest' });

  it('runs a systemd user manager as the test user', async () => {
    const tb = bed();
    const state = await tb.systemctl(['is-system-running']);
    assert.match(state.stdout.trim(), /^(running|degraded)$/, `state: ${state.stdout}${state.stderr}`);
    const id = await tb.run(['id', '-u']);
    assert.equal(id.stdout.trim(), String(tb.uid));
    if (isRoot) assert.notEqual(tb.uid, 0);
    const st = fs.statSync(tb.runtimeDir);
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, tb.uid);
    // The manager's environment carries what units need.
    const env = await tb.systemctl(['show-environment']);
    assert.match(env.stdout, new RegExp(`^CONTAINERS_CONF=${tb.containersConf}$`, 'm'));
    assert.match(env.stdout, /^PATH=.*\/usr\/sbin/m);
  });

  it('runs a file-based service whose output reaches the manager log', async () => {
    const tb = bed();
    tb.writeFile(
      path.join(tb.configHome, 'systemd', 'user', 'tb-hello.service'),
      [
        '[Unit]',
        'Description=test bed hello',
        '[Service]',
        'Type=oneshot',
        'ExecStart=/bin/sh -c \'echo "tb-hello home=%h runtime=%t conf=$CONTAINERS_CONF"\'',
        '',
      ].join('\n'),
    );
    const reload = await tb.systemctl(['daemon-reload']);
    assert.equal(reload.status, 0, reload.stderr);
    const start = await tb.systemctl(['start', 'tb-hello.service']);
    assert.equal(start.status, 0, start.stderr);
    const line = await tb.waitFor(() => tb.managerLog().split('\n').find((l) => l.startsWith('tb-hello ')), {
      what: 'tb-hello output in the manager log',
    });
    assert.equal(line, `tb-hello home=${tb.home} runtime=${tb.runtimeDir} conf=${tb.containersConf}`);
  });

  it('runs a transient service (systemd-run --user)', async () => {
    const tb = bed();
    const r = await tb.run(['systemd-run', '--user', '--wait', '--collect', '--quiet', '/bin/echo', 'tb-transient-ok']);
    assert.equal(r.status, 0, r.stderr);
    await tb.waitFor(() => tb.managerLog().includes('tb-transient-ok'), { what: 'transient output in the manager log' });
  });

  it('passes a listening socket to a service (socket activation)', async () => {
    const tb = bed();
    const unitDir = path.join(tb.configHome, 'systemd', 'user');
    const script = tb.writeFile(
      path.join(tb.home, 'activated.js'),
      "require('node:net').createServer((c) => c.end(`activated fds=${process.env.LISTEN_FDS} names=${process.env.LISTEN_FDNAMES}\\n`)).listen({ fd: 3 });\n",
    );
    tb.writeFile(path.join(unitDir, 'tb-echo.socket'), '[Socket]\nListenStream=%t/tb-echo.sock\n');
    tb.writeFile(path.join(unitDir, 'tb-echo.service'), `[Service]\nExecStart=${process.execPath} ${script}\n`);
    assert.equal((await tb.systemctl(['daemon-reload'])).status, 0);
    const started = await tb.systemctl(['start', 'tb-echo.socket']);
    assert.equal(started.status, 0, started.stderr);
    assert.equal((await tb.systemctl(['is-active', 'tb-echo.service'])).stdout.trim(), 'inactive');
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(path.join(tb.runtimeDir, 'tb-echo.sock'));
      let text = '';
      sock.on('data', (b) => (text += b.toString()));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    assert.equal(reply, 'activated fds=1 names=tb-echo.socket\n');
    assert.equal((await tb.systemctl(['is-active', 'tb-echo.service'])).stdout.trim(), 'active');
    await tb.systemctl(['stop', 'tb-echo.socket', 'tb-echo.service']);
  });

  it('runs rootless containers attached and detached', async () => {
    const tb = bed();
    // podman refuses a runroot over 50 characters in the exit command conmon runs, and then
    // attached runs and \`podman wait\` hang until a 20 s conmon timeout: keep %t short.
    const info = await tb.podman(['info', '--format', '{{.Store.RunRoot}}']);
    assert.equal(info.stdout.trim(), path.join(tb.runtimeDir, 'containers'));
    assert.ok(info.stdout.trim().length <= 50, `runroot ${info.stdout.trim()} is longer than 50 characters`);
    const r = await tb.podman(['run', '--rm', IMAGE, 'sh', '-c', 'echo attached-ok; id -u']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'attached-ok\n0\n');
    const d = await tb.podman(['run', '-d', '--name', 'tb-detached', IMAGE, 'sh', '-c', 'exit 7']);
    assert.equal(d.status, 0, d.stderr);
    const w = await tb.podman(['wait', 'tb-detached']);
    assert.equal(w.stdout.trim(), '7');
    assert.equal((await tb.podman(['rm', 'tb-detached'])).status, 0);
  });

  it('brings a compose stack up with rootless podman and down again', async () => {
    const tb = bed();
    const web = httpStack(tb.root, 'web', { port: await freePort(), body: 'tb web ok' });
    assert.equal(fs.statSync(web.composeFile).uid, tb.uid);
    const up = await tb.compose(web.dir, ['-p', web.name, 'up', '-d'], { timeoutMs: 180_000 });
    assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
    const res = await tb.waitFor(() => httpGet(web.url), { timeoutMs: 60_000, what: `${web.url} to answer` });
    assert.equal(res.status, 200);
    assert.equal(res.body, web.expectBody);

    // Rootless: the container's processes run as the test user, not root.
    const top = await tb.podman(['top', 'web_web_1', 'huser']);
    assert.match(top.stdout, new RegExp(`\\b(${tb.user}|${tb.uid})\\b`), top.stdout + top.stderr);

    // nginx in front of the container's published port.
    const front = await tb.startNginx([{ path: '/', upstream: `127.0.0.1:${web.port}` }]);
    const viaNginx = await httpGet(`${front.url}/`);
    assert.equal(viaNginx.status, 200);
    assert.equal(viaNginx.body, web.expectBody);
    await front.stop();

    const down = await tb.compose(web.dir, ['-p', web.name, 'down'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, `${down.stdout}\n${down.stderr}`);
    const ps = await tb.podman(['ps', '-a', '--filter', `label=io.podman.compose.project=${web.name}`, '--format', '{{.Names}}']);
    assert.equal(ps.status, 0, ps.stderr);
    assert.equal(ps.stdout.trim(), '');
  });

  it('podman-compose 1.0.3 exits 0 for an image that does not exist, and creates no container for that service', async () => {
    // What src/stacks/verify.ts relies on: podman-compose's exit status says nothing, the
    // containers do. (It tries to pull; no registry answers; `podman run` exits 125.)
    const tb = bed();
    const dir = path.join(tb.root, 'missing');
    tb.writeFile(path.join(dir, 'compose.yaml'), 'services:\n  app:\n    image: localhost/zoopa-no-such-image:1\n    stop_signal: SIGKILL\n  ok:\n    image: ' + IMAGE + '\n    command: ["sleep", "1000"]\n    stop_signal: SIGKILL\n');
    const up = await tb.compose(dir, ['-p', 'missing', 'up', '-d'], { timeoutMs: 180_000 });
    assert.equal(up.status, 0, 'podman-compose still exits 0');
    assert.match(up.stdout + up.stderr, /exit code: 125/);
    const ps = await tb.podman(['ps', '-a', '--format', '{{.Names}}', '--filter', 'label=io.podman.compose.project=missing']);
    assert.deepEqual(ps.stdout.trim().split('\n'), ['missing_ok_1'], 'no container for the service whose image is missing');
    assert.equal((await tb.compose(dir, ['-p', 'missing', 'down'], { timeoutMs: 120_000 })).status, 0);
  });

  it('brings up a two-service stack', async () => {
    const tb = bed();
    const s = twoServiceStack(tb.root, 'pair', { port: await freePort() });
    const up = await tb.compose(s.dir, ['-p', s.name, 'up', '-d'], { timeoutMs: 180_000 });
    assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
    const names = await tb.podman(['ps', '--filter', `label=io.podman.compose.project=${s.name}`, '--format', '{{.Names}}']);
    assert.deepEqual(names.stdout.trim().split('\n').sort(), ['pair_web_1', 'pair_worker_1']);
    const res = await tb.waitFor(() => httpGet(s.url), { timeoutMs: 60_000, what: `${s.url} to answer` });
    assert.equal(res.body, s.expectBody);
    const down = await tb.compose(s.dir, ['-p', s.name, 'down'], { timeoutMs: 120_000 });
    assert.equal(down.status, 0, down.stderr);
  });

  it('puts nginx (as the test user) in front of a unix socket in the 0700 runtime dir', async () => {
    const tb = bed();
    const sock = path.join(tb.runtimeDir, 'tb-app.sock');
    const server = tb.spawn([
      process.execPath,
      '-e',
      "const p = process.argv[1]; require('node:http').createServer((q, s) => s.end('via unix ' + q.url)).listen(p);",
      sock,
    ]);
    // The file exists from bind() on; wait until the server accepts (listen()).
    const accepts = () =>
      new Promise<boolean>((resolve) => {
        const c = net.connect({ path: sock });
        c.once('connect', () => (c.destroy(), resolve(true)));
        c.once('error', () => resolve(false));
      });
    await tb.waitFor(accepts, { what: `${sock} to accept connections (server log: ${server.log()})` });
    const web = await tb.startNginx([{ path: '/', upstream: `unix:${sock}` }]);
    const res = await httpGet(`${web.url}/hello`);
    assert.equal(res.status, 200, web.errorLog());
    assert.equal(res.body, 'via unix /hello');
    assert.match(web.accessLog(), /GET \/hello/);
    await web.stop();
    await server.stop();
  });

  /**
   * A containers.conf whose netavark cannot run iptables: the real netavark, started by
   * a wrapper with an empty PATH (what a machine without the iptables package does:
   * "netavark: No such file or directory"). Other helpers are the real ones.
   */
  function brokenNetavarkConf(tb: Testbed): string {
    const dir = path.join(tb.dir, 'helpers');
    if (fs.existsSync(dir)) return path.join(tb.dir, 'containers-no-iptables.conf');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync('/usr/lib/podman')) if (f !== 'netavark') fs.symlinkSync(path.join('/usr/lib/podman', f), path.join(dir, f));
    tb.writeFile(path.join(dir, 'netavark'), '#!/bin/sh\nPATH=/nonexistent exec /usr/lib/podman/netavark "$@"\n', 0o755);
    return tb.writeFile(
      path.join(tb.dir, 'containers-no-iptables.conf'),
      CONTAINERS_CONF.replace('[engine]', `[engine]\nhelper_binaries_dir = ["${dir}"]`) + '\n[network]\nnetwork_backend = "netavark"\n',
    );
  }

  it('proves a published port (the capability prereqs and doctor check) and names iptables when netavark cannot run it', async () => {
    const tb = bed();
    const run = (env: Record<string, string>) => (argv: readonly string[], o: { timeoutMs?: number }) =>
      tb.run(argv, { timeoutMs: o.timeoutMs ?? 30_000, reject: false, env });
    const ok = await probePublishedPort({ podman: ['podman'], env: tb.env, image: IMAGE, run: run({}) });
    assert.ok(ok.ok, `${ok.detail} / ${ok.fix}`);
    const env = { ...tb.env, CONTAINERS_CONF: brokenNetavarkConf(tb) };
    const bad = await probePublishedPort({ podman: ['podman'], env, image: IMAGE, run: run(env) });
    assert.equal(bad.ok, false);
    assert.match(bad.detail, /netavark: No such file or directory.*missing: iptables/);
    assert.match(bad.fix ?? '', /iptables/);
    // Nothing of the probe is left behind.
    const nets = await tb.run(['podman', 'network', 'ls', '--format', '{{.Name}}'], { env });
    assert.doesNotMatch(nets.stdout, /zoopa-probe/);
    assert.deepEqual(missingNetworkHelpers('netavark', { PATH: '/nonexistent' }), []); // found in /usr/sbin
  });

  it('zoopa doctor proves a published port with a throwaway image, and names the cause with the fix when it fails', async () => {
    const tb = bed();
    const check = async (env: Record<string, string>) => {
      const r = await tb.zoopa(['--root', tb.root, 'doctor', '--json'], { env });
      const c = (JSON.parse(r.stdout) as Array<{ check: string; verdict: string; detail: string; fix?: string }>).find((x) => x.check === 'podman published port');
      assert.ok(c, r.stdout + r.stderr);
      return c;
    };
    const good = await check({});
    assert.equal(good.verdict, 'ok', JSON.stringify(good));
    assert.match(good.detail, /answered HTTP on published port .*network backend netavark/);
    const bad = await check({ CONTAINERS_CONF: brokenNetavarkConf(tb) });
    assert.equal(bad.verdict, 'fail', JSON.stringify(bad));
    assert.match(bad.detail, /netavark: No such file or directory.*missing: iptables/);
    assert.match(bad.fix ?? '', /iptables/);
    // The CNI backend without its plugins: named from the backend's binaries, before any container runs.
    const cni = tb.writeFile(path.join(tb.dir, 'containers-cni.conf'), CONTAINERS_CONF + '\n[network]\nnetwork_backend = "cni"\n');
    const noPlugins = await check({ CONTAINERS_CONF: cni });
    assert.equal(noPlugins.verdict, 'fail', JSON.stringify(noPlugins));
    assert.match(noPlugins.detail, /network backend is cni, which runs .*CNI plugin bridge/);
    assert.equal(noPlugins.fix, 'sudo apt-get install -y containernetworking-plugins');
    // A bogus backend: podman itself fails, and the podman check says why.
    const bogus = tb.writeFile(path.join(tb.dir, 'containers-bogus.conf'), CONTAINERS_CONF + '\n[network]\nnetwork_backend = "bogus"\n');
    const r = await tb.zoopa(['--root', tb.root, 'doctor', '--json'], { env: { CONTAINERS_CONF: bogus } });
    const podmanCheck = (JSON.parse(r.stdout) as Array<{ check: string; verdict: string; detail: string }>).find((x) => x.check === 'podman');
    assert.equal(podmanCheck?.verdict, 'fail');
    assert.match(podmanCheck?.detail ?? '', /unsupported network backend "bogus"/);
    // The throwaway image is gone again.
    const images = await tb.podman(['images', '--format', '{{.Repository}}']);
    assert.doesNotMatch(images.stdout, /zoopa-doctor-probe/);
  });

  it('runs the built app as the test user from a readable copy', async () => {
    const tb = bed();
    assert.ok(fs.existsSync(path.join(tb.appDir, 'bin', 'zoopa.js')));
    const r = await tb.zoopa(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /zoopa/i);
    writeZoopaYaml(tb.root, { stacks: {} });
    assert.equal(fs.statSync(path.join(tb.root, 'zoopa.yaml')).uid, tb.uid);
  });

  it('supports rootful podman-compose through a scoped sudo rule', async () => {
    requireRoot('rootful podman, sudoers');
    const tb = bed();
    await tb.importImageRootful();
    await tb.allowSudo(['/usr/bin/podman-compose']);
    const rootful = httpStack(tb.root, 'rootfulweb', { port: await freePort() });
    const up = await tb.run(['sudo', '-n', '/usr/bin/podman-compose', '-p', rootful.name, 'up', '-d'], {
      cwd: rootful.dir,
      timeoutMs: 180_000,
    });
    assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
    const res = await tb.waitFor(() => httpGet(rootful.url), { timeoutMs: 60_000, what: `${rootful.url} to answer` });
    assert.equal(res.body, rootful.expectBody);
    const ps = await tb.podmanRootful(['ps', '--filter', `label=io.podman.compose.project=${rootful.name}`, '--format', '{{.Names}}']);
    assert.equal(ps.stdout.trim(), 'rootfulweb_web_1');
    // Not in the user's rootless storage.
    const mine = await tb.podman(['ps', '-a', '--format', '{{.Names}}']);
    assert.doesNotMatch(mine.stdout, /rootfulweb/);
    // The rule is scoped: other commands are refused.
    const other = await tb.run(['sudo', '-n', '/usr/bin/id']);
    assert.notEqual(other.status, 0);
    // Left running on purpose: the suite's after() hook (tb.stop) removes it.
  });
});

describe('testbed stop', () => {
  it('stops everything it started and removes its traces, idempotently', async (t) => {
    const tb = await Testbed.start({ name: 'stopper' });
    let stopped = false;
    t.after(() => (stopped ? undefined : tb.stop()));
    const spawned = tb.spawn(['sleep', '1000']);
    const unit = await tb.run(['systemd-run', '--user', '--unit', 'tb-sleeper', 'sleep', '1000']);
    assert.equal(unit.status, 0, unit.stderr);
    const web = httpStack(tb.root, 'leftover', { port: await freePort() });
    const up = await tb.compose(web.dir, ['-p', web.name, 'up', '-d'], { timeoutMs: 180_000 });
    assert.equal(up.status, 0, up.stderr);
    let sudoFile: string | undefined;
    if (isRoot) {
      await tb.importImageRootful();
      await tb.allowSudo(['/usr/bin/podman-compose']);
      sudoFile = fs.readdirSync('/etc/sudoers.d').find((f) => f.startsWith(`zoopa-testbed-${tb.user}-`) && f.endsWith(`-${tb.id}`));
      assert.ok(sudoFile, 'sudoers rule written');
      const rootful = httpStack(tb.root, 'rootfulleft', { port: await freePort() });
      const r = await tb.run(['sudo', '-n', '/usr/bin/podman-compose', '-p', rootful.name, 'up', '-d'], { cwd: rootful.dir, timeoutMs: 180_000 });
      assert.equal(r.status, 0, r.stderr);
    }
    const cgroupDir = (tb as unknown as { cgroup?: { dir: string } }).cgroup?.dir;

    await tb.stop();
    stopped = true;
    await tb.stop(); // idempotent

    assert.equal(fs.existsSync(tb.dir), false, 'test bed folder removed');
    const exited = await Promise.race([spawned.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
    assert.equal(exited, true, 'spawned process ended');
    if (cgroupDir) {
      assert.deepEqual(subtreePids(cgroupDir), []);
      assert.equal(fs.existsSync(cgroupDir), false, 'cgroup removed');
    }
    if (isRoot) {
      assert.equal(fs.existsSync(path.join('/etc/sudoers.d', sudoFile!)), false, 'sudoers rule removed');
      const conf = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tb-conf-')), 'containers.conf');
      fs.writeFileSync(conf, CONTAINERS_CONF);
      const ps = await run(['podman', 'ps', '-a', '--filter', 'label=io.podman.compose.project=rootfulleft', '--format', '{{.Names}}'], {
        env: { ...process.env, CONTAINERS_CONF: conf },
      });
      fs.rmSync(path.dirname(conf), { recursive: true, force: true });
      assert.equal(ps.stdout.trim(), '', 'rootful container removed');
    }
    await assert.rejects(() => tb.run(['true']), /stopped/);
  });
});
