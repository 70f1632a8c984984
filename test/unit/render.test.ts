/**
 * Rendering, case by case: each folder under test/unit/render-cases holds a
 * stacks root and an `expect` file of exact values, read by the shared interpreter
 * test/helpers/unit-expect.ts (its comment describes the lines). Every case is
 * rendered through the real CLI into a root whose path has a space and a `%`,
 * twice (byte-identical), and checked by the real `systemd-analyze --user verify`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/exec.js';
import { escapeSpecifiers } from '../../src/unitfile/model.js';
import { which } from '../../src/unitfile/tools.js';
import { isolatedEnv, snapshot, tmpDir, zoopa, ZOOPA } from '../helpers/cli.js';
import { checkExpect } from '../helpers/unit-expect.js';

const CASES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'unit', 'render-cases');

for (const name of fs.readdirSync(CASES).sort()) {
  describe(`render case ${name}`, () => {
    const base = tmpDir();
    const root = path.join(base, 'my stacks 100%');
    fs.cpSync(path.join(CASES, name), root, { recursive: true });
    const env = isolatedEnv(base);
    const placeholders = {
      root: escapeSpecifiers(root),
      compose: which('podman-compose') ?? '/usr/bin/podman-compose',
      sudo: which('sudo') ?? '/usr/bin/sudo',
      node: fs.realpathSync(process.execPath),
      zoopa: ZOOPA,
    };

    test('renders byte-identically twice and matches its expectations', async () => {
      const first = await zoopa(['--root', root, 'render'], { env });
      assert.equal(first.status, 0, first.stderr);
      const before = snapshot(path.join(root, 'systemd'));
      const second = await zoopa(['--root', root, 'render', '--json'], { env });
      assert.equal(second.status, 0, second.stderr);
      assert.deepEqual(snapshot(path.join(root, 'systemd')), before);
      const plan = JSON.parse(second.stdout) as { items: Array<{ action: string }> };
      assert.ok(plan.items.every((i) => i.action === 'unchanged'), 'second render changes nothing');

      const units = new Map([...before].map(([p, text]) => [path.basename(p), text]));
      checkExpect(fs.readFileSync(path.join(root, 'expect'), 'utf8'), { units, placeholders });
    });

    test('passes systemd-analyze --user verify with empty output', async () => {
      const files = fs.readdirSync(path.join(root, 'systemd')).map((f) => path.join(root, 'systemd', f));
      const r = await run(['systemd-analyze', '--user', 'verify', ...files], { env, reject: false });
      assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
      assert.equal(r.status, 0);
    });
  });
}
