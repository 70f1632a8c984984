/**
 * Least privilege on the test bed (issue 9): the rootful stack and Duplicati run
 * under exactly the rule `zoopa sudoers --user <test user>` prints, installed
 * verbatim as a scratch sudoers file (plus the test bed's own Defaults: keep
 * CONTAINERS_CONF, which root's podman needs on this machine).
 *
 *  - doctor fails on a user-writable rootful compose file, naming it; with the
 *    stack's files root's it passes;
 *  - with the rule, the test user starts and stops the rootful stack's unit,
 *    `zoopa status` sees root's containers, and a Duplicati backup of the rootful
 *    stack (the stand-in reached through `sudo -n`) stops it, runs the job and
 *    starts it again;
 *  - the rule refuses: another compose file, `podman-compose ... run --rm -v /:/h`,
 *    `podman exec duplicati sh`, `podman run`;
 *  - doctor's probe is exact: a rule allowing only the bare Duplicati command
 *    fails it; a broad rule (all of podman-compose and podman) is reported.
 *
 *   npm run build && node scripts/run-tests.mjs integration/sudoers
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { httpStack, type StackFixture } from '../fixtures/stacks.js';
import { DUPLICATI_STANDIN } from '../helpers/duplicati-standin.js';
import { freePort, httpGet, IMAGE, useTestbed, type Testbed } from '../testbed/index.js';

interface Check {
  check: string;
  verdict: string;
  detail: string;
  fix?: string;
}

async function doctor(tb: Testbed): Promise<Map<string, Check>> {
  const r = await tb.zoopa(['--root', tb.root, 'doctor', '--json']);
  return new Map((JSON.parse(r.stdout) as Check[]).map((c) => [c.check, c]));
}

async function rootContainers(tb: Testbed, project: string): Promise<string[]> {
  const r = await tb.podmanRootful(['ps', '--format', '{{.Names}}', '--filter', `label=io.podman.compose.project=${project}`]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

/** Root-owned, not writable by others (what the rootful stack's files must be). */
function giveToRoot(p: string, mode: number): void {
  fs.chownSync(p, 0, 0);
  fs.chmodSync(p, mode);
}

