/**
 * On-demand renderers, config section, settings editing and bad input.
 *
 * Rendering is case by case: each folder under test/unit/ondemand-cases holds a
 * stacks root and an `expect` file of exact values, read by the shared interpreter
 * test/helpers/unit-expect.ts (its comment describes the lines). Every case's units also pass the real
 * `systemd-analyze --user verify` with empty output.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { run } from '../../src/exec.js';
import { planEnable } from '../../src/ondemand/enable.js';
import { isFrozen, readFreezeRecord } from '../../src/ondemand/freeze.js';
import { freezeRecordPath } from '../../src/ondemand/freeze-record.js';
import { renderOndemandEnvFiles, renderOndemandUnits } from '../../src/ondemand/units.js';
import { normalizeUpstream } from '../../src/ondemand/config.js';
import { listenerEnvName } from '../../src/names.js';
import { loadProject } from '../../src/stacks/discover.js';
import type { RenderContext } from '../../src/unitfile/types.js';
import { renderStackUnits } from '../../src/stacks/units.js';
import { resolveTools, which } from '../../src/unitfile/tools.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';
import { checkExpect } from '../helpers/unit-expect.js';

const CASES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'unit', 'ondemand-cases');
const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

function contextFor(root: string, env: NodeJS.ProcessEnv): RenderContext {
  const project = loadProject({ root, env });
  return { project, tools: resolveTools({ podmanCompose: project.config.podman_compose, env }), env };
}

for (const name of fs.readdirSync(CASES).sort()) {
  describe(`ondemand render case ${name}`, () => {
    const base = tmpDir('zoopa-ondemand-');
    const root = path.join(base, 'stacks');
    fs.cpSync(path.join(CASES, name), root, { recursive: true });
    const env = isolatedEnv(base);
    const ctx = contextFor(root, env);
    const units = renderOndemandUnits(ctx);
    const byName = new Map(units.map((u) => [u.name, u.content]));
    const envDir = path.join(env.XDG_CONFIG_HOME!, 'zoopa-ondemand');
    const envFiles = new Map(renderOndemandEnvFiles(ctx).map((f) => [path.relative(envDir, f.path).replace(/\.env$/, ''), f]));
    const placeholders = { install: which('install', env) ?? '/usr/bin/install', node: ctx.tools.node, zoopa: ctx.tools.zoopa };

    test('matches its expectations', () => {
      checkExpect(fs.readFileSync(path.join(root, 'expect'), 'utf8'), { units: byName, envFiles, placeholders });
    });

    test('renders byte-identically twice', () => {
      const again = renderOndemandUnits(contextFor(root, env));
      assert.deepEqual(
        again.map((u) => [u.name, u.content]),
        units.map((u) => [u.name, u.content]),
      );
    });

    test('passes systemd-analyze --user verify with empty output', async () => {
      // The on-demand units and the stack units the proxy starts, in a
      // unit folder the verifier searches, so Service=/Wants= names resolve.
      const dir = path.join(env.XDG_CONFIG_HOME!, 'systemd', 'user');
      fs.mkdirSync(dir, { recursive: true });
      const all = [...renderStackUnits(ctx), ...units];
      for (const u of all) fs.writeFileSync(path.join(dir, u.name), u.content);
      // Instances as systemd would load them: each template for a stack, and every concrete file.
      const names = [...units.map((u) => u.name), 'zoopa-ondemand@web.socket', 'zoopa-ondemand@web.service'];
      const r = await run(['systemd-analyze', '--user', 'verify', ...[...new Set(names)].map((n) => path.join(dir, n))], { env, reject: false });
      assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
      assert.equal(r.status, 0);
    });
  });
}

describe('ondemand config section', () => {
  const parse = (yaml: string) => parseConfigText(yaml, '/x/zoopa.yaml');

  test('upstreams are checked with the proxy\'s parser; a bare port means 127.0.0.1', () => {
    assert.equal(normalizeUpstream(8080, 'k'), '127.0.0.1:8080');
    assert.equal(normalizeUpstream('[::1]:80', 'k'), '[::1]:80');
    assert.equal(normalizeUpstream('/run/app.sock', 'k'), '/run/app.sock');
    assert.equal(parse('stacks:\n  web:\n    ondemand: {upstream: 3000}\n').stacks.web?.ondemand?.upstream, '127.0.0.1:3000');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an upstream without a port', 'stacks:\n  web:\n    ondemand: {upstream: localhost}\n', /line 3: stacks\.web\.ondemand\.upstream: .*port is missing/],
    ['a relative unix path', 'stacks:\n  web:\n    ondemand: {upstream: run/app.sock}\n', /stacks\.web\.ondemand\.upstream: .*must be absolute/],
    ['a port out of range', 'stacks:\n  web:\n    ondemand: {upstream: "127.0.0.1:70000"}\n', /outside 1-65535/],
    ['a bad duration', 'stacks:\n  web:\n    ondemand: {upstream: 1, idle: 10 minutes please}\n', /stacks\.web\.ondemand\.idle: not a duration/],
    ['a zero start timeout', 'stacks:\n  web:\n    ondemand: {upstream: 1, start_timeout: 0}\n', /stacks\.web\.ondemand\.start_timeout: must be more than 0/],
    ['a bad ready check', 'stacks:\n  web:\n    ondemand: {upstream: 1, ready: http}\n', /stacks\.web\.ondemand\.ready/],
    ['an unknown key', 'stacks:\n  web:\n    ondemand: {upstream: 1, idle_timeout: 5}\n', /stacks\.web\.ondemand\.idle_timeout: unknown key/],
    ['a missing upstream', 'stacks:\n  web:\n    ondemand: {idle: 5}\n', /stacks\.web\.ondemand\.upstream: required/],
    ['a listener named with a dot', 'stacks:\n  web:\n    ondemand:\n      upstream: 1\n      listeners: [{name: a.b, upstream: 2}]\n', /listeners\.0\.name/],
    ['two listeners mapping to one variable', 'stacks:\n  web:\n    ondemand:\n      upstream: 1\n      listeners: [{name: a-b, upstream: 2}, {name: a_b, upstream: 3}]\n', /listeners\.1\.name: .*both map to ZOOPA_UPSTREAM_A_B/],
    ['a stop check word with a space', 'stacks:\n  web:\n    ondemand:\n      upstream: 1\n      stop_check: ["/bin/check", "two words"]\n', /stop_check: .*white space/],
    ['a socket mode that is not octal', 'ondemand: {socket_mode: "0668"}\n', /ondemand\.socket_mode/],
  ];
  for (const [what, yaml, re] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => parse(yaml), (e: unknown) => e instanceof ConfigError && re.test(e.message));
    });
  }

  test('listener env names: upper-cased, - → _', () => {
    assert.equal(listenerEnvName('ws-v2'), 'ZOOPA_UPSTREAM_WS_V2');
  });
});

describe('ondemand enable: where the settings go', () => {
  test('into zoopa.yaml, keeping its comments and layout', () => {
    const base = tmpDir('zoopa-ondemand-');
    const root = path.join(base, 'stacks');
    const yaml = '# my stacks\npodman_compose: /usr/bin/podman-compose # resolved by hand\nstacks:\n  web:\n    # slow app\n    start_timeout: 60\n  api: {}\n';
    writeFiles(root, { 'web/compose.yaml': COMPOSE, 'api/compose.yaml': COMPOSE, 'zoopa.yaml': yaml });
    const env = isolatedEnv(base);
    const plan = planEnable(loadProject({ root, env }), 'web-stack.service', { upstream: '127.0.0.1:8080', idle: '10m', env });
    assert.equal(plan.target.kind, 'yaml');
    assert.equal(plan.upstream, '127.0.0.1:8080');
    assert.equal(plan.idleSeconds, 600);
    const after = plan.target.kind === 'yaml' ? plan.target.after : '';
    assert.equal(
      after,
      '# my stacks\npodman_compose: /usr/bin/podman-compose # resolved by hand\nstacks:\n  web:\n    # slow app\n    start_timeout: 60\n    ondemand:\n      upstream: 127.0.0.1:8080\n      idle: 10m\n  api: {}\n',
    );
    // Planning wrote nothing.
    assert.equal(fs.readFileSync(path.join(root, 'zoopa.yaml'), 'utf8'), yaml);
    // The install plan includes the env file rendered from the new settings.
    const envItem = plan.install.items.find((i) => i.kind === 'file');
    assert.ok(envItem?.content?.includes('ZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_IDLE_TIMEOUT=600\n'));
  });

  test('a root without zoopa.yaml gets one', () => {
    const base = tmpDir('zoopa-ondemand-');
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'web/compose.yaml': COMPOSE });
    const env = isolatedEnv(base);
    const plan = planEnable(loadProject({ root, env }), 'web', { upstream: '8080', env });
    assert.equal(plan.target.kind, 'yaml');
    assert.equal(plan.target.kind === 'yaml' && plan.target.after, 'stacks:\n  web:\n    ondemand:\n      upstream: 127.0.0.1:8080\n');
  });

  test('into the user\'s own hand-written env file when zoopa.yaml has no ondemand section for the stack', () => {
    const base = tmpDir('zoopa-ondemand-');
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'web/compose.yaml': COMPOSE });
    const env = isolatedEnv(base);
    const file = path.join(env.XDG_CONFIG_HOME!, 'zoopa-ondemand', 'web.env');
    writeFiles(path.dirname(file), { 'web.env': 'ZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n' });
    const plan = planEnable(loadProject({ root, env }), 'web', { idle: '90s', env });
    assert.equal(plan.target.kind, 'envfile');
    assert.equal(plan.target.kind === 'envfile' && plan.target.after, 'ZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_IDLE_TIMEOUT=90\n');
    assert.equal(plan.idleSeconds, 90);
    assert.ok(!plan.install.items.some((i) => i.kind === 'file'), 'install leaves the hand-written env file alone');
    // Nothing to change: the file as it is (with the README's trailing comment) is fine.
    const same = planEnable(loadProject({ root, env }), 'web', { env });
    assert.equal(same.target.kind, 'unchanged');
    assert.equal(same.idleSeconds, 600);
  });
});

describe('bad input through the real CLI: exit 2, a clear message, nothing written, systemd never reached', () => {
  const cases: Array<[string, Record<string, string>, string[], RegExp[]]> = [
    ['an unknown stack', {}, ['ondemand', 'enable', 'nope', '--upstream', '127.0.0.1:80'], [/unknown stack "nope"/, /hint: stacks in .*: web/]],
    ['an unparsable upstream', {}, ['ondemand', 'enable', 'web', '--upstream', 'localhost'], [/--upstream="localhost" is not a valid upstream: the port is missing/, /hint: write host:port/]],
    ['an unparsable duration', {}, ['ondemand', 'enable', 'web', '--upstream', '127.0.0.1:80', '--idle', 'ten minutes'], [/--idle "ten minutes" is not a duration/, /hint:/]],
    ['no upstream at all', {}, ['ondemand', 'enable', 'web'], [/no upstream known for stack web/, /hint: pass --upstream/]],
    [
      'a hand-written env file without ZOOPA_UPSTREAM',
      { 'home/.config/zoopa-ondemand/web.env': 'ZOOPA_IDLE_TIMEOUT=600\n' },
      ['ondemand', 'enable', 'web'],
      [/web\.env has no ZOOPA_UPSTREAM/, /hint: pass --upstream/],
    ],
    [
      'a hand-written env file with an unparsable duration',
      { 'home/.config/zoopa-ondemand/web.env': 'ZOOPA_UPSTREAM=127.0.0.1:80\nZOOPA_IDLE_TIMEOUT=soon\n' },
      ['ondemand', 'enable', 'web'],
      [/web\.env: ZOOPA_IDLE_TIMEOUT="soon" is not a duration/, /hint:/],
    ],
    ['an unknown stack to freeze', {}, ['freeze', 'nope'], [/unknown stack "nope"/]],
    ['an unknown stack to thaw', {}, ['thaw', 'web.x'], [/unknown stack "web\.x"/]],
    ['an unknown stack to disable', {}, ['ondemand', 'disable', 'nope'], [/unknown stack "nope"/]],
  ];
  for (const [what, extra, args, res] of cases) {
    test(what, async () => {
      const base = tmpDir('zoopa-ondemand-');
      const root = path.join(base, 'stacks');
      writeFiles(root, { 'web/compose.yaml': COMPOSE });
      const env = isolatedEnv(base);
      writeFiles(base, extra);
      const before = snapshot(base);
      const r = await zoopa(['--root', root, ...args], { env });
      assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
      for (const re of res) assert.match(r.stderr, re);
      assert.deepEqual(snapshot(base), before, 'nothing written');
    });
  }

  test('--dry-run prints the settings diff, the install plan and the systemctl command, and writes nothing', async () => {
    const base = tmpDir('zoopa-ondemand-');
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': '# mine\nstacks: {}\n' });
    const env = isolatedEnv(base);
    const before = snapshot(base);
    const r = await zoopa(['--root', root, 'ondemand', 'enable', 'web', '--upstream', '127.0.0.1:8080', '--idle', '10m', '--dry-run'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /settings → .*zoopa\.yaml \(stacks\.web\.ondemand\): upstream 127\.0\.0\.1:8080, idle 10m/);
    assert.match(r.stdout, /\+ zoopa-ondemand@\.socket/);
    assert.match(r.stdout, /would run: systemctl --user enable --now zoopa-ondemand-dir\.service zoopa-ondemand@web\.socket/);
    assert.deepEqual(snapshot(base), before, 'nothing written');
  });
});

describe('freeze record', () => {
  test('absent means not frozen; a torn record still counts as frozen, marked unreadable (thaw restarts the sockets)', () => {
    const base = tmpDir('zoopa-ondemand-');
    const env = isolatedEnv(base);
    assert.equal(isFrozen('web', env), false);
    assert.equal(readFreezeRecord('web', env), undefined);
    fs.mkdirSync(path.dirname(freezeRecordPath('web', env)), { recursive: true });
    fs.writeFileSync(freezeRecordPath('web', env), '{"version": 1, "sta');
    assert.equal(isFrozen('web', env), true);
    const r = readFreezeRecord('web', env);
    assert.deepEqual(r?.sockets, []);
    assert.equal(r?.service.activeState, 'inactive');
    assert.match(r?.unreadable ?? '', /not valid JSON/);
  });
});
