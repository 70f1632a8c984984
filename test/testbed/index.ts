/**
 * Zoopa's test bed: real systemd user managers, real rootless podman + podman-compose
 * with a locally built image, real nginx, all as an unprivileged user, all cleaned up.
 * Used by the integration tests, the demo and the benches. Nothing is mocked.
 *
 * ```ts
 * import { describe, it } from 'node:test';
 * import { useTestbed, IMAGE, freePort } from '../testbed/index.js';
 *
 * describe('my feature', () => {
 *   const bed = useTestbed({ name: 'feature' });   // before(): start, after(): stop (even when tests fail)
 *   it('works', async () => {
 *     const tb = bed();
 *     const r = await tb.zoopa(['status']);
 *     ...
 *   });
 * });
 * // or per test:  const tb = await withTestbed(t);   (stopped by t.after)
 * // or by hand:   const tb = await Testbed.start(); try { ... } finally { await tb.stop(); }
 * ```
 *
 * ## Testbed (one isolated world)
 * - `Testbed.start({ name?, manager? = true, image? = true })`
 * - `tb.user`, `tb.uid`, `tb.gid`: the unprivileged user. As root: `zoopa-test` (created once
 *   with useradd, subuid/subgid ranges added). Not root: the current user.
 * - `tb.dir` (the test bed's folder), `tb.home`, `tb.configHome` (= home/.config), `tb.stateHome`,
 *   `tb.root` (a stacks root folder), `tb.containersConf`, `tb.managerLogFile`, `tb.appDir`
 *   (world-readable copy of the built app): under /var/tmp/zoopa-testbed-<pid>-<starttime>/, owned by the user.
 * - `tb.runtimeDir`: XDG_RUNTIME_DIR = the manager's %t, 0700, owned by the user, deliberately short
 *   (/run/ztb/<pid>-<id>): rootless podman rejects a runroot ($XDG_RUNTIME_DIR/containers) longer
 *   than 50 characters, and then `podman run`/`wait` hang 20 s.
 * - `tb.env`: HOME, USER, LOGNAME, LANG, PATH, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, XDG_STATE_HOME,
 *   CONTAINERS_CONF, ZOOPA_TESTBED (a marker used to find stray processes).
 * - `tb.run(argv, { env?, cwd? = tb.home, input?, timeoutMs? = 120 s, reject? = false })`: runs argv as
 *   the user (setpriv --reuid --regid --init-groups when root) → `{ status, signal, stdout, stderr }`.
 * - `tb.zoopa(args)`, `tb.systemctl(args)` (= systemctl --user), `tb.podman(args)` (rootless),
 *   `tb.compose(dir, args)` (podman-compose in dir): shorthands for tb.run.
 * - `tb.spawn(argv, { env?, cwd?, logFile? })`: a long-running process as the user → `{ pid, log(), exited, stop() }`.
 * - `tb.managerLog()`: the user manager's log (units' output lands there: DefaultStandardOutput=inherit).
 * - `tb.waitFor(fn, { timeoutMs?, intervalMs?, what })`: polls until fn returns truthy; throws naming
 *   `what` on timeout. A deadline only: never assert on durations.
 * - `tb.startNginx([{ path: '/', upstream: 'unix:/abs.sock' | '127.0.0.1:PORT', keepalive?, directives? }], { port? })`
 *   → `{ port, url, dir, errorLog(), accessLog(), stop() }`: nginx as the user, own config/pid/logs.
 * - `tb.writeFile(path, text, mode?)`, `tb.chown(path)`: files owned by the user.
 * - Rootful (test process must be root): `tb.importImageRootful()`, `tb.podmanRootful(args)`,
 *   `tb.allowSudo(['/usr/bin/podman-compose'])` (scoped NOPASSWD rule in /etc/sudoers.d, keeps
 *   CONTAINERS_CONF, validated by visudo, removed by stop()). Root's containers whose compose working
 *   dir lies in the test bed are removed by stop().
 * - `tb.stop()`: idempotent; nginx and spawned processes, `systemctl --user exit`, `podman rm -af -t 0`,
 *   kill what remains, rootful containers, sudoers rule, folders. Throws if something survives.
 *
 * ## Exports
 * `Testbed`, `useTestbed`, `withTestbed`, `freePort()`, `httpGet(url, { socketPath? })`, `waitFor()`, `sleep()`, `IMAGE`
 * ('localhost/zoopa-busybox:latest': busybox-static with applet symlinks: sh, httpd, nc, sleep, ...).
 *
 * ## What it does to the machine (root only)
 * Creates /run/systemd/system when missing, chmods /dev/net/tun 0666 (slirp4netns for the
 * test user; normal hosts have 0666), creates the user `zoopa-test`. Leftovers of killed runs
 * (processes, cgroups, folders, sudoers rules, rootful containers) are removed by the next start;
 * a process exit or SIGINT/SIGTERM kills and removes the test beds still running.
 * Each test bed's processes live in their own cgroup v2 subtree (cgroup.ts explains why).
 */
import { after, before, type TestContext } from 'node:test';
import { Testbed, type TestbedOptions } from './testbed.js';

export { Testbed } from './testbed.js';
export type { TestbedOptions, TbRunOptions, TbSpawnOptions, Spawned } from './testbed.js';
export type { Nginx, NginxLocation, NginxOptions } from './nginx.js';
export { IMAGE } from './podman.js';
export { freePort, httpGet, requireRoot, sleep, waitFor, WaitAborted, type HttpResponse, type WaitForOptions } from './util.js';

/**
 * Starts a test bed in a `before` hook of the current suite (or file) and stops it in
 * `after`, whatever the tests did. Returns an accessor for use inside tests.
 */
export function useTestbed(opts: TestbedOptions = {}): () => Testbed {
  let tb: Testbed | undefined;
  before(async () => {
    tb = await Testbed.start(opts);
  });
  after(async () => {
    await tb?.stop();
  });
  return () => {
    if (!tb) throw new Error('useTestbed: the test bed is not started (use the accessor inside a test)');
    return tb;
  };
}

/** Starts a test bed for one test; it is stopped when that test ends (t.after). */
export async function withTestbed(t: TestContext, opts: TestbedOptions = {}): Promise<Testbed> {
  const tb = await Testbed.start(opts);
  t.after(() => tb.stop());
  return tb;
}
