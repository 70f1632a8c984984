/**
 * The top-level `ondemand:` waiting page (wait, page_after, page_template), end to
 * end with a real systemd user manager, real socket activation and the real proxy:
 * stacks of the original setup, on demand only through hand-written
 * ~/.config/zoopa-ondemand/<stack>.env files that zoopa never touches, get the
 * global values from the Environment= lines of zoopa-ondemand@.service, and a value
 * in a stack's own env file wins (systemd reads EnvironmentFile= after Environment=,
 * systemd.exec(5)):
 *
 *  - alpha (no page settings of its own): the global template;
 *  - beta (ZOOPA_PAGE_TEMPLATE=<its own file>): its own template;
 *  - gamma (ZOOPA_PAGE_TEMPLATE= empty): the built-in page.
 *
 * The global `wait: page` with `page_after: 0` answers even an `Accept:
 * application/json` request with the page at once, which shows that ZOOPA_WAIT and
 * ZOOPA_PAGE_AFTER reached every proxy too. Each stack's unit is a plain service
 * that never opens the upstream port (named by ZOOPA_STACK_UNIT in the env file), so
 * every stack stays waking while it is asked; no container is needed.
 *
 *   npm run build && node scripts/run-tests.mjs ondemand-globalpage
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freePort, httpGet, useTestbed } from '../testbed/index.js';
import { activeState, proxyLines, socketOf } from './ondemand-lib.js';

const STACKS = ['alpha', 'beta', 'gamma'] as const;

describe('on demand: the top-level waiting page reaches hand-written env files; a stack\'s own value wins', () => {
  const bed = useTestbed({ name: 'ondemand-globalpage', image: false });

  it('installs the original setup with a global waiting page in zoopa.yaml, leaving the env files as they are', async () => {
    const tb = bed();
    const pages = path.join(tb.dir, 'my pages');
    const global = tb.writeFile(path.join(pages, 'global.html'), '<p>global page of {{stack}}</p>');
    const own = tb.writeFile(path.join(pages, 'beta.html'), '<p>own page of {{stack}}</p>');
    const ownEnv: Record<(typeof STACKS)[number], string> = { alpha: '', beta: `ZOOPA_PAGE_TEMPLATE="${own}"\n`, gamma: 'ZOOPA_PAGE_TEMPLATE=\n' };
    for (const s of STACKS) {
      // A unit that runs but never listens: the stack stays waking.
      tb.writeFile(path.join(tb.configHome, 'systemd', 'user', `hang-${s}.service`), `[Unit]\nDescription=never ready\n[Service]\nExecStart=/bin/sleep infinity\n`);
      const text = `ZOOPA_UPSTREAM=127.0.0.1:${await freePort()}\nZOOPA_STACK_UNIT=hang-${s}.service\n${ownEnv[s]}`;
      tb.writeFile(path.join(tb.configHome, 'zoopa-ondemand', `${s}.env`), text, 0o600);
    }
    tb.writeFile(path.join(tb.root, 'zoopa.yaml'), `ondemand:\n  wait: page\n  page_after: 0\n  page_template: "${global}"\n`);
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(inst.status, 0, inst.stderr);
    const units = ['zoopa-ondemand-dir.service', ...STACKS.map((s) => `zoopa-ondemand@${s}.socket`)];
    const en = await tb.systemctl(['enable', '--now', ...units]);
    assert.equal(en.status, 0, en.stderr);
    // What systemd made of the template's lines (the env files come on top at exec time).
    const show = await tb.systemctl(['show', '--property=Environment', 'zoopa-ondemand@alpha.service']);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /ZOOPA_WAIT=page ZOOPA_PAGE_AFTER=0 "?ZOOPA_PAGE_TEMPLATE=.*\/my pages\/global\.html/);
  });

  const ask = (stack: string) =>
    httpGet('http://localhost/', { socketPath: socketOf(bed(), stack), headers: { Accept: 'application/json' }, timeoutMs: 60_000 });

  it('alpha (nothing of its own): the global template, at once, even for a JSON request', async () => {
    const tb = bed();
    const r = await ask('alpha');
    assert.equal(r.status, 503, `${r.body.slice(0, 300)}\n${tb.managerLog().slice(-2000)}`);
    assert.equal(r.body, '<p>global page of alpha</p>');
    // The page does not wait for the wake it started: the unit comes up after it.
    await tb.waitFor(async () => (await activeState(tb, 'hang-alpha.service')) === 'active', { what: 'the request waking alpha (hang-alpha.service active)', timeoutMs: 60_000 });
    assert.ok(proxyLines(tb, 'alpha').some((l) => /served the waiting page/.test(l)), proxyLines(tb, 'alpha').join('\n'));
  });

  it('beta (ZOOPA_PAGE_TEMPLATE in its env file): its own template wins over the global one', async () => {
    const r = await ask('beta');
    assert.equal(r.status, 503, r.body.slice(0, 300));
    assert.equal(r.body, '<p>own page of beta</p>');
  });

  it('gamma (an empty ZOOPA_PAGE_TEMPLATE): the built-in page', async () => {
    const r = await ask('gamma');
    assert.equal(r.status, 503, r.body.slice(0, 300));
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(r.body, /gamma is starting/);
    assert.doesNotMatch(r.body, /global page/);
  });
});
