/**
 * Stacks that need stacks (`requires`, `stop_when_unneeded`) through the real CLI:
 * the unit lines they render, and bad input (exit 2, a message naming the key, nothing
 * written), in an isolated HOME with no systemd behind it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseUnitText } from '../../src/unitfile/model.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';
const STACKS = { 'app/compose.yaml': COMPOSE, 'api/compose.yaml': COMPOSE, 'db/compose.yaml': COMPOSE, 'cache/compose.yaml': COMPOSE, 'duplicati/compose.yaml': COMPOSE };

function unitKeys(text: string, key: string): string[] {
  return (parseUnitText(text).get('Unit') ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

test('requires renders Requires= and After= on the stack unit; stop_when_unneeded renders StopWhenUnneeded=yes', async () => {
  const base = tmpDir();
  const root = path.join(base, 'stacks');
  writeFiles(root, {
    ...STACKS,
    'zoopa.yaml': 'stacks:\n  app:\n    requires: [db, cache]\n  api:\n    requires: [db]\n  db:\n    stop_when_unneeded: true\n',
  });
  const out = path.join(base, 'out');
  const r = await zoopa(['--root', root, 'render', '--out', out], { env: isolatedEnv(base) });
  assert.equal(r.status, 0, r.stderr);
  const unit = (n: string) => fs.readFileSync(path.join(out, `${n}-stack.service`), 'utf8');
  assert.deepEqual(unitKeys(unit('app'), 'Requires'), ['db-stack.service', 'cache-stack.service']);
  assert.deepEqual(unitKeys(unit('app'), 'After'), ['db-stack.service', 'cache-stack.service']);
  assert.deepEqual(unitKeys(unit('api'), 'Requires'), ['db-stack.service']);
  assert.deepEqual(unitKeys(unit('db'), 'StopWhenUnneeded'), ['yes']);
  assert.deepEqual(unitKeys(unit('db'), 'Requires'), []);
  assert.deepEqual(unitKeys(unit('cache'), 'StopWhenUnneeded'), []);
  assert.deepEqual(unitKeys(unit('duplicati'), 'Requires'), []);
});

interface Case {
  name: string;
  yaml: string;
  args: string[];
  expect: RegExp[];
}

const cases: Case[] = [
  {
    name: 'an unknown stack in requires',
    yaml: 'stacks:\n  app:\n    requires: [dbb]\n',
    args: ['install'],
    expect: [/zoopa\.yaml: stacks\.app\.requires: no stack "dbb"/, /hint: stacks here: api, app, cache, db, duplicati/],
  },
  {
    name: 'a cycle a → b → a',
    yaml: 'stacks:\n  app:\n    requires: [db]\n  db:\n    requires: [app]\n',
    args: ['render', '--dry-run'],
    expect: [/stacks\.app\.requires: a cycle: app → db → app/, /hint: systemd cannot start stacks that wait for each other/],
  },
  {
    name: 'a longer cycle',
    yaml: 'stacks:\n  app:\n    requires: [api]\n  api:\n    requires: [db]\n  db:\n    requires: [app]\n',
    args: ['install', '--dry-run'],
    expect: [/a cycle: api → db → app → api/],
  },
  {
    name: 'a stack requiring itself',
    yaml: 'stacks:\n  db:\n    requires: [db]\n',
    args: ['install'],
    expect: [/stacks\.db\.requires: db requires itself/, /hint:/],
  },
  {
    name: 'a rootless stack requiring the rootful one',
    yaml: 'stacks:\n  duplicati:\n    rootful: true\n  app:\n    requires: [duplicati]\n',
    args: ['install'],
    expect: [/stacks\.app\.requires: app cannot require duplicati: duplicati is rootful and app is rootless/, /hint: run both rootless/],
  },
  {
    name: 'a stack requiring a disabled one',
    yaml: 'stacks:\n  db:\n    enabled: false\n  app:\n    requires: [db]\n',
    args: ['install'],
    expect: [/stacks\.app\.requires: stack db has enabled: false/, /hint: enable db/],
  },
  {
    name: 'stop_when_unneeded on a stack nobody requires',
    yaml: 'stacks:\n  db:\n    stop_when_unneeded: true\n',
    args: ['install'],
    expect: [/stacks\.db\.stop_when_unneeded: no stack requires db, so systemd would stop it as soon as it started/, /hint: add db to the requires/],
  },
  {
    name: 'stop_when_unneeded on a stack that is also on demand',
    yaml: 'stacks:\n  app:\n    requires: [db]\n  db:\n    stop_when_unneeded: true\n    ondemand: { upstream: 8080 }\n',
    args: ['install'],
    expect: [/stacks\.db\.stop_when_unneeded: db is also on demand/, /hint: let the on-demand idle timeout/],
  },
  {
    name: 'requires that is not a list of names',
    yaml: 'stacks:\n  app:\n    requires: db\n',
    args: ['install'],
    expect: [/line 3: stacks\.app\.requires: expected a list, got "db"/],
  },
  {
    name: 'stop_when_unneeded that is not a boolean',
    yaml: 'stacks:\n  app:\n    requires: [db]\n  db:\n    stop_when_unneeded: "yes"\n',
    args: ['install'],
    expect: [/stacks\.db\.stop_when_unneeded: expected true or false/, /hint: write true or false/],
  },
];

for (const c of cases) {
  test(`bad input: ${c.name} → exit 2, the key named, nothing written`, async () => {
    const base = tmpDir();
    const root = path.join(base, 'stacks');
    writeFiles(root, { ...STACKS, 'zoopa.yaml': c.yaml });
    const env = isolatedEnv(base);
    const before = snapshot(base);
    for (const args of [c.args, ['status']]) {
      const r = await zoopa(['--root', root, ...args], { env });
      assert.equal(r.status, 2, `${args.join(' ')}: exit status (stderr: ${r.stderr})`);
      for (const re of c.expect) assert.match(r.stderr, re);
      assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error: ')).length, 1, 'exactly one error');
    }
    assert.deepEqual(snapshot(base), before, 'nothing written');
  });
}

test('a backup of a required stack: its dependents, furthest first, each with the stack it requires on the chain', async () => {
  const { loadProject } = await import('../../src/stacks/discover.js');
  const { dependentPlans, dependentSteps } = await import('../../src/backup/dependents.js');
  const base = tmpDir();
  const root = path.join(base, 'stacks');
  writeFiles(root, {
    ...STACKS,
    'zoopa.yaml': 'stacks:\n  api:\n    requires: [db]\n  app:\n    requires: [api, cache]\n    ondemand: { upstream: 8080 }\n  cache:\n    requires: [db]\n',
  });
  const project = loadProject({ root, env: {} });
  const db = project.stacks.find((s) => s.name === 'db')!;
  const plans = dependentPlans(project.stacks, db);
  assert.deepEqual(plans.map((p) => [p.name, p.requires, p.freeze]), [
    ['app', 'api', true],
    ['api', 'db', false],
    ['cache', 'db', false],
  ]);
  assert.deepEqual(dependentPlans(project.stacks, project.stacks.find((s) => s.name === 'app')!), []);
  const steps = dependentSteps('db', 'db-stack.service', plans);
  assert.match(steps.beforeStop.join('\n'), /stop them first, the furthest first: app-stack\.service, api-stack\.service, cache-stack\.service/);
  assert.match(steps.beforeStop.join('\n'), /freeze their on-demand activation: zoopa-ondemand@app\.socket$/m);
});
