/**
 * `zoopa init` through the real CLI, on a realistic original setup
 * (test/fixtures/original-setup.ts, built as the seed's systemd README describes it),
 * in an isolated HOME with no systemd behind it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { parseEnvText } from '../../src/envfile.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { originalSetup, type OriginalSetupFixture } from '../fixtures/original-setup.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

interface World {
  base: string;
  env: NodeJS.ProcessEnv;
  fx: OriginalSetupFixture;
}

function world(): World {
  const base = tmpDir('zoopa-init-');
  const env = isolatedEnv(base);
  const fx = originalSetup(env.HOME!);
  return { base, env, fx };
}

async function ok(args: string[], w: { env: NodeJS.ProcessEnv }): Promise<string> {
  const r = await zoopa(args, { env: w.env });
  assert.equal(r.status, 0, `zoopa ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A unit's settings, for comparing an original hand-written unit with zoopa's: comments
 * dropped, %h expanded, and the differences that do not change what systemd does:
 *  - Documentation= (a man page reference);
 *  - `-p <stack>` (podman-compose's default project name is the folder's name, the stack's);
 *  - `sudo -n` for `sudo` (no tty under systemd: sudo cannot prompt either way), sudo's absolute path.
 */
function settings(text: string, stack: string, home: string): Record<string, Array<[string, string]>> {
  const out: Record<string, Array<[string, string]>> = {};
  for (const [section, entries] of parseUnitText(text)) {
    out[section] = entries
      // Documentation= is zoopa's; so is the container check after `up -d` (issue 8: podman-compose
      // 1.0.3 exits 0 when a container fails), the one line an adopted unit gains on purpose.
      .filter(([k, v]) => k !== 'Documentation' && !(k === 'ExecStartPost' && / check-stack /.test(v)))
      .map(([k, v]) => {
        let x = v.replace(/%h/g, home);
        if (k === 'ExecStart' || k === 'ExecStop') {
          // The rootful stack names its compose file by absolute path (issue 9: root must not read a file the user picks by cwd).
          x = x.replace(` -p ${stack} `, ' ').replace(/ -f \/\S+\/compose\.ya?ml /, ' ').replace(/^(\/usr\/bin\/)?sudo( -n)? /, 'sudo ');
        }
        return [k, x] as [string, string];
      });
  }
  return out;
}

