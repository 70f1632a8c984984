/**
 * zoopa doctor through the real CLI, in an isolated world with no user manager
 * behind it: the checks that need none still report, each with its fix.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { isolatedEnv, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

interface CheckResult {
  check: string;
  verdict: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

test('doctor reads every on-demand env file with the proxy rules and names a bad one', async () => {
  const base = tmpDir();
  const env = isolatedEnv(base);
  const root = path.join(base, 'stacks');
  writeFiles(root, { 'web/compose.yaml': 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n' });
  writeFiles(path.join(env.XDG_CONFIG_HOME!, 'zoopa-ondemand'), {
    'web.env': 'ZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n',
    'cloud.env': 'ZOOPA_UPSTREAM=127.0.0.1:8081\nZOOPA_IDLE_TIMEOUT=soon\n',
  });
  const r = await zoopa(['--root', root, 'doctor', '--json'], { env });
  assert.equal(r.status, 1, 'a failing check makes doctor exit 1');
  const results = JSON.parse(r.stdout) as CheckResult[];
  const envCheck = results.find((c) => c.check === 'on-demand env files');
  assert.ok(envCheck, r.stdout);
  assert.equal(envCheck.verdict, 'fail');
  assert.match(envCheck.detail, /cloud\.env: .*ZOOPA_IDLE_TIMEOUT.*soon/);
  assert.doesNotMatch(envCheck.detail, /web\.env/, 'the original README example (with its trailing comment) is valid');
  assert.ok(envCheck.fix);
  const manager = results.find((c) => c.check === 'systemd user manager');
  assert.equal(manager?.verdict, 'fail', 'no manager in this isolated world');
  assert.ok(manager?.fix);
  assert.equal(results.find((c) => c.check === 'stacks root')?.verdict, 'ok');
});
