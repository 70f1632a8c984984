/**
 * zoopa backup for real: an isolated systemd user manager, rootless podman stacks
 * (busybox httpd serving a bind-mounted folder), the real restic with a local
 * repository, the on-demand sockets and freeze of the on-demand feature, and the
 * duplicati-server-util stand-in (Duplicati cannot be installed here) reached
 * through an argv prefix as the real one is through `sudo -n podman exec duplicati`.
 *
 * Issue 4's acceptance, one test each:
 *  - a running stack is stopped during its backup (the stand-in records `podman ps`
 *    when the job starts; a pre_backup hook records it before restic), up again
 *    afterwards, and its data restored from the restic snapshot equals the original;
 *  - a sleeping on-demand stack stays asleep; during the run its socket answers HTTP
 *    with the maintenance page ("a backup is running") and wakes nothing; afterwards
 *    every unit is as before; a concurrent run is refused meanwhile, naming the holder;
 *  - an on-demand stack zoopa woke is backed up and started again, and its new run is
 *    still zoopa's (the owned marker is handed on: it is stopped at idle);
 *  - failing jobs (exit status, failed result, timeout): stacks and socket put back,
 *    the undo hook ran, exit 1 with a summary table, the next stack still backed up;
 *  - SIGKILL mid-run: `zoopa backup status` reports the journal, the next run repairs first;
 *    SIGTERM mid-run: the stack is put back before zoopa exits 143;
 *  - the installed service and timer pass `systemd-analyze --user verify`, and
 *    `systemctl --user start duplicati-backup.service` performs the backup.
 *
 *   npm run build && node scripts/run-tests.mjs integration backup
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import YAML from 'yaml';
import { IMAGE, freePort, httpGet, useTestbed, type Spawned, type Testbed } from '../testbed/index.js';
import { containerStarts, runningContainers, socketOf, unitStates } from './ondemand-lib.js';
import { tree } from '../helpers/tree.js';
import { DUPLICATI_STANDIN, type StandinJob } from '../helpers/duplicati-standin.js';

const STANDIN_SRC = DUPLICATI_STANDIN;
const DEADLINE = { timeoutMs: 120_000, intervalMs: 200 };
const STACKS = ['web', 'duo', 'good', 'slow'] as const;
type StackName = (typeof STACKS)[number];


describe('zoopa backup on the test bed', () => {
  const bed = useTestbed({ name: 'backup' });
  const ports = {} as Record<StackName, number>;
  let standin: string;
  let standinDir: string;
  let repo: string;
  let pwFile: string;
  let started: Date;

  const stackDir = (tb: Testbed, s: string) => path.join(tb.root, s);
  const journal = (tb: Testbed, s: string) => path.join(tb.stateHome, 'zoopa', 'backup', 'journal', `${s}.json`);
  const record = (name: string, n: number) => path.join(standinDir, `job-${jobId(name)}-${n}.record`);
  const jobId = (name: string) => String(STACKS.indexOf(name as StackName) + 1);
  const psRecord = (name: string) => ['podman', 'ps', '--filter', `label=io.podman.compose.project=${name}`, '--format', '{{.Names}}'];

  /** The stand-in's server: one job per stack, behaviour per test. */
  function standinJobs(tb: Testbed, overrides: Partial<Record<StackName, Partial<StandinJob>>> = {}): void {
    const jobs = STACKS.map((s) => ({ id: jobId(s), name: s, seconds: 1, record: psRecord(s), ...overrides[s] }));
    tb.writeFile(path.join(standinDir, 'config.json'), JSON.stringify({ jobs }, null, 2));
  }

  /** zoopa.yaml: every stack's job is its Duplicati job; web adds restic and hooks. */
  function config(tb: Testbed, extra: { slowTimeout?: number; webUndo?: boolean } = {}): void {
    const hooks: Record<string, unknown> = {
      // Proof for the restic job: what runs just before it.
      pre_backup: { run: ['sh', '-c', `${psRecord('web').map((w) => `'${w}'`).join(' ')} > "$HOME/ps-before-restic.txt"`] },
      // What a hook sees of the environment.
      post_backup: { run: ['sh', '-c', 'env > "$HOME/hook-env.txt"'] },
    };
    if (extra.webUndo) hooks.pre_stop = { run: ['touch', path.join(tb.home, 'maintenance-on')], undo: ['rm', path.join(tb.home, 'maintenance-on')] };
    const cfg = {
      backup: {
        stacks: ['web'],
        duplicati: { command: ['/usr/bin/env', `DUPLICATI_STANDIN_DIR=${standinDir}`, standin], poll_interval: 1 },
        restic: { repository: repo, password_file: pwFile, forget: { keep_last: 5 } },
      },
      stacks: {
        web: { stop_timeout: 60, backup: { jobs: ['web', { restic: {} }], hooks } },
        duo: { ondemand: { upstream: `127.0.0.1:${ports.duo}` }, backup: { jobs: ['duo'] } },
        good: { backup: { jobs: ['good'] } },
        slow: { backup: { jobs: [{ duplicati: 'slow', timeout: extra.slowTimeout ?? 3600 }] } },
      },
    };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
  }

  function compose(name: string, port: number, bind: boolean): string {
    const web: Record<string, unknown> = {
      image: IMAGE,
      command: bind ? ['httpd', '-f', '-p', '8080', '-h', '/www'] : ['sh', '-c', `mkdir -p /www && echo 'hello from ${name}' > /www/index.html && exec httpd -f -p 8080 -h /www`],
      ports: [`127.0.0.1:${port}:8080`],
      stop_signal: 'SIGKILL',
    };
    if (bind) web.volumes = ['./data:/www'];
    return YAML.stringify({ services: { web } });
  }

  async function ok(p: Promise<{ status: number | null; stdout: string; stderr: string }>, what: string) {
    const r = await p;
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    return r;
  }

  async function active(tb: Testbed, unit: string): Promise<string> {
    return (await unitStates(tb, [unit])).get(unit)!.active;
  }

  /** Wait for a spawned process to exit (polling: the spawned child does not keep the event loop alive). */
  async function exitOf(tb: Testbed, p: Spawned): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await tb.waitFor(() => p.child.exitCode !== null || p.child.signalCode !== null, { ...DEADLINE, what: 'the backup run to exit' });
    return p.exited;
  }

  /** A backup run in the background (as systemd or a second terminal would start it). */
  function spawnBackup(tb: Testbed, stacks: string[]): Spawned {
    return tb.spawn([process.execPath, path.join(tb.appDir, 'bin', 'zoopa.js'), '--root', tb.root, 'backup', ...stacks]);
  }

  // Set up: four stacks, restic repository, stand-in, units installed; web, good and slow running, duo asleep on demand.
  before(async () => {
    const tb = bed();
    started = new Date();
    for (const s of STACKS) ports[s] = await freePort();
    standin = tb.writeFile('bin/duplicati-server-util', fs.readFileSync(STANDIN_SRC), 0o755);
    standinDir = path.join(tb.dir, 'duplicati');
    repo = path.join(tb.dir, 'restic-repo');
    pwFile = tb.writeFile('restic-password', 'correct horse battery staple\n', 0o600);
    for (const s of STACKS) tb.writeFile(path.join(stackDir(tb, s), 'compose.yaml'), compose(s, ports[s], s === 'web'));
    tb.writeFile(path.join(stackDir(tb, 'web'), 'data', 'index.html'), 'hello from the web data folder\n');
    tb.writeFile(path.join(stackDir(tb, 'web'), 'data', 'sub', 'notes.txt'), 'line one\nline two\n', 0o600);
    tb.writeFile(path.join(stackDir(tb, 'web'), 'data', 'sub', 'blob.bin'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)));
    standinJobs(tb);
    config(tb);
    await ok(tb.run(['restic', '-r', repo, '--password-file', pwFile, 'init']), 'restic init');
    await ok(tb.zoopa(['--root', tb.root, 'install']), 'zoopa install');
    await ok(tb.zoopa(['--root', tb.root, 'ondemand', 'enable', 'duo']), 'ondemand enable');
    for (const s of ['web', 'good', 'slow']) await ok(tb.systemctl(['start', `${s}-stack.service`]), `start ${s}`);
    const r = await httpGet(`http://127.0.0.1:${ports.web}/`);
    assert.equal(r.body, 'hello from the web data folder\n');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active');
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive');
  });

  it('the installed service and timer pass systemd-analyze --user verify with empty output', async () => {
    const tb = bed();
    const dir = path.join(tb.configHome, 'systemd', 'user');
    const files = ['duplicati-backup.service', 'duplicati-backup.timer'].map((f) => path.join(dir, f));
    const r = await tb.run(['systemd-analyze', '--user', 'verify', ...files]);
    assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
    assert.equal(r.status, 0);
    const timer = fs.readFileSync(files[1]!, 'utf8');
    assert.match(timer, /^OnCalendar=\*-\*-\* 03:30:00$/m);
    assert.match(timer, /^Persistent=yes$/m);
  });

  it('a running stack is stopped during its backup, up again afterwards, and the restic snapshot restores its data exactly', async () => {
    const tb = bed();
    const before = await runningContainers(tb, 'web');
    assert.deepEqual(before, ['web_web_1']);
    const r = await ok(tb.zoopa(['--root', tb.root, 'backup', 'web'], { timeoutMs: 300_000 }), 'zoopa backup web');
    assert.match(r.stdout, /^STACK +RESULT +TIME +DETAILS\nweb +ok +/);
    assert.equal(fs.readFileSync(record('web', 1), 'utf8'), '', 'no container of web ran when the Duplicati job started');
    assert.equal(fs.readFileSync(path.join(tb.home, 'ps-before-restic.txt'), 'utf8'), '', 'none ran before the restic job either');
    assert.deepEqual(await runningContainers(tb, 'web'), before, 'running again');
    assert.equal(await active(tb, 'web-stack.service'), 'active');
    assert.equal((await httpGet(`http://127.0.0.1:${ports.web}/`)).body, 'hello from the web data folder\n');

    const target = path.join(tb.dir, 'restored');
    await ok(tb.run(['restic', '-r', repo, '--password-file', pwFile, 'restore', 'latest', '--tag', 'zoopa,stack:web', '--target', target]), 'restic restore');
    const data = path.join(stackDir(tb, 'web'), 'data');
    assert.deepEqual(tree(path.join(target, data)), tree(data), 'restored data equals the original');

    const st = JSON.parse((await ok(tb.zoopa(['--root', tb.root, 'backup', 'status', '--json']), 'status')).stdout) as {
      stacks: Array<{ stack: string; last: { result: string; jobs: Array<{ engine: string; summary: string }> } | null }>;
    };
    const web = st.stacks.find((s) => s.stack === 'web')!.last!;
    assert.equal(web.result, 'ok');
    assert.deepEqual(web.jobs.map((j) => j.engine), ['duplicati', 'restic']);
    assert.match(web.jobs[1]!.summary, /^snapshot [0-9a-f]{8}: 3 files/);
    const day = new Date();
    const log = path.join(tb.root, 'duplicati', 'logs', `backup-web-${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}.log`);
    assert.match(fs.readFileSync(log, 'utf8'), /DONE in /);
  });

  it('secrets: hooks get a minimal environment without the caller\'s secrets; nothing under the log or backup state folder is readable by others', async () => {
    const tb = bed();
    const secrets = { RESTIC_PASSWORD: 'correct horse battery staple', AWS_SECRET_ACCESS_KEY: 'aws-secret-zoopa', MY_API_TOKEN: 'token-zoopa' };
    await ok(tb.zoopa(['--root', tb.root, 'backup', 'web'], { timeoutMs: 300_000, env: secrets }), 'zoopa backup web');
    const seen = fs.readFileSync(path.join(tb.home, 'hook-env.txt'), 'utf8');
    for (const [k, v] of Object.entries(secrets)) {
      assert.doesNotMatch(seen, new RegExp(`^${k}=`, 'm'), `${k} reached the hook`);
      assert.ok(!seen.includes(v), `the value of ${k} reached the hook`);
    }
    assert.match(seen, /^ZOOPA_STACK=web$/m);
    assert.match(seen, /^ZOOPA_BACKUP_PHASE=post_backup$/m);
    assert.match(seen, new RegExp(`^ZOOPA_STACK_DIR=${stackDir(tb, 'web')}$`, 'm'));
    assert.match(seen, new RegExp(`^HOME=${tb.home}$`, 'm'));
    assert.match(seen, /^PATH=/m);
    assert.match(seen, /^XDG_RUNTIME_DIR=/m);

    // Walk what the backups wrote: logs and the backup state (status, journal folder).
    const found: string[] = [];
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      found.push(p);
      if (st.isDirectory()) {
        assert.equal(st.mode & 0o007, 0, `${p} (mode ${(st.mode & 0o777).toString(8)}) can be read by others`);
        for (const n of fs.readdirSync(p)) walk(path.join(p, n));
      } else {
        assert.equal(st.mode & 0o077, 0, `${p} (mode ${(st.mode & 0o777).toString(8)}) can be read by group or others`);
      }
    };
    walk(path.join(tb.root, 'duplicati', 'logs'));
    walk(path.join(tb.stateHome, 'zoopa', 'backup'));
    assert.ok(found.some((f) => /backup-web-\d{4}-\d\d-\d\d\.log$/.test(f)), found.join('\n'));
    assert.ok(found.some((f) => f.endsWith('status.json')), found.join('\n'));
    for (const f of found.filter((x) => x.endsWith('.log'))) {
      const text = fs.readFileSync(f, 'utf8');
      for (const v of Object.values(secrets)) assert.ok(!text.includes(v), `${f} holds a secret`);
    }
  });

  it('a sleeping on-demand stack stays asleep: during the run its socket answers with the maintenance page and wakes nothing; after it, exactly as before; a concurrent run is refused', async () => {
    const tb = bed();
    const go = path.join(tb.dir, 'duo-go');
    standinJobs(tb, { duo: { until: go } });
    const startsBefore = await containerStarts(tb, 'duo');
    const run = spawnBackup(tb, ['duo']);
    try {
      await tb.waitFor(() => fs.existsSync(record('duo', 1)), { ...DEADLINE, what: 'the duo job to start' });
      assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'frozen: the socket listens on');
      const page = await httpGet('http://duo/', { socketPath: socketOf(tb, 'duo'), headers: { Accept: 'text/html' }, timeoutMs: 30_000 });
      assert.equal(page.status, 503, page.body.slice(0, 300));
      assert.equal(page.headers['x-zoopa-page'], 'maintenance');
      assert.match(String(page.headers['retry-after']), /^\d+$/);
      assert.match(page.body, /duo is not available right now.*A backup is running\./s);
      const second = await tb.zoopa(['--root', tb.root, 'backup', 'good']);
      assert.equal(second.status, 1);
      assert.match(second.stderr, new RegExp(`another backup is running: pid ${run.pid}, started \\d{4}-`));
      assert.deepEqual(await runningContainers(tb, 'good'), ['good_web_1'], 'the refused run touched nothing');
      tb.writeFile(go, '');
      const exit = await exitOf(tb, run);
      assert.equal(exit.code, 0, run.log());
    } finally {
      tb.writeFile(go, '');
      await run.stop();
    }
    assert.equal(fs.readFileSync(record('duo', 1), 'utf8'), '');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'thawed');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.service'), 'inactive', 'the maintenance proxy is gone, as no proxy ran before');
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive', 'still asleep');
    assert.deepEqual(await runningContainers(tb, 'duo'), []);
    assert.equal(await containerStarts(tb, 'duo'), startsBefore, 'never woken');
    assert.ok(fs.statSync(socketOf(tb, 'duo')).isSocket(), 'listening again (not connected to: that would wake it)');
  });

  it('an on-demand stack zoopa woke: during the run the maintenance page; backed up and started again, its run is still zoopa\'s (stopped at idle)', async () => {
    const tb = bed();
    standinJobs(tb);
    const woke = await httpGet('http://duo/', { socketPath: socketOf(tb, 'duo'), timeoutMs: 110_000 });
    assert.equal(woke.status, 200, woke.body.slice(0, 300));
    const marker = path.join(tb.runtimeDir, 'ondemand', 'duo.owned');
    const invocation = async () => (await tb.systemctl(['show', '-P', 'InvocationID', 'duo-stack.service'])).stdout.trim();
    const markerRun = () => (JSON.parse(fs.readFileSync(marker, 'utf8')) as { invocation: string }).invocation;
    // The marker names the run once its start job is done (check-stack runs after the app answers).
    await tb.waitFor(async () => markerRun() !== '' && markerRun() === (await invocation()), { ...DEADLINE, what: 'the owned marker to name the run zoopa started' });
    const before = await invocation();
    const r = await tb.zoopa(['--root', tb.root, 'backup', 'duo'], { timeoutMs: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await active(tb, 'duo-stack.service'), 'active', 'put back: running');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.service'), 'active', 'put back: its proxy runs, as before');
    const after = await invocation();
    assert.notEqual(after, before, 'the backup stopped and started it: a new run');
    assert.equal(markerRun(), after, 'the owned marker was handed on to the new run');
    assert.equal((await httpGet('http://duo/', { socketPath: socketOf(tb, 'duo'), timeoutMs: 110_000 })).status, 200);
    // Asleep again for the tests that follow.
    await ok(tb.systemctl(['stop', 'zoopa-ondemand@duo.service', 'duo-stack.service']), 'stop duo');
    await tb.waitFor(async () => (await runningContainers(tb, 'duo')).length === 0, { ...DEADLINE, what: 'duo down' });
  });

  it('failing jobs (exit status, failed result, timeout): stacks and socket put back, undo ran, exit 1, the next stack still backed up', async () => {
    const tb = bed();
    config(tb, { slowTimeout: 2, webUndo: true });
    standinJobs(tb, {
      duo: { run_error: 'Backup is disabled' },
      web: { fail: 'Disk full' },
      slow: { until: path.join(tb.dir, 'slow-go') },
    });
    const r = await tb.zoopa(['--root', tb.root, 'backup', 'duo', 'web', 'good', 'slow'], { timeoutMs: 600_000 });
    tb.writeFile(path.join(tb.dir, 'slow-go'), ''); // let the stand-in's abandoned task end
    assert.equal(r.status, 1, r.stderr);
    const rows = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => [l.split(/\s+/)[0], l]),
    );
    assert.match(rows.duo!, /FAILED .*status 2: Server error \(500\): Backup is disabled/);
    assert.match(rows.web!, /FAILED .*Duplicati reports: .* - Disk full/);
    assert.match(rows.good!, /^good +ok /);
    assert.match(rows.slow!, /FAILED .*did not finish within 2s/);

    assert.equal(fs.existsSync(path.join(tb.home, 'maintenance-on')), false, 'the undo hook ran');
    assert.match(fs.readFileSync(path.join(tb.root, 'duplicati', 'logs', fs.readdirSync(path.join(tb.root, 'duplicati', 'logs')).find((f) => f.startsWith('backup-web-'))!), 'utf8'), /undo pre_stop: rm /);
    for (const s of ['web', 'good', 'slow']) {
      assert.deepEqual(await runningContainers(tb, s), [`${s}_web_1`], `${s} running again`);
      assert.equal(await active(tb, `${s}-stack.service`), 'active');
    }
    assert.equal((await httpGet(`http://127.0.0.1:${ports.web}/`)).body, 'hello from the web data folder\n');
    assert.equal(await active(tb, 'zoopa-ondemand@duo.socket'), 'active', 'duo socket thawed');
    assert.equal(await active(tb, 'duo-stack.service'), 'inactive', 'duo still asleep');
    assert.equal(fs.readFileSync(record('good', 1), 'utf8'), '', 'good was stopped during its job');
    for (const s of STACKS) assert.equal(fs.existsSync(journal(tb, s)), false, `no journal left for ${s}`);
    config(tb);
  });

  it('SIGKILL mid-run: status reports the journal; the next run repairs it before doing anything else', async () => {
    const tb = bed();
    const go = path.join(tb.dir, 'web-go-kill');
    standinJobs(tb, { web: { until: go } });
    const runs = fs.readdirSync(standinDir).filter((f) => f.startsWith(`job-${jobId('web')}-`)).length;
    const run = spawnBackup(tb, ['web']);
    await tb.waitFor(() => fs.existsSync(record('web', runs + 1)), { ...DEADLINE, what: 'the web job to start' });
    await run.stop('SIGKILL');
    tb.writeFile(go, '');
    assert.deepEqual(await runningContainers(tb, 'web'), [], 'left stopped by the killed run');
    assert.ok(fs.existsSync(journal(tb, 'web')), 'journal left behind');

    const st = await tb.zoopa(['--root', tb.root, 'backup', 'status']);
    assert.match(st.stdout, /^web .*\[journal left: run "zoopa backup repair"\]$/m);
    const dry = await ok(tb.zoopa(['--root', tb.root, 'backup', 'repair', '--dry-run']), 'repair --dry-run');
    assert.match(dry.stdout, /^would repair web: /m);
    assert.ok(fs.existsSync(journal(tb, 'web')), 'a dry run repairs nothing');

    standinJobs(tb);
    const r = await ok(tb.zoopa(['--root', tb.root, 'backup', 'good'], { timeoutMs: 300_000 }), 'next run');
    const repairAt = r.stderr.indexOf('web: repairing after an interrupted backup');
    const goodAt = r.stderr.indexOf('good: ');
    assert.ok(repairAt >= 0, r.stderr);
    assert.ok(goodAt > repairAt, 'the repair came before anything else');
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1'], 'web running again');
    assert.equal((await httpGet(`http://127.0.0.1:${ports.web}/`)).body, 'hello from the web data folder\n');
    assert.equal(fs.existsSync(journal(tb, 'web')), false);
    assert.match(r.stdout, /^good +ok /m);
  });

  it('SIGTERM mid-run: the stack is put back before zoopa exits 143', async () => {
    const tb = bed();
    const go = path.join(tb.dir, 'web-go-term');
    standinJobs(tb, { web: { until: go } });
    const runs = fs.readdirSync(standinDir).filter((f) => f.startsWith(`job-${jobId('web')}-`)).length;
    const run = spawnBackup(tb, ['web']);
    try {
      await tb.waitFor(() => fs.existsSync(record('web', runs + 1)), { ...DEADLINE, what: 'the web job to start' });
      assert.deepEqual(await runningContainers(tb, 'web'), []);
      await run.stop('SIGTERM');
      const exit = await exitOf(tb, run);
      assert.equal(exit.code, 143, run.log());
    } finally {
      tb.writeFile(go, '');
    }
    assert.match(run.log(), /SIGTERM received/);
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1']);
    assert.equal(fs.existsSync(journal(tb, 'web')), false);
    standinJobs(tb);
  });

  it('files a container wrote as another user: restic reports an incomplete backup (exit 1); with restic.unshare it reads them', async () => {
    const tb = bed();
    const dir = stackDir(tb, 'private');
    tb.writeFile(path.join(dir, 'data', 'public.txt'), 'public\n');
    fs.chmodSync(path.join(dir, 'data'), 0o777);
    tb.writeFile(
      path.join(dir, 'compose.yaml'),
      YAML.stringify({
        services: {
          app: {
            image: IMAGE,
            user: '1000:1000',
            command: ['sh', '-c', 'echo secret > /data/secret.txt && chmod 600 /data/secret.txt && exec sleep 100000'],
            volumes: ['./data:/data'],
            stop_signal: 'SIGKILL',
          },
        },
      }),
    );
    const yamlFile = path.join(tb.root, 'zoopa.yaml');
    const cfg = YAML.parse(fs.readFileSync(yamlFile, 'utf8')) as { backup: { restic: Record<string, unknown> }; stacks: Record<string, unknown> };
    cfg.stacks.private = { backup: { jobs: [{ restic: {} }] } };
    tb.writeFile(yamlFile, YAML.stringify(cfg));
    await ok(tb.zoopa(['--root', tb.root, 'install']), 'zoopa install');
    await ok(tb.systemctl(['start', 'private-stack.service']), 'start private');
    await tb.waitFor(() => fs.existsSync(path.join(dir, 'data', 'secret.txt')), { ...DEADLINE, what: 'the container to write its file' });

    const bad = await tb.zoopa(['--root', tb.root, 'backup', 'private'], { timeoutMs: 300_000 });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stdout, /private +FAILED .*incomplete .*hint: .*restic\.unshare: true/);
    assert.deepEqual(await runningContainers(tb, 'private'), ['private_app_1'], 'running again after the failure');

    cfg.backup.restic.unshare = true;
    tb.writeFile(yamlFile, YAML.stringify(cfg));
    const good = await ok(tb.zoopa(['--root', tb.root, 'backup', 'private'], { timeoutMs: 300_000 }), 'backup with unshare');
    assert.match(good.stdout, /private +ok +.*snapshot [0-9a-f]{8}: 2 files/);
    const target = path.join(tb.dir, 'restored-private');
    await ok(tb.run(['podman', 'unshare', 'restic', '-r', repo, '--password-file', pwFile, 'restore', 'latest', '--tag', 'zoopa,stack:private', '--target', target]), 'restore');
    assert.equal(fs.readFileSync(path.join(target, dir, 'data', 'secret.txt'), 'utf8'), 'secret\n');
    assert.equal(fs.readFileSync(path.join(target, dir, 'data', 'public.txt'), 'utf8'), 'public\n');
    delete cfg.stacks.private;
    cfg.backup.restic.unshare = false;
    await ok(tb.systemctl(['stop', 'private-stack.service']), 'stop private');
    tb.writeFile(yamlFile, YAML.stringify(cfg));
  });

  it('systemctl --user start duplicati-backup.service performs the backup of backup.stacks', async () => {
    const tb = bed();
    const runs = fs.readdirSync(standinDir).filter((f) => f.startsWith(`job-${jobId('web')}-`)).length;
    const since = new Date();
    await ok(tb.systemctl(['start', 'duplicati-backup.service'], { timeoutMs: 300_000 }), 'systemctl start');
    assert.equal(await active(tb, 'duplicati-backup.service'), 'inactive', 'a oneshot that finished');
    const result = (await tb.systemctl(['show', '--property=Result', 'duplicati-backup.service'])).stdout.trim();
    assert.equal(result, 'Result=success');
    assert.equal(fs.readFileSync(record('web', runs + 1), 'utf8'), '', 'web stopped at job time');
    const st = JSON.parse(fs.readFileSync(path.join(tb.stateHome, 'zoopa', 'backup', 'status.json'), 'utf8')) as { stacks: Record<string, { result: string; finishedAt: string }> };
    assert.equal(st.stacks.web!.result, 'ok');
    assert.ok(Date.parse(st.stacks.web!.finishedAt) >= since.getTime() - 1000);
    assert.deepEqual(await runningContainers(tb, 'web'), ['web_web_1']);
    assert.match(tb.managerLog(), /web: done in /);
    assert.ok(started);
  });
});
