import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import { ConfigError, InputError } from '../../src/errors.js';

const FILE = '/srv/stacks/zoopa.yaml';

function configError(text: string): ConfigError {
  try {
    parseConfigText(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.ok(e instanceof InputError);
    assert.equal(e.exitStatus, 2);
    assert.equal(e.file, FILE);
    return e;
  }
  assert.fail('expected an error');
}

test('defaults: no stacks section is fine', () => {
  const c = parseConfigText('', FILE);
  assert.deepEqual(c.stacks, {});
});

test('stack settings parse, durations become seconds', () => {
  const c = parseConfigText('stacks:\n  web:\n    rootful: true\n    start_timeout: 5m\n    stop_timeout: 90\n    files: [extra.yaml]\n', FILE);
  assert.equal(c.stacks.web?.rootful, true);
  assert.equal(c.stacks.web?.start_timeout, 300);
  assert.equal(c.stacks.web?.stop_timeout, 90);
  assert.deepEqual(c.stacks.web?.files, ['extra.yaml']);
  assert.equal(c.stacks.web?.enabled, true);
});

test('an unknown key names file, line and key, and suggests the right one', () => {
  const e = configError('stacks:\n  web:\n    rootfull: true\n');
  assert.equal(e.key, 'stacks.web.rootfull');
  assert.match(e.message, /line 3: stacks\.web\.rootfull: unknown key/);
  assert.match(e.hint ?? '', /did you mean "rootful"/);
});

test('a wrong type names the key, the value and what was expected', () => {
  const e = configError('stacks:\n  web:\n    rootful: "yes"\n');
  assert.equal(e.key, 'stacks.web.rootful');
  assert.equal(e.value, 'yes');
  assert.match(e.message, /line 3: stacks\.web\.rootful: expected true or false, got "yes"/);
  assert.match(e.hint ?? '', /true or false/);
});

test('a bad duration says how to write one', () => {
  const e = configError('stacks:\n  web:\n    start_timeout: soon\n');
  assert.equal(e.key, 'stacks.web.start_timeout');
  assert.match(e.message, /soon/);
});

test('a YAML syntax error names the line', () => {
  const e = configError('stacks:\n  web:\n    rootful: true\n   bad: [\n');
  assert.match(e.message, /YAML syntax error at line \d+/);
  assert.ok(e.hint);
});

test('durations: seconds and systemd-style spans', () => {
  assert.equal(parseDuration('600'), 600);
  assert.equal(parseDuration(90), 90);
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('500ms'), 0.5);
  assert.equal(parseDuration('2 d'), 172800);
  assert.equal(parseDuration('ten'), undefined);
  assert.equal(parseDuration('10x'), undefined);
  assert.equal(parseDuration(''), undefined);
  assert.equal(parseDuration(-1), undefined);
});
