/**
 * Bad input through the real CLI: one message naming the file/key/value, a
 * hint, exit status 2, and nothing written. These run with an empty runtime
 * folder and no systemd behind it: reaching systemd would fail differently
 * (exit 1), so exit 2 also proves zoopa stopped before it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

interface Case {
  name: string;
  files: Record<string, string>;
  args: string[];
  /** Every pattern must appear in stderr. */
  expect: RegExp[];
}

const cases: Case[] = [
  { name: 'a stack folder named with a space', files: { 'my app/compose.yaml': COMPOSE }, args: ['install'], expect: [/"my app"/, /cannot be a stack name/, /hint: rename the folder/] },
  { name: 'a stack folder named with ;', files: { 'a;b/compose.yaml': COMPOSE }, args: ['render'], expect: [/"a;b"/, /hint:/] },
  { name: 'zoopa.yaml with an unknown key', files: { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  web:\n    rootfull: true\n' }, args: ['install'], expect: [/zoopa\.yaml: line 3: stacks\.web\.rootfull: unknown key/, /did you mean "rootful"/] },
  { name: 'zoopa.yaml with a wrong type', files: { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  web:\n    start_timeout: [1]\n' }, args: ['install', '--dry-run'], expect: [/zoopa\.yaml: line 3: stacks\.web\.start_timeout/, /\[1\]/] },
  { name: 'zoopa.yaml with a YAML syntax error', files: { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  web: {rootful: true\n' }, args: ['render'], expect: [/zoopa\.yaml: YAML syntax error at line \d+/, /hint:/] },
  { name: 'a stack in zoopa.yaml without a folder', files: { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  wbe: {}\n' }, args: ['install'], expect: [/stacks\.wbe: no folder wbe\//, /hint:/] },
  { name: 'a compose file that does not parse', files: { 'web/compose.yaml': 'services:\n  app:\n    image: [unclosed\n' }, args: ['install'], expect: [/web\/compose\.yaml: compose file does not parse \(line \d+/, /hint:/] },
  { name: 'two rootful stacks', files: { 'a/compose.yaml': COMPOSE, 'b/compose.yaml': COMPOSE, 'zoopa.yaml': 'stacks:\n  a: {rootful: true}\n  b: {rootful: true}\n' }, args: ['install'], expect: [/more than one stack is rootful: a, b/, /hint: only one stack/] },
  { name: 'an unknown stack on the command line', files: { 'web/compose.yaml': COMPOSE }, args: ['up', 'nope'], expect: [/unknown stack "nope"/, /hint: stacks in .*: web/] },
  { name: 'an unknown option', files: { 'web/compose.yaml': COMPOSE }, args: ['install', '--bogus'], expect: [/unknown option '--bogus'/, /hint:/] },
];

for (const c of cases) {
  test(`bad input: ${c.name} → exit 2, a clear message, nothing written`, async () => {
    const base = tmpDir();
    const root = path.join(base, 'stacks');
    writeFiles(root, c.files);
    const env = isolatedEnv(base);
    const before = snapshot(base);
    const r = await zoopa(['--root', root, ...c.args], { env });
    assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
    for (const re of c.expect) assert.match(r.stderr, re);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error: ')).length, 1, 'exactly one error');
    assert.deepEqual(snapshot(base), before, 'nothing written');
  });
}

test('bad input: a missing root → exit 2 naming the folder', async () => {
  const base = tmpDir();
  const r = await zoopa(['--root', path.join(base, 'nowhere'), 'status'], { env: isolatedEnv(base) });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /stacks root .*nowhere does not exist \(from --root\)/);
  assert.match(r.stderr, /hint:/);
  assert.ok(!fs.existsSync(path.join(base, 'nowhere')));
});