describe('the rootful stack and Duplicati under exactly the rule zoopa sudoers prints', () => {
  const bed = useTestbed({ name: 'sudoers' });
  let dup: StackFixture;
  let standin: string;
  let standinDir: string;
  let rule: string;

  it('set up: a rootful stack with a Duplicati job, the stand-in (root-owned) reached through sudo -n', async () => {
    const tb = bed();
    dup = httpStack(tb.root, 'duplicati', { port: await freePort() });
    const rootBin = path.join(tb.dir, 'rootbin');
    standinDir = path.join(rootBin, 'duplicati-state');
    fs.mkdirSync(standinDir, { recursive: true, mode: 0o755 });
    standin = path.join(rootBin, 'duplicati-server-util');
    fs.copyFileSync(DUPLICATI_STANDIN, standin);
    fs.chmodSync(standin, 0o755);
    fs.writeFileSync(path.join(standinDir, 'config.json'), JSON.stringify({ jobs: [{ id: '1', name: 'dup', seconds: 1 }] }, null, 2));
    tb.writeFile(
      path.join(tb.root, 'zoopa.yaml'),
      YAML.stringify({
        backup: { duplicati: { command: ['sudo', '-n', '/usr/bin/env', `DUPLICATI_STANDIN_DIR=${standinDir}`, standin], poll_interval: 1 } },
        stacks: { duplicati: { rootful: true, backup: { jobs: ['dup'] } } },
      }),
    );
    await tb.importImageRootful();
    const r = await tb.zoopa(['--root', tb.root, 'sudoers', '--user', tb.user]);
    assert.equal(r.status, 0, r.stderr);
    rule = r.stdout;
    await tb.installSudoers(rule);
    const i = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(i.status, 0, i.stderr);
  });

  it('doctor fails on a user-writable rootful compose file and names it, with the fix', async () => {
    const tb = bed();
    fs.chmodSync(dup.composeFile, 0o664);
    const c = (await doctor(tb)).get('rootful stack files (duplicati)');
    assert.equal(c?.verdict, 'fail', JSON.stringify(c));
    assert.ok(c.detail.includes(`${dup.composeFile} owned by uid ${tb.uid}, not root, writable by its group`), c.detail);
    assert.match(c.fix ?? '', new RegExp(`^sudo chown root:root .*${dup.composeFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  });

  it('with the stack folder and every folder above it root\'s, doctor passes both checks', async () => {
    const tb = bed();
    // The stacks root and the test bed folder become root's; the user keeps the units folder (zoopa render/install write it).
    fs.mkdirSync(path.join(tb.root, 'systemd'), { recursive: true });
    tb.chown(path.join(tb.root, 'systemd'));
    for (const d of [tb.dir, tb.root, dup.dir]) giveToRoot(d, 0o755);
    giveToRoot(dup.composeFile, 0o644);
    const checks = await doctor(tb);
    assert.equal(checks.get('rootful stack files (duplicati)')?.verdict, 'ok', JSON.stringify(checks.get('rootful stack files (duplicati)')));
    const stackRule = checks.get('sudo rule (rootful stack duplicati)');
    assert.equal(stackRule?.verdict, 'ok', JSON.stringify(stackRule));
    assert.match(stackRule.detail, /allows each of the 4 exact command\(s\)/);
    const dupRule = checks.get('sudo rule (Duplicati)');
    assert.equal(dupRule?.verdict, 'ok', JSON.stringify(dupRule));
  });

  it('doctor fails on a .env of the user beside the rootful compose file (podman-compose reads it as root), naming it', async () => {
    const tb = bed();
    const dotenv = path.join(dup.dir, '.env');
    fs.writeFileSync(dotenv, 'X=1\n', { mode: 0o600 });
    tb.chown(dotenv);
    try {
      const c = (await doctor(tb)).get('rootful stack files (duplicati)');
      assert.equal(c?.verdict, 'fail', JSON.stringify(c));
      assert.ok(c.detail.includes(`${dotenv} owned by uid ${tb.uid}, not root`), c.detail);
      assert.doesNotMatch(c.detail, /compose\.yaml/, 'only the .env is named');
    } finally {
      fs.rmSync(dotenv);
    }
  });

  it('the test user starts the rootful stack through its unit; zoopa status sees root\'s containers', async () => {
    const tb = bed();
    const up = await tb.zoopa(['--root', tb.root, 'up', 'duplicati']);
    assert.equal(up.status, 0, `${up.stderr}\n${tb.managerLog().slice(-2000)}`);
    assert.equal((await rootContainers(tb, 'duplicati')).length, 1, 'runs in root podman');
    const res = await tb.waitFor(async () => httpGet(dup.url).catch(() => undefined), { what: 'rootful stack answers', timeoutMs: 60_000 });
    assert.equal(res.body, dup.expectBody);
    const s = await tb.zoopa(['--root', tb.root, 'status', '--json']);
    assert.equal(s.status, 0, s.stderr);
    const st = (JSON.parse(s.stdout) as { stacks: Array<{ name: string; rootful: boolean; containers: { running: number } | null }> }).stacks.find((x) => x.name === 'duplicati');
    assert.equal(st?.rootful, true);
    assert.equal(st?.containers?.running, 1, s.stdout);
  });

  it('a Duplicati backup of the rootful stack runs through sudo -n: stack stopped, job run, stack back', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'backup', 'duplicati'], { timeoutMs: 300_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const calls = fs.readFileSync(path.join(standinDir, 'calls.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as string[]).join(' '));
    assert.ok(calls.includes('list-backups --detailed'), calls.join('\n'));
    assert.ok(calls.some((c) => /^run 1( |$)/.test(c)), calls.join('\n'));
    assert.equal((await rootContainers(tb, 'duplicati')).length, 1, 'the stack is up again');
    const res = await tb.waitFor(async () => httpGet(dup.url).catch(() => undefined), { what: 'rootful stack answers after the backup', timeoutMs: 60_000 });
    assert.equal(res.body, dup.expectBody);
  });

  it('the rule refuses another compose file, run --rm -v /:/h, podman exec duplicati sh and podman run', async () => {
    const tb = bed();
    const evil = tb.writeFile('evil/compose.yaml', YAML.stringify({ services: { app: { image: IMAGE, privileged: true, volumes: ['/:/host'] } } }));
    const compose = rule.match(/^\s+(\S+podman-compose) /m)?.[1];
    const podman = rule.match(/^\s+(\S+\/podman) ps /m)?.[1];
    assert.ok(compose && podman, rule);
    const refusedArgvs = [
      [compose, '-p', 'duplicati', '-f', evil, 'up', '-d'],
      [compose, '-p', 'x', '-f', evil, 'up', '-d'],
      [compose, '-p', 'duplicati', '-f', dup.composeFile, 'run', '--rm', '-v', '/:/h', 'web', 'sh'],
      [compose, '-p', 'duplicati', 'up', '-d'],
      [podman, 'exec', 'duplicati', 'sh'],
      [podman, 'run', '--rm', IMAGE, 'true'],
      [podman, 'ps', '--format', 'json', '--filter', 'label=io.podman.compose.project', '--all', '--quiet'],
      ['/usr/bin/env', `DUPLICATI_STANDIN_DIR=${standinDir}`, standin, 'run', '1', '--wait', '--poll-interval', '1', 'x'],
      ['/usr/bin/env', `DUPLICATI_STANDIN_DIR=${standinDir}`, '/bin/sh'],
    ];
    for (const argv of refusedArgvs) {
      const r = await tb.run(['sudo', '-n', ...argv]);
      assert.notEqual(r.status, 0, `sudo -n ${argv.join(' ')} must be refused`);
      assert.match(r.stderr, /a password is required|not allowed/, `${argv.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(await rootContainers(tb, 'x'), [], 'nothing started from the other compose file');
  });

  it('the test user stops the rootful stack through its unit', async () => {
    const tb = bed();
    const down = await tb.zoopa(['--root', tb.root, 'down', 'duplicati']);
    assert.equal(down.status, 0, down.stderr);
    assert.deepEqual(await rootContainers(tb, 'duplicati'), []);
  });

  it('a rootful start that fails: check-stack\'s clean-up is exactly ExecStop=, which the rule allows', async () => {
    const tb = bed();
    const good = fs.readFileSync(dup.composeFile, 'utf8');
    fs.writeFileSync(dup.composeFile, good.replace(IMAGE, 'localhost/zoopa-missing-image:1'));
    try {
      const up = await tb.zoopa(['--root', tb.root, 'up', 'duplicati']);
      assert.notEqual(up.status, 0, 'the start fails: the image is missing');
      await tb.waitFor(() => /check-stack duplicati: removing its containers again: \S+ -n \S+podman-compose -p duplicati -f \S+compose\.yaml down/.test(tb.managerLog()), {
        what: "check-stack's clean-up line",
        timeoutMs: 120_000,
      });
      assert.doesNotMatch(tb.managerLog(), /check-stack duplicati: .* down failed/, 'sudo allowed the clean-up');
      assert.deepEqual(await rootContainers(tb, 'duplicati'), []);
    } finally {
      fs.writeFileSync(dup.composeFile, good);
      await tb.systemctl(['reset-failed', 'duplicati-stack.service']);
    }
  });

  it('doctor probes each exact argv: a rule allowing only the bare Duplicati command fails; a broad rule is reported', async () => {
    const tb = bed();
    const bare = `/usr/bin/env DUPLICATI_STANDIN_DIR\\=${standinDir} ${standin}`;
    const stackLines = rule.split('\n').filter((l) => /podman-compose|\/podman ps/.test(l)).map((l) => l.trim().replace(/,? \\$/, ''));
    await tb.installSudoers(`Cmnd_Alias ZOOPA_TEST = ${[...stackLines, bare].join(', ')}\n${tb.user} ALL=(root) NOPASSWD: ZOOPA_TEST\n`);
    let checks = await doctor(tb);
    const d = checks.get('sudo rule (Duplicati)');
    assert.equal(d?.verdict, 'fail', JSON.stringify(d));
    assert.match(d.detail, /list-backups --detailed/);
    assert.match(d.fix ?? '', /zoopa sudoers > zoopa\.sudoers && sudo visudo -c -f zoopa\.sudoers/);
    assert.equal(checks.get('sudo rule (rootful stack duplicati)')?.verdict, 'ok');

    const podmanCompose = rule.match(/^\s+(\S+podman-compose) /m)![1]!;
    const podman = rule.match(/^\s+(\S+\/podman) ps /m)![1]!;
    await tb.installSudoers(`${tb.user} ALL=(root) NOPASSWD: ${podmanCompose}, ${podman}, /usr/bin/env\n`);
    checks = await doctor(tb);
    const s = checks.get('sudo rule (rootful stack duplicati)');
    assert.equal(s?.verdict, 'warn', JSON.stringify(s));
    assert.match(s.detail, /-f \/nonexistent\/zoopa-doctor-probe\.yaml up -d/);
    assert.match(s.detail, /lets this user become root/);
    await tb.installSudoers(rule);
  });
});
