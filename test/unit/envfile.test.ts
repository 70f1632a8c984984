/** The env-file codec (src/envfile.ts): parse, format with quoting, edit in place. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { editEnvText, formatEnvLine, parseEnvText } from '../../src/envfile.js';
import { EnvFileError } from '../../src/errors.js';

const parse = (text: string): Array<[string, string]> => parseEnvText(text, '/x/web.env').map((e) => [e.key, e.value]);

describe('parse', () => {
  test('KEY=VALUE, export, quotes, comments, a trailing unquoted comment', () => {
    const text = '# c\n; c\n\nA=1\nexport B = two\nC="x # y"\nD=\'$lit\'\nE=v   # note\nF="a\\"b\\\\c\\$d\\nE"\n';
    assert.deepEqual(parse(text), [
      ['A', '1'],
      ['B', 'two'],
      ['C', 'x # y'],
      ['D', '$lit'],
      ['E', 'v'],
      ['F', 'a"b\\c$d\nE'],
    ]);
  });

  test('a line that is no assignment names the file, line and value', () => {
    assert.throws(
      () => parseEnvText('A=1\nnot an assignment\n', '/x/web.env'),
      (e: unknown) => e instanceof EnvFileError && e.file === '/x/web.env' && e.key === 'line 2' && e.value === 'not an assignment' && !!e.hint,
    );
  });
});

describe('format', () => {
  test('safe values stay bare; others are double-quoted with \\ " $ ` escaped', () => {
    assert.equal(formatEnvLine('A', '127.0.0.1:80'), 'A=127.0.0.1:80');
    assert.equal(formatEnvLine('A', '[::1]:80'), 'A=[::1]:80');
    assert.equal(formatEnvLine('A', ''), 'A=');
    assert.equal(formatEnvLine('A', '/x/check --a'), 'A="/x/check --a"');
    assert.equal(formatEnvLine('A', 'a"b$c`d\\'), 'A="a\\"b\\$c\\`d\\\\"');
  });

  test('a bad key or a line break is an EnvFileError naming the key', () => {
    assert.throws(() => formatEnvLine('A', 'a\nb'), (e: unknown) => e instanceof EnvFileError && e.key === 'A');
    assert.throws(() => formatEnvLine('1A', 'x'), (e: unknown) => e instanceof EnvFileError && e.key === '1A');
    assert.throws(() => formatEnvLine('A B', 'x'), EnvFileError);
  });

  test('what format writes, parse reads back', () => {
    const values = ['plain', '', '/run/user/1000/ondemand/my web.sock', 'x # not a comment', 'a"b', "it's", '$HOME', '`cmd`', 'back\\slash', 'tab\there', '  spaced  ', '#hash'];
    for (const v of values) assert.deepEqual(parse(formatEnvLine('K', v) + '\n'), [['K', v]], JSON.stringify(v));
  });
});

describe('edit in place', () => {
  test('replaces only the named lines and keeps comments, order and other keys', () => {
    const before = '# my web stack\nZOOPA_UPSTREAM=127.0.0.1:8080\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n# ZOOPA_STACK_UNIT=web-stack.service\nOTHER=1\n';
    assert.equal(
      editEnvText(before, [['ZOOPA_UPSTREAM', '127.0.0.1:9090'], ['ZOOPA_READY', 'tcp']]),
      '# my web stack\nZOOPA_UPSTREAM=127.0.0.1:9090\nZOOPA_IDLE_TIMEOUT=600   # optional override (seconds)\n# ZOOPA_STACK_UNIT=web-stack.service\nOTHER=1\nZOOPA_READY=tcp\n',
    );
  });

  test('quotes what needs quoting, handles export and a key that is a prefix of another', () => {
    const before = 'ZOOPA_UPSTREAM_API=127.0.0.1:1\nexport ZOOPA_UPSTREAM = old\n';
    const after = editEnvText(before, [['ZOOPA_UPSTREAM', '/run/my dir/web.sock']]);
    assert.equal(after, 'ZOOPA_UPSTREAM_API=127.0.0.1:1\nZOOPA_UPSTREAM="/run/my dir/web.sock"\n');
    assert.deepEqual(parse(after), [
      ['ZOOPA_UPSTREAM_API', '127.0.0.1:1'],
      ['ZOOPA_UPSTREAM', '/run/my dir/web.sock'],
    ]);
  });

  test('a key written twice is set everywhere, so a later line cannot win over the edit', () => {
    const after = editEnvText('A=1\nB=2\nA=3', [['A', '9']]);
    assert.equal(after, 'A=9\nB=2\nA=9\n');
    assert.equal(new Map(parse(after)).get('A'), '9');
  });
});