test('init on a realistic original setup: a zoopa.yaml that validates and carries every setting over', async () => {
  const w = world();
  const out = await ok(['--root', w.fx.root, 'init'], w);
  assert.match(out, /^wrote .*zoopa\.yaml$/m);
  assert.match(out, /not a stack name: folder "My Notes"; rename it \(e\.g\. to my-notes\)/);
  assert.ok(fs.existsSync(path.join(w.fx.root, w.fx.badFolder)), 'the folder is never renamed');
  const text = fs.readFileSync(path.join(w.fx.root, 'zoopa.yaml'), 'utf8');
  parseConfigText(text, 'zoopa.yaml'); // validates against the schema
  const data = YAML.parse(text) as { stacks: Record<string, unknown>; backup: unknown };
  assert.deepEqual(data.stacks, w.fx.expect.stacks);
  assert.deepEqual(data.backup, w.fx.expect.backup);
  // Commented suggestions: ports (variables from .env resolved), bind mounts, other compose files.
  assert.match(text, /# +ondemand: \{ upstream: 127\.0\.0\.1:2368, idle: 10m \}/, 'blog: ${BLOG_PORT} from .env, 0.0.0.0 reached on loopback');
  assert.match(text, /published ports: 127\.0\.0\.1:3000 \(cryptpad\), 127\.0\.0\.1:3003 \(cryptpad\)/, '${VAR} and ${VAR:-default}');
  assert.match(text, /bind mounts \(restic's default paths for this stack\): html, db/);
  assert.match(text, /# +files: \[compose\.prod\.yaml\]/);
  assert.match(text, /podman-compose also reads compose\.override\.yaml by itself/);
  assert.match(text, /"My Notes" -> my-notes/);
});

test('init, then a second init: nothing changes; install --dry-run --adopt shows no change to the original stack units beyond the header', async () => {
  const w = world();
  await ok(['--root', w.fx.root, 'init'], w);
  const before = snapshot(w.base);
  const again = await ok(['--root', w.fx.root, 'init'], w);
  assert.match(again, /exists and already has everything zoopa init finds: nothing to add/);
  assert.deepEqual(snapshot(w.base), before, 'a second init writes nothing');

  // The user renames the folder as told; then the plan.
  fs.renameSync(path.join(w.fx.root, w.fx.badFolder), path.join(w.fx.root, w.fx.suggestedRename));
  const plan = JSON.parse(await ok(['--root', w.fx.root, 'install', '--dry-run', '--adopt', '--json'], w)) as {
    items: Array<{ name: string; kind: string; action: string; diff?: string; conflict?: string }>;
  };
  assert.deepEqual(snapshot(w.base), new Map([...before].filter(([p]) => !p.includes(w.fx.badFolder)).concat([...snapshot(path.join(w.fx.root, w.fx.suggestedRename))])), 'dry run wrote nothing');
  assert.ok(!plan.items.some((i) => i.action === 'remove'));

  // Each original stack unit: the rendered one has the same settings (see settings() for the equivalences).
  const out = path.join(w.base, 'rendered');
  await ok(['--root', w.fx.root, 'render', '--out', out], w);
  for (const [stack, original] of Object.entries(w.fx.stackUnits)) {
    const rendered = fs.readFileSync(path.join(out, `${stack}-stack.service`), 'utf8');
    assert.match(rendered, /^# Generated by zoopa/);
    assert.deepEqual(settings(rendered, stack, w.fx.home), settings(original, stack, w.fx.home), `${stack}-stack.service`);
    const item = plan.items.find((i) => i.name === `${stack}-stack.service`)!;
    assert.equal(item.action, 'change');
    // Every line the diff changes is the header or one of the equivalences above.
    const changed = item.diff!.split('\n').filter((l) => !/^[+-](#|$)/.test(l));
    for (const l of changed) assert.match(l, /^[+-](Documentation=|WorkingDirectory=|ExecStart=|ExecStop=|ExecStartPost=\S+ \S+ check-stack )/, `${stack}: ${l}`);
  }
  // The env file: the same variables, now with the header (its comments go).
  const envItem = plan.items.find((i) => i.kind === 'file' && i.name.endsWith('cryptpad.env'))!;
  const added = envItem.diff!.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+#')).map((l) => l.slice(1));
  const removed = envItem.diff!.split('\n').filter((l) => l.startsWith('-') && !l.startsWith('-#')).map((l) => l.slice(1));
  const vars = (lines: string[]) => Object.fromEntries(parseEnvText(lines.join('\n'), 'x').map((e) => [e.key, e.value]));
  assert.deepEqual(vars(added), vars(removed));
  // The timer keeps its schedule.
  const timer = fs.readFileSync(path.join(out, 'duplicati-backup.timer'), 'utf8');
  assert.match(timer, /^OnCalendar=\*-\*-\* 04:15:00$/m);
  const backup = fs.readFileSync(path.join(out, 'duplicati-backup.service'), 'utf8');
  assert.match(backup, /^ExecStart=.* backup cryptpad$/m);
  assert.match(backup, /^Wants=duplicati-stack\.service$/m);
});

test('init --dry-run prints the file and writes nothing', async () => {
  const w = world();
  const before = snapshot(w.base);
  const out = await ok(['--root', w.fx.root, 'init', '--dry-run'], w);
  assert.match(out, /^would write .*zoopa\.yaml:$/m);
  assert.match(out, /^ {2}cryptpad:$/m);
  assert.match(out, /dry run: nothing written/);
  assert.deepEqual(snapshot(w.base), before);
});

test('init never overwrites a zoopa.yaml: it prints what it would add, and writes nothing', async () => {
  const w = world();
  const mine = '# mine\nstacks:\n  cryptpad:\n    start_timeout: 20m\n';
  writeFiles(w.fx.root, { 'zoopa.yaml': mine });
  const before = snapshot(w.base);
  const out = await ok(['--root', w.fx.root, 'init'], w);
  assert.match(out, /exists and is left alone; zoopa init would add .*stacks\.cryptpad\.ondemand/);
  assert.match(out, /^ {2}\+ {4}ondemand:$/m);
  assert.match(out, /^ {2}\+ {2}nextcloud:$/m);
  assert.doesNotMatch(out, /stacks\.cryptpad\.start_timeout/, 'a key it has is left as written');
  assert.deepEqual(snapshot(w.base), before);
  assert.equal(fs.readFileSync(path.join(w.fx.root, 'zoopa.yaml'), 'utf8'), mine);
});

test('every init output validates and renders: bare trees, no original setup, settings it cannot express', async () => {
  const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n    ports: ["${P:-8080}:80"]\n';
  const trees: Array<{ name: string; files: Record<string, string>; home?: Record<string, string>; expectNote?: RegExp }> = [
    { name: 'an empty root', files: { 'README.md': 'nothing here\n' } },
    {
      name: 'stacks, nothing original',
      files: { 'web/compose.yaml': COMPOSE, 'api/docker-compose.yml': `name: \${PROJ:-backend}\n${COMPOSE}`, 'api/.env': 'P=9000\n' },
      expectNote: /api\/docker-compose\.yml names its project "backend"; zoopa runs it as -p api/,
    },
    {
      name: 'an env file naming another unit',
      files: { 'web/compose.yaml': COMPOSE },
      home: {
        '.config/zoopa-ondemand/web.env': 'ZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_STACK_UNIT=other.service\n',
        '.config/zoopa-ondemand/llama-router.env': 'ZOOPA_UPSTREAM=127.0.0.1:8081\nZOOPA_STACK_UNIT=llama-router.service\n',
      },
      expectNote: /ZOOPA_STACK_UNIT=other\.service is not the stack's own unit/,
    },
    {
      name: 'a unit with -f files, a project name and no timeouts',
      files: {
        'web/compose.yaml': COMPOSE,
        'web/compose.extra.yaml': 'services: {}\n',
        'systemd/web-stack.service': '[Service]\nType=oneshot\nExecStart=/usr/bin/podman-compose -f compose.yaml -f compose.extra.yaml -p site up -d\n',
      },
      expectNote: /compose project "site"/,
    },
    {
      name: 'units requiring another stack, and settings zoopa has no key for',
      files: {
        'web/compose.yaml': COMPOSE,
        'db/compose.yaml': COMPOSE,
        'systemd/web-stack.service':
          '[Unit]\nRequires=db-stack.service\nAfter=db-stack.service network-online.target\nWants=network-online.target\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/podman-compose up -d\nEnvironment=TZ=UTC\n[Install]\nWantedBy=default.target\n',
        'systemd/db-stack.service': '[Unit]\nStopWhenUnneeded=yes\n[Service]\nType=oneshot\nExecStart=/usr/bin/podman-compose up -d\n',
      },
      expectNote: /\[Unit\] Wants=network-online\.target has no zoopa\.yaml key[^]*\[Service\] Environment=TZ=UTC has no zoopa\.yaml key/,
    },
    {
      name: 'StopWhenUnneeded= on a unit nobody requires',
      files: { 'db/compose.yaml': COMPOSE, 'systemd/db-stack.service': '[Unit]\nStopWhenUnneeded=yes\n[Service]\nType=oneshot\nExecStart=/usr/bin/podman-compose up -d\n' },
      expectNote: /StopWhenUnneeded= of db-stack\.service is left out: stacks\.db\.stop_when_unneeded: no stack requires db/,
    },
  ];
  for (const t of trees) {
    const base = tmpDir('zoopa-init-');
    const env = isolatedEnv(base);
    const root = path.join(base, 'root');
    fs.mkdirSync(root);
    writeFiles(root, t.files);
    writeFiles(env.HOME!, t.home ?? {});
    const out = await ok(['--root', root, 'init'], { env });
    if (t.expectNote) assert.match(out, t.expectNote, t.name);
    parseConfigText(fs.readFileSync(path.join(root, 'zoopa.yaml'), 'utf8'), t.name);
    await ok(['--root', root, 'render', '--dry-run', '--adopt'], { env });
    if (t.name.startsWith('a unit with')) {
      assert.deepEqual((YAML.parse(fs.readFileSync(path.join(root, 'zoopa.yaml'), 'utf8')) as { stacks: { web: unknown } }).stacks.web, { files: ['compose.extra.yaml'] });
    }
    if (t.name.startsWith('units requiring')) {
      const cfg = YAML.parse(fs.readFileSync(path.join(root, 'zoopa.yaml'), 'utf8')) as { stacks: Record<string, unknown> };
      assert.deepEqual(cfg.stacks.web, { requires: ['db'] });
      assert.deepEqual(cfg.stacks.db, { stop_when_unneeded: true });
      assert.match(out, /\[Unit\] After=db-stack\.service network-online\.target has no zoopa\.yaml key/);
    }
    if (t.name.startsWith('an env file')) assert.match(out, /llama-router\.env belongs to no stack folder here/);
    if (t.name.startsWith('an env file')) assert.doesNotMatch(fs.readFileSync(path.join(root, 'zoopa.yaml'), 'utf8'), /^ {4}ondemand:/m);
  }
});

test('init: an invalid existing zoopa.yaml is bad input (exit 2, nothing written)', async () => {
  const base = tmpDir('zoopa-init-');
  const env = isolatedEnv(base);
  writeFiles(base, { 'root/web/compose.yaml': 'services:\n  app:\n    image: x\n', 'root/zoopa.yaml': 'stacks:\n  web:\n    rootfull: true\n' });
  const before = snapshot(base);
  const r = await zoopa(['--root', path.join(base, 'root'), 'init'], { env });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /stacks\.web\.rootfull: unknown key/);
  assert.deepEqual(snapshot(base), before);
});
