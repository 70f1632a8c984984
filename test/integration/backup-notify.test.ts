/**
 * Backup notifications for real: a rootless podman stack backed up with the real
 * restic on the test bed; a local HTTP receiver (node's http server on 127.0.0.1,
 * standing in for an ntfy server and a webhook endpoint) records what arrives.
 *
 * Issue 12's notification acceptance:
 *  - a failed backup (a failing verify hook) sends one webhook (JSON: stack,
 *    result, duration, error) and one ntfy POST (Title/Priority/Tags headers);
 *  - a successful one sends nothing by default (`on: [failure]`);
 *  - a target that never answers is given up after its timeout: the backup ends
 *    with its own result, a warning names the target with its secret path redacted.
 *
 *   npm run build && node scripts/run-tests.mjs backup-notify
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { IMAGE, useTestbed, type Testbed } from '../testbed/index.js';
import { runningContainers } from './ondemand-lib.js';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('zoopa backup notifications on the test bed', () => {
  const bed = useTestbed({ name: 'notify' });
  const received: Received[] = [];
  /** Requests to /hang are held open and never answered. */
  const held: http.ServerResponse[] = [];
  let server: http.Server;
  let base: string;
  let repo: string;
  let pwFile: string;

  const failFlag = (tb: Testbed) => path.join(tb.home, 'fail-verify');

  async function ok(p: Promise<{ status: number | null; stdout: string; stderr: string }>, what: string) {
    const r = await p;
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    return r;
  }

  function config(tb: Testbed, notify: unknown[]): void {
    const cfg = {
      backup: { restic: { repository: repo, password_file: pwFile }, notify },
      stacks: { box: { backup: { jobs: [{ restic: {} }], hooks: { verify: { run: ['test', '!', '-e', failFlag(tb)] } } } } },
    };
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), YAML.stringify(cfg));
  }

  const backup = (tb: Testbed) => tb.zoopa(['--root', tb.root, 'backup', 'box'], { timeoutMs: 300_000 });

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url?.startsWith('/hang')) {
          held.push(res);
          return;
        }
        received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const tb = bed();
    const dir = path.join(tb.root, 'box');
    repo = path.join(tb.dir, 'restic-repo');
    pwFile = tb.writeFile('restic-password', 'correct horse battery staple\n', 0o600);
    tb.writeFile(path.join(dir, 'data', 'file.txt'), 'some data\n');
    tb.writeFile(
      path.join(dir, 'compose.yaml'),
      YAML.stringify({ services: { app: { image: IMAGE, command: ['sleep', '100000'], volumes: ['./data:/data'], stop_signal: 'SIGKILL' } } }),
    );
    config(tb, [{ ntfy: `${base}/zoopa-secret-topic` }, { webhook: `${base}/hook/secret-token` }]);
    await ok(tb.run(['restic', '-r', repo, '--password-file', pwFile, 'init']), 'restic init');
    await ok(tb.zoopa(['--root', tb.root, 'install']), 'zoopa install');
    await ok(tb.systemctl(['start', 'box-stack.service']), 'start box');
  });

  after(async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a successful backup sends nothing by default', async () => {
    const tb = bed();
    const r = await ok(backup(tb), 'backup');
    assert.match(r.stdout, /box +ok +/);
    assert.deepEqual(received, []);
  });

  it('a failed backup sends one webhook (JSON) and one ntfy message (title, priority, tags)', async () => {
    const tb = bed();
    tb.writeFile(failFlag(tb), '');
    const r = await backup(tb);
    fs.rmSync(failFlag(tb));
    assert.equal(r.status, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /box +FAILED /);
    assert.deepEqual(received.map((x) => x.path).sort(), ['/hook/secret-token', '/zoopa-secret-topic']);
    const hook = received.find((x) => x.path === '/hook/secret-token')!;
    assert.match(String(hook.headers['content-type']), /^application\/json/);
    const body = JSON.parse(hook.body) as Record<string, unknown>;
    assert.equal(body.stack, 'box');
    assert.equal(body.result, 'failed');
    assert.equal(typeof body.duration, 'number');
    assert.match(String(body.error), /verify/);
    const ntfy = received.find((x) => x.path === '/zoopa-secret-topic')!;
    assert.equal(ntfy.headers['title'], 'zoopa backup box: failed');
    assert.equal(ntfy.headers['priority'], 'high');
    assert.equal(ntfy.headers['tags'], 'warning');
    assert.match(ntfy.body, /^backup of box failed: .*verify/);
    assert.deepEqual(await runningContainers(tb, 'box'), ['box_app_1'], 'put back');
  });

  it('a target that never answers: given up after its timeout, a warning with the URL redacted, the backup result stands', async () => {
    const tb = bed();
    received.length = 0;
    config(tb, [{ webhook: `${base}/hang/secret-token`, timeout: 1, on: ['failure', 'success'] }, { ntfy: `${base}/zoopa-secret-topic`, on: ['success'] }]);
    const r = await ok(backup(tb), 'backup');
    assert.match(r.stdout, /box +ok +/);
    await tb.waitFor(() => held.length === 1, { timeoutMs: 60_000, intervalMs: 100, what: 'the held request to arrive' });
    assert.match(r.stderr, /box: notification to webhook http:\/\/127\.0\.0\.1:\d+\/\*\*\*: no answer within 1s \(the backup result stands\)/);
    assert.doesNotMatch(r.stderr + r.stdout, /secret-token|secret-topic/, 'no secret path in the output');
    assert.deepEqual(received.map((x) => x.path), ['/zoopa-secret-topic'], 'on: [success] sends on success');
    assert.match(received[0]!.body, /^backup of box done in \d+s \(snapshot [0-9a-f]{8}\)$/);
  });
});
