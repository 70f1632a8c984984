/** The names Zoopa shares with users and systemd (the seed README's contract), from src/names.ts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import * as n from '../../src/names.js';

test('unit names are the original system\'s', () => {
  assert.equal(n.stackUnitName('web'), 'web-stack.service');
  assert.equal(n.stackOfUnitName('web-stack.service'), 'web');
  assert.equal(n.stackOfUnitName('web.service'), undefined);
  assert.equal(n.ondemandSocketUnit('web'), 'zoopa-ondemand@web.socket');
  assert.equal(n.ondemandServiceUnit('web'), 'zoopa-ondemand@web.service');
  assert.equal(n.ondemandListenerSocketUnit('web', 'api'), 'zoopa-ondemand@web.api.socket');
  assert.ok(n.ondemandListenerSocketUnit('web', 'api').startsWith(n.ondemandListenerPrefix('web')));
  assert.equal(n.ONDEMAND_DIR_UNIT, 'zoopa-ondemand-dir.service');
  assert.equal(n.ONDEMAND_SOCKET_TEMPLATE, 'zoopa-ondemand@.socket');
  assert.equal(n.ONDEMAND_SERVICE_TEMPLATE, 'zoopa-ondemand@.service');
  assert.equal(n.ONDEMAND_SOCKET_PATTERN, 'zoopa-ondemand@*.socket');
  assert.equal(n.STACK_UNIT_PATTERN, '*-stack.service');
  assert.equal(n.llamaUnitName('qwen'), 'qwen.service');
  assert.equal(n.backupServiceUnit('duplicati-backup'), 'duplicati-backup.service');
  assert.equal(n.backupTimerUnit('duplicati-backup'), 'duplicati-backup.timer');
});

test('env names and defaults are the original system\'s', () => {
  assert.deepEqual(
    [n.ENV_UPSTREAM, n.ENV_IDLE_TIMEOUT, n.ENV_STACK_UNIT, n.ENV_IDLE_MODE, n.ENV_READY, n.ENV_START_TIMEOUT, n.ENV_STOP_CHECK],
    ['ZOOPA_UPSTREAM', 'ZOOPA_IDLE_TIMEOUT', 'ZOOPA_STACK_UNIT', 'ZOOPA_IDLE_MODE', 'ZOOPA_READY', 'ZOOPA_START_TIMEOUT', 'ZOOPA_STOP_CHECK'],
  );
  assert.equal(n.listenerEnvName('ws-v2'), 'ZOOPA_UPSTREAM_WS_V2');
  assert.equal(n.DEFAULT_IDLE_TIMEOUT_S, 600);
});

test('the name rule: compose project names, safe as unit names', () => {
  for (const ok of ['web', 'a', '0x', 'my_stack-2']) assert.ok(n.isName(ok), ok);
  for (const bad of ['', 'Web', '-web', '_web', 'a b', 'a.b', 'a/b', 'ä']) assert.ok(!n.isName(bad), bad);
  assert.equal(n.checkStackArgument('web'), 'web');
  assert.throws(() => n.checkStackArgument('../etc'), (e: unknown) => e instanceof InputError && e.key === 'stack' && e.value === '../etc' && e.hint === n.NAME_HINT);
});
