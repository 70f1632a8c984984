/**
 * Switching from the original setup to Zoopa without touching nginx or the env files.
 *
 * The original (see the seed's systemd README): hand-written units in <root>/systemd,
 * symlinked into ~/.config/systemd/user; zoopa-ondemand@.socket listening on
 * %t/ondemand/%i.sock; the service ran a bash snippet (start the stack) plus
 * systemd-socket-proxyd --exit-idle-time. Reproduced here as faithfully as the README
 * allows, then replaced with `zoopa install --adopt`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { freePort, httpGet, useTestbed, type Nginx } from '../testbed/index.js';
import { socketOf, unitStates } from './ondemand-lib.js';

const ORIGINAL_SOCKET = `[Unit]
Description=Zoopa on-demand socket for %i
Requires=zoopa-ondemand-dir.service
After=zoopa-ondemand-dir.service

[Socket]
ListenStream=%t/ondemand/%i.sock
SocketMode=0666
DirectoryMode=0711
Accept=no

[Install]
WantedBy=sockets.target
`;

const ORIGINAL_SERVICE = `[Unit]
Description=Zoopa on-demand proxy for %i
Requires=zoopa-ondemand@%i.socket
After=zoopa-ondemand@%i.socket

[Service]
Environment=ZOOPA_STACK_UNIT=%i-stack.service
Environment=ZOOPA_IDLE_TIMEOUT=600
EnvironmentFile=-%h/.config/zoopa-ondemand/%i.env
ExecStartPre=/bin/bash -c 'systemctl --user start "$ZOOPA_STACK_UNIT"'
ExecStart=/bin/bash -c 'exec /usr/lib/systemd/systemd-socket-proxyd --exit-idle-time="$ZOOPA_IDLE_TIMEOUT" "$ZOOPA_UPSTREAM"'
`;

const ORIGINAL_DIR = `[Unit]
Description=Zoopa on-demand socket directory
DefaultDependencies=no
Before=sockets.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mkdir -p %t/ondemand
ExecStart=/bin/chmod 0711 %t/ondemand

[Install]
WantedBy=sockets.target
`;

describe('on demand: switching from the original units', () => {
  const bed = useTestbed({ name: 'ondemand-migrate' });
  let web: StackFixture;
  let nginx: Nginx;
  let envText: string;

  it('the original setup works as its README says', async () => {
    const tb = bed();
    web = httpStack(tb.root, 'web', { port: await freePort() });
    const sysd = path.join(tb.root, 'systemd');
    const linkDir = path.join(tb.configHome, 'systemd', 'user');
    const stackUnit = `[Unit]\nDescription=web stack\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nWorkingDirectory=${web.dir}\nExecStart=/usr/bin/podman-compose up -d\nExecStop=/usr/bin/podman-compose down\n\n[Install]\nWantedBy=default.target\n`;
    for (const [name, text] of [
      ['zoopa-ondemand@.socket', ORIGINAL_SOCKET],
      ['zoopa-ondemand@.service', ORIGINAL_SERVICE],
      ['zoopa-ondemand-dir.service', ORIGINAL_DIR],
      ['web-stack.service', stackUnit],
    ] as const) {
      tb.writeFile(path.join(sysd, name), text);
      const ln = await tb.run(['ln', '-s', path.join(sysd, name), path.join(linkDir, name)]);
      assert.equal(ln.status, 0, ln.stderr);
    }
    // Without the README's trailing "# optional override" comment: systemd passes it on in the
    // value, and systemd-socket-proxyd --exit-idle-time cannot parse that (zoopa proxy drops it;
    // ondemand-wake.test.ts uses the README's text byte for byte).
    envText = `# web on demand\nZOOPA_UPSTREAM=127.0.0.1:${web.port}\nZOOPA_IDLE_TIMEOUT=600\n`;
    tb.writeFile(path.join(tb.home, '.config', 'zoopa-ondemand', 'web.env'), envText, 0o600);
    for (const args of [['daemon-reload'], ['enable', '--now', 'zoopa-ondemand-dir.service'], ['enable', '--now', 'zoopa-ondemand@web.socket']]) {
      const r = await tb.systemctl(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    nginx = await tb.startNginx([{ path: '/', upstream: `unix:${socketOf(tb, 'web')}` }]);
    // A fast app: the original's one weakness (slow apps) is not what this test is about.
    await tb.waitFor(async () => (await httpGet(`${nginx.url}/`).catch(() => undefined))?.status === 200, { timeoutMs: 120_000, intervalMs: 500, what: 'the original setup to answer' });
    assert.match(tb.managerLog(), /podman run --name=web_web_1/, 'the original woke the stack');
  });

  it('zoopa install refuses to replace the hand-written units without --adopt, and changes nothing', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--adopt/);
    assert.equal(fs.readFileSync(path.join(tb.root, 'systemd', 'zoopa-ondemand@.socket'), 'utf8'), ORIGINAL_SOCKET);
  });

  it('zoopa install --adopt: same unit names, same socket, same env file; the next wake goes through zoopa proxy', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'install', '--adopt']);
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['zoopa-ondemand@.socket', 'zoopa-ondemand@.service', 'zoopa-ondemand-dir.service']) {
      assert.ok(fs.existsSync(path.join(tb.root, 'systemd', `${name}.zoopa-orig`)), `${name} kept aside`);
      assert.match(fs.readFileSync(path.join(tb.configHome, 'systemd', 'user', name), 'utf8'), /^# Generated by zoopa/);
    }
    // The env file is the user's: untouched.
    assert.equal(fs.readFileSync(path.join(tb.home, '.config', 'zoopa-ondemand', 'web.env'), 'utf8'), envText);
    // Put the stack to sleep the original way (stop the old proxy and the stack), keep the socket.
    for (const args of [['stop', 'zoopa-ondemand@web.service'], ['stop', 'web-stack.service']]) {
      const x = await tb.systemctl(args);
      assert.equal(x.status, 0, x.stderr);
    }
    const st = await unitStates(tb, ['zoopa-ondemand@web.socket', 'zoopa-ondemand-dir.service']);
    assert.equal(st.get('zoopa-ondemand@web.socket')!.active, 'active', 'the socket kept listening through the switch');
    assert.equal(st.get('zoopa-ondemand@web.socket')!.enabled, 'enabled', 'and stays enabled');
    // The same nginx, not reloaded, not reconfigured.
    const res = await httpGet(`${nginx.url}/`, { timeoutMs: 110_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body, web.expectBody);
    assert.match(tb.managerLog(), /web: proxy for web-stack\.service/, 'zoopa proxy served it');
    assert.match(tb.managerLog(), /web: wake: /);
  });

  it('zoopa ondemand disable, then zoopa down: the proxy and the stack stop', async () => {
    const tb = bed();
    // The client is served as soon as the app answers; podman-compose up may still be
    // finishing. Stopping the stack unit in the middle of its start job cancels
    // `podman-compose up` and can leave `down` hanging until TimeoutStopSec (podman 4.3).
    await tb.waitFor(async () => (await unitStates(tb, ['web-stack.service'])).get('web-stack.service')!.active === 'active', {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: 'the stack start job to finish',
    });
    const d = await tb.zoopa(['--root', tb.root, 'ondemand', 'disable', 'web'], { timeoutMs: 180_000 });
    assert.equal(d.status, 0, d.stderr);
    const down = await tb.zoopa(['--root', tb.root, 'down', 'web'], { timeoutMs: 180_000 });
    assert.equal(down.status, 0, down.stderr);
    const st = await unitStates(tb, ['zoopa-ondemand@web.socket', 'zoopa-ondemand@web.service', 'web-stack.service']);
    assert.deepEqual([...st.values()].map((u) => u.active), ['inactive', 'inactive', 'inactive']);
  });
});
