/**
 * Backup secrets, with real processes and files: a repository URL's credentials
 * never reach argv, errors or logs (real restic against a local HTTP server that
 * has no repository); hooks run with a minimal environment (a real hook dumps
 * what it sees); per-stack logs are 0600 and redacted; ping warnings hide the
 * URL's secret path; doctor warns about a password file others can read.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupJournalCheck, resticPasswordFileCheck } from '../../src/backup/doctor.js';
import { ResticEngine } from '../../src/backup/engines/restic.js';
import { runHookCommand } from '../../src/backup/hooks.js';
import { ping } from '../../src/backup/ping.js';
import { redactPingUrl, redactUrls } from '../../src/backup/redact.js';
import { StackLog } from '../../src/backup/status.js';
import { loadProject } from '../../src/stacks/discover.js';
import { isolatedEnv, tmpDir, writeFiles } from '../helpers/cli.js';

describe('redaction', () => {
  test('a URL keeps its user and host; its password and query string become ***', () => {
    assert.equal(redactUrls('rest:https://me:s3cret@backup.example:8000/repo'), 'rest:https://me:***@backup.example:8000/repo');
    assert.equal(redactUrls('s3:https://s3.example/bucket?access_key=AK&secret=SK done'), 's3:https://s3.example/bucket?*** done');
    assert.equal(redactUrls('/srv/restic and sftp:me@host:/srv/repo'), '/srv/restic and sftp:me@host:/srv/repo', 'nothing secret: unchanged');
    assert.equal(redactPingUrl('https://hc-ping.com/0d3a-uuid', '/fail'), 'https://hc-ping.com/***/fail');
  });
});

describe('restic repository credentials', () => {
  let server: http.Server;
  let url: string;
  const hits: string[] = [];
  before(async () => {
    // Answers 404 to everything: restic finds no repository there and fails at once.
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `rest:http://zoopa:s3cret-pw@127.0.0.1:${(server.address() as { port: number }).port}/repo?token=t0ken`;
  });
  after(() => server.close());

  test('the repository goes to restic in its environment, never in argv; the error names neither password nor token', async () => {
    const base = tmpDir('zoopa-restic-url-');
    const engine = new ResticEngine({ command: 'restic', repository: url, env: { ...process.env, RESTIC_PASSWORD: 'x', RESTIC_CACHE_DIR: path.join(base, 'cache') } });
    assert.ok(!engine.argv(['snapshots']).some((a) => a.includes('127.0.0.1')), 'not in argv');
    assert.equal(engine.childEnv().RESTIC_REPOSITORY, url);
    const lines: string[] = [];
    const err = await engine
      .prepare({ engine: 'restic', paths: [base], tags: [], exclude: [], timeoutSec: 60, pathsFrom: 'test' }, { stack: 'web', stackDir: base, log: (l) => lines.push(l) })
      .then(
        () => assert.fail('prepare succeeded'),
        (e: Error) => e,
      );
    assert.ok(hits.some((h) => h.startsWith('/repo')), 'restic did ask the server');
    const text = `${err.message} ${(err as { hint?: string }).hint ?? ''} ${lines.join('\n')}`;
    assert.match(err.message, /cannot be opened/);
    assert.doesNotMatch(text, /s3cret-pw|t0ken/);
  });
});

