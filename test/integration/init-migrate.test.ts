/**
 * `zoopa init` on a working original setup, on the real test bed: the original units
 * (test/fixtures/original-setup.ts, built as the seed README describes them) run
 * nextcloud (enabled, running) and cryptpad on demand through systemd-socket-proxyd;
 * `zoopa init` writes zoopa.yaml, `zoopa install --adopt` replaces the hand-written
 * units, and nothing the user relies on changes: nextcloud keeps running (the same
 * containers) and stays enabled, cryptpad's socket keeps listening at the same path and
 * wakes it through zoopa proxy with the env file's settings.
 *
 *   npm run build && node scripts/run-tests.mjs integration/init-migrate
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { originalSetup, type OriginalSetupFixture } from '../fixtures/original-setup.js';
import { freePort, httpGet, IMAGE, useTestbed } from '../testbed/index.js';
import { socketOf, unitStates } from './ondemand-lib.js';

const DEADLINE = { timeoutMs: 180_000, intervalMs: 500 };

describe('zoopa init on a working original setup, then install --adopt', () => {
  const bed = useTestbed({ name: 'init-migrate' });
  let fx: OriginalSetupFixture;
  let ports: { cryptpad: number; cryptpadSafe: number; nextcloud: number; duplicati: number; blog: number };
  let nextcloudIds: string;

  const ids = async (project: string) => {
    const r = await bed().podman(['ps', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.ID}}', '--sort', 'names']);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const viaSocket = async () => {
    const tb = bed();
    return httpGet('http://cryptpad/', { socketPath: socketOf(tb, 'cryptpad'), timeoutMs: 170_000 }).catch((e: Error) => ({ status: 0, body: e.message }));
  };

  it('the original setup runs as its README says', async () => {
    const tb = bed();
    ports = { cryptpad: await freePort(), cryptpadSafe: await freePort(), nextcloud: await freePort(), duplicati: await freePort(), blog: await freePort() };
    fx = originalSetup(tb.home, { ports, image: IMAGE, serve: true });
    // Without the README's trailing comment: systemd-socket-proxyd cannot parse it (see ondemand-migrate.test.ts).
    fs.writeFileSync(path.join(fx.envDir, 'cryptpad.env'), `ZOOPA_UPSTREAM=127.0.0.1:${ports.cryptpad}\nZOOPA_IDLE_TIMEOUT=600\n`, { mode: 0o600 });
    for (const p of [fx.root, fx.envDir, fx.linkDir]) tb.chown(p);
    for (const args of [['daemon-reload'], ['enable', '--now', 'nextcloud-stack.service'], ['enable', '--now', 'zoopa-ondemand-dir.service', 'zoopa-ondemand@cryptpad.socket']]) {
      const r = await tb.systemctl(args, { timeoutMs: 180_000 });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    await tb.waitFor(async () => (await httpGet(`http://127.0.0.1:${ports.nextcloud}/`).catch(() => undefined))?.body === 'nextcloud app\n', { ...DEADLINE, what: 'nextcloud to answer' });
    // The original proxy connects before a slow app listens; a fast one answers after a retry at most.
    await tb.waitFor(async () => (await viaSocket()).body === 'cryptpad cryptpad\n', { ...DEADLINE, what: 'cryptpad through the original socket-proxyd' });
    nextcloudIds = await ids('nextcloud');
    assert.equal(nextcloudIds.split('\n').length, 2);
  });

  it('zoopa init writes zoopa.yaml from it; a second init changes nothing', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', fx.root, 'init']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /carried over from the original setup: .*nextcloud-stack\.service/);
    const text = fs.readFileSync(path.join(fx.root, 'zoopa.yaml'), 'utf8');
    assert.match(text, new RegExp(`ondemand:\\n {6}upstream: 127\\.0\\.0\\.1:${ports.cryptpad}\\n {6}idle: 600\\n`));
    const again = await tb.zoopa(['--root', fx.root, 'init']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /nothing to add/);
    assert.equal(fs.readFileSync(path.join(fx.root, 'zoopa.yaml'), 'utf8'), text);
    // As init says: the folder whose name cannot be a stack name is renamed by the user.
    fs.renameSync(path.join(fx.root, fx.badFolder), path.join(fx.root, fx.suggestedRename));
  });

  it('install --adopt: nextcloud keeps running with the same containers and stays enabled; cryptpad wakes through zoopa proxy', async () => {
    const tb = bed();
    const dry = await tb.zoopa(['--root', fx.root, 'install', '--dry-run', '--adopt']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /~ nextcloud-stack\.service +change, replaces hand-written/);
    const r = await tb.zoopa(['--root', fx.root, 'install', '--adopt'], { timeoutMs: 180_000 });
    assert.equal(r.status, 0, r.stderr);
    const st = await unitStates(tb, ['nextcloud-stack.service', 'zoopa-ondemand@cryptpad.socket', 'duplicati-backup.timer']);
    assert.equal(st.get('nextcloud-stack.service')!.active, 'active');
    assert.equal(st.get('nextcloud-stack.service')!.enabled, 'enabled');
    assert.equal(st.get('zoopa-ondemand@cryptpad.socket')!.active, 'active');
    assert.equal(st.get('zoopa-ondemand@cryptpad.socket')!.enabled, 'enabled');
    assert.equal(st.get('duplicati-backup.timer')!.load, 'loaded');
    assert.equal(await ids('nextcloud'), nextcloudIds, 'nextcloud was not restarted');
    assert.match(fs.readFileSync(path.join(fx.envDir, 'cryptpad.env'), 'utf8'), new RegExp(`^# Generated by zoopa[^]*\\nZOOPA_UPSTREAM=127\\.0\\.0\\.1:${ports.cryptpad}\\nZOOPA_IDLE_TIMEOUT=600\\n$`));
    // Put cryptpad to sleep the original way (its old proxy and the stack), keep the socket.
    for (const unit of ['zoopa-ondemand@cryptpad.service', 'cryptpad-stack.service']) {
      const x = await tb.systemctl(['stop', unit], { timeoutMs: 180_000 });
      assert.equal(x.status, 0, x.stderr);
    }
    const res = await viaSocket();
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, 'cryptpad cryptpad\n');
    assert.match(tb.managerLog(), /cryptpad: proxy for cryptpad-stack\.service/, 'zoopa proxy served it');
    const pid = (await unitStates(tb, ['zoopa-ondemand@cryptpad.service'])).get('zoopa-ondemand@cryptpad.service')!.mainPid;
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes(`ZOOPA_UPSTREAM=127.0.0.1:${ports.cryptpad}`) && environ.includes('ZOOPA_IDLE_TIMEOUT=600'), environ.filter((e) => e.startsWith('ZOOPA_')).join(' '));
  });

  it('clean-up: everything stops', async () => {
    const tb = bed();
    await tb.waitFor(async () => (await unitStates(tb, ['cryptpad-stack.service'])).get('cryptpad-stack.service')!.active === 'active', { ...DEADLINE, what: "cryptpad's start job to finish" });
    const r = await tb.systemctl(['stop', 'zoopa-ondemand@cryptpad.socket', 'zoopa-ondemand@cryptpad.service', 'cryptpad-stack.service', 'nextcloud-stack.service'], { timeoutMs: 180_000 });
    assert.equal(r.status, 0, r.stderr);
  });
});