describe('hook environment', () => {
  test('a hook sees the stack, the phase, the paths and PATH/HOME/XDG_RUNTIME_DIR/LANG, not the caller\'s secrets', async () => {
    const dir = tmpDir('zoopa-hook-env-');
    const out = path.join(dir, 'env.txt');
    const caller = { PATH: process.env.PATH, HOME: dir, XDG_RUNTIME_DIR: dir, LANG: 'C.UTF-8', RESTIC_PASSWORD: 'pw', RESTIC_REPOSITORY: 'rest:https://u:p@h/', AWS_SECRET_ACCESS_KEY: 'sk', MY_TOKEN: 't' };
    await runHookCommand(['sh', '-c', `env > '${out}'`], 'pre_backup', 60, {
      info: { stack: 'web', stackDir: dir, unit: 'web-stack.service', project: 'web' },
      env: caller,
      log: () => {},
    });
    const seen = Object.fromEntries(
      fs
        .readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    for (const k of ['RESTIC_PASSWORD', 'RESTIC_REPOSITORY', 'AWS_SECRET_ACCESS_KEY', 'MY_TOKEN']) assert.equal(seen[k], undefined, `${k} reached the hook`);
    assert.equal(seen.ZOOPA_STACK, 'web');
    assert.equal(seen.ZOOPA_BACKUP_PHASE, 'pre_backup');
    assert.equal(seen.ZOOPA_STACK_DIR, dir);
    assert.equal(seen.ZOOPA_UNIT, 'web-stack.service');
    assert.equal(seen.HOME, dir);
    assert.equal(seen.XDG_RUNTIME_DIR, dir);
    assert.equal(seen.LANG, 'C.UTF-8');
    assert.equal(seen.PATH, process.env.PATH);
  });
});

describe('per-stack logs', () => {
  test('created 0600 in a 0700 folder, an older 0644 log narrowed to 0600, URL credentials redacted', () => {
    const dir = path.join(tmpDir('zoopa-stacklog-'), 'duplicati', 'logs');
    const file = path.join(dir, 'backup-web-2026-12-02.log');
    new StackLog(file).line('restic: repository rest:https://me:s3cret@host/repo');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dir).mode & 0o077, 0);
    assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /s3cret/);
    assert.match(fs.readFileSync(file, 'utf8'), /rest:https:\/\/me:\*\*\*@host\/repo\n$/);
    const old = path.join(dir, 'backup-db-2026-12-01.log');
    fs.writeFileSync(old, 'from an older zoopa\n', { mode: 0o644 });
    fs.chmodSync(old, 0o644);
    new StackLog(old).line('next run');
    assert.equal(fs.statSync(old).mode & 0o777, 0o600);
  });
});

describe('ping warnings', () => {
  test('an unreachable ping URL: the warning shows its origin, not its secret path', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const warning = await ping(`http://127.0.0.1:${port}/ping/0d3a-secret-uuid`, 'fail', 'body', 5);
    assert.ok(warning);
    assert.match(warning, new RegExp(`^ping http://127\\.0\\.0\\.1:${port}/\\*\\*\\*/fail: `));
    assert.doesNotMatch(warning, /0d3a-secret-uuid/);
  });
});

describe('doctor: backup checks only read', () => {
  test('a restic password file others can read is a warning with the chmod; 0600 is ok', async () => {
    const base = tmpDir('zoopa-doctor-pw-');
    const root = path.join(base, 'stacks');
    writeFiles(root, { 'zoopa.yaml': 'backup:\n  restic: { repository: repo, password_file: pw }\n', 'web/compose.yaml': 'services:\n  app:\n    image: x\n' });
    const env = isolatedEnv(base);
    const project = loadProject({ root, env });
    const pw = path.join(root, 'pw');
    fs.writeFileSync(pw, 'secret\n', { mode: 0o644 });
    fs.chmodSync(pw, 0o644);
    const [loose] = await resticPasswordFileCheck({ project, env });
    assert.equal(loose?.verdict, 'warn');
    assert.match(loose!.detail, /mode 0644\) can be read or changed by its group and other users/);
    assert.equal(loose!.fix, `chmod 600 ${pw}`);
    fs.chmodSync(pw, 0o600);
    const [tight] = await resticPasswordFileCheck({ project, env });
    assert.equal(tight?.verdict, 'ok');
    assert.deepEqual(await resticPasswordFileCheck({ project: undefined, env }), [], 'no password file configured: no check');
  });

  test('a journal left behind: the check names it and the repair command, and changes nothing', async () => {
    const base = tmpDir('zoopa-doctor-journal-');
    const env = isolatedEnv(base);
    const file = path.join(env.XDG_STATE_HOME!, 'zoopa', 'backup', 'journal', 'web.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const text = JSON.stringify({ version: 1, stack: 'web', prior: { containers: [] }, stopped: true, frozen: false, pendingUndo: [], pid: 1, startedAt: 'x' });
    fs.writeFileSync(file, text);
    const c = await backupJournalCheck({ env });
    assert.equal(c.verdict, 'fail');
    assert.match(c.fix ?? '', /zoopa backup repair, or zoopa doctor --fix/);
    assert.equal(fs.readFileSync(file, 'utf8'), text);
  });
});
