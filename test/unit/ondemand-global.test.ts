/**
 * The top-level `ondemand:` waiting-page defaults (wait, page_after, page_template):
 * the schema (the same pieces as per stack), their Environment= lines in
 * zoopa-ondemand@.service, a stack's own values in its env file (`builtin`: an empty
 * ZOOPA_PAGE_TEMPLATE), the proxy's reading of the merged environment, the template
 * read at install, and bad input through the real CLI (exit 2, nothing written).
 * The precedence itself, with a real user manager and a real proxy:
 * test/integration/ondemand-globalpage.test.ts; the rendered template passes
 * `systemd-analyze --user verify` in the render case test/unit/render-cases/global-page.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { parseEnvText } from '../../src/envfile.js';
import { globalOndemandSchema, stackOndemandSchema } from '../../src/ondemand/config.js';
import { globalOndemandEnvVars, ondemandEnvVars, renderOndemandEnvFiles, renderServiceTemplate } from '../../src/ondemand/units.js';
import { resolveProxySettings } from '../../src/proxy/config.js';
import { loadProject } from '../../src/stacks/discover.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { resolveTools } from '../../src/unitfile/tools.js';
import type { RenderContext } from '../../src/unitfile/types.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

function contextFor(root: string, env: NodeJS.ProcessEnv): RenderContext {
  const project = loadProject({ root, env });
  return { project, tools: resolveTools({ podmanCompose: project.config.podman_compose, env }), env };
}

/** The values of one key of a unit's section, as written. */
function values(text: string, section: string, key: string): string[] {
  return (parseUnitText(text).get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** An env file's variables as systemd would set them. */
function envVars(text: string): Map<string, string> {
  return new Map(parseEnvText(text, 'web.env').map((e) => [e.key, e.value]));
}

describe('top-level ondemand: the schema', () => {
  const parse = (yaml: string) => parseConfigText(yaml, '/x/zoopa.yaml');

  test('wait, page_after and page_template are read like the per-stack keys', () => {
    const c = parse('ondemand:\n  wait: page\n  page_after: 1m\n  page_template: /srv/wait.html\n');
    assert.deepEqual(c.ondemand, { wait: 'page', page_after: 60, page_template: '/srv/wait.html' });
    assert.equal(globalOndemandSchema.shape.wait.unwrap(), stackOndemandSchema.shape.wait.unwrap(), 'the same zod piece');
    assert.equal(globalOndemandSchema.shape.page_after.unwrap(), stackOndemandSchema.shape.page_after.unwrap());
  });

  const bad: Array<[string, string, RegExp, RegExp]> = [
    ['a relative template', 'ondemand:\n  page_template: wait.html\n', /^line 2: ondemand\.page_template: must be an absolute path to an HTML file \(got "wait\.html"\)$/, /absolute path/],
    ['"builtin" at the top level (the default already)', 'ondemand:\n  page_template: builtin\n', /ondemand\.page_template: must be an absolute path .*\(got "builtin"\)/, /absolute path/],
    ['white space before "#" (the env reader would cut it)', 'ondemand:\n  page_template: "/srv/my #1.html"\n', /ondemand\.page_template: contains white space followed by "#"/, /rename/],
    ['an unknown wait style', 'ondemand:\n  wait: soon\n', /^line 2: ondemand\.wait: "soon" is not allowed$/, /auto, hold, page/],
    // The duration piece (src/config/types.ts) carries its hint in the message.
    ['a bad page_after', 'ondemand:\n  page_after: later\n', /^line 2: ondemand\.page_after: not a duration/, /write seconds .* or a span like 90s/],
    ['a relative per-stack template', 'stacks:\n  web:\n    ondemand: {upstream: 1, page_template: w.html}\n', /stacks\.web\.ondemand\.page_template: must be an absolute path/, /or "builtin"/],
  ];
  for (const [what, yaml, re, hint] of bad) {
    test(`rejects ${what}, naming the key and the value, with a hint`, () => {
      assert.throws(
        () => parse(yaml),
        (e: unknown) => e instanceof ConfigError && re.test(e.message) && e.file === '/x/zoopa.yaml' && hint.test(e.hint ?? e.message),
      );
    });
  }

  test('maintenance_template: the same checks, a Environment= line at the top level, an env line per stack ("builtin": empty)', () => {
    const c = parse('ondemand:\n  maintenance_template: /srv/maint.html\nstacks:\n  web:\n    ondemand: { upstream: 8080, maintenance_template: builtin }\n');
    assert.equal(c.ondemand?.maintenance_template, '/srv/maint.html');
    assert.deepEqual(globalOndemandEnvVars(c.ondemand), [['ZOOPA_MAINTENANCE_TEMPLATE', '/srv/maint.html']]);
    assert.deepEqual(ondemandEnvVars(c.stacks!.web!.ondemand!).find(([k]) => k === 'ZOOPA_MAINTENANCE_TEMPLATE'), ['ZOOPA_MAINTENANCE_TEMPLATE', '']);
    assert.throws(() => parse('ondemand:\n  maintenance_template: maint.html\n'), (e: unknown) => e instanceof ConfigError && /ondemand\.maintenance_template: must be an absolute path/.test(e.message));
  });

  test('per stack, "builtin" is accepted and becomes an empty ZOOPA_PAGE_TEMPLATE (the built-in page)', () => {
    const c = stackOndemandSchema.parse({ upstream: 1, page_template: 'builtin' });
    assert.deepEqual(new Map(ondemandEnvVars(c)).get('ZOOPA_PAGE_TEMPLATE'), '');
    assert.equal(resolveProxySettings('web', { ZOOPA_PAGE_TEMPLATE: '' }, { upstream: '127.0.0.1:1', stackUnit: 'none' }).pageTemplate, null);
  });
});

describe('top-level ondemand: rendering', () => {
  const setup = (yaml: string | undefined, extra: Record<string, string> = {}) => {
    const base = tmpDir('zoopa-ondemand-global-');
    const root = path.join(base, 'stacks');
    const pages = path.join(base, 'my pages 100%');
    writeFiles(pages, { 'global.html': '<p>global {{stack}}</p>', 'web.html': '<p>web {{stack}}</p>' });
    const files: Record<string, string> = { 'web/compose.yaml': COMPOSE, 'old/compose.yaml': COMPOSE, ...extra };
    if (yaml !== undefined) files['zoopa.yaml'] = yaml.replaceAll('{pages}', pages);
    writeFiles(root, files);
    const env = isolatedEnv(base);
    return { base, root, pages, env, ctx: () => contextFor(root, env) };
  };

  test('without the keys the template has only its two defaults', () => {
    const { ctx } = setup(undefined);
    const text = renderServiceTemplate(ctx()).content;
    assert.deepEqual(values(text, 'Service', 'Environment'), ['ZOOPA_STACK_UNIT=%i-stack.service', 'ZOOPA_IDLE_TIMEOUT=600']);
    assert.deepEqual(globalOndemandEnvVars(undefined), []);
  });

  test('the global values are Environment= lines (quoted, "%" escaped); web overrides them in its env file; old has none', () => {
    const { ctx, pages, env } = setup(
      'ondemand:\n  wait: page\n  page_after: 1.5\n  page_template: "{pages}/global.html"\nstacks:\n  web:\n    ondemand:\n      upstream: 8080\n      wait: hold\n      page_after: 0\n      page_template: "{pages}/web.html"\n',
    );
    const c = ctx();
    const text = renderServiceTemplate(c).content;
    assert.deepEqual(values(text, 'Service', 'Environment'), [
      'ZOOPA_STACK_UNIT=%i-stack.service',
      'ZOOPA_IDLE_TIMEOUT=600',
      'ZOOPA_WAIT=page',
      'ZOOPA_PAGE_AFTER=1.5',
      `"ZOOPA_PAGE_TEMPLATE=${pages.replaceAll('%', '%%')}/global.html"`,
    ]);
    const files = renderOndemandEnvFiles(c);
    assert.equal(files.length, 1, 'an env file for web only: old (no ondemand section) gets none');
    assert.equal(files[0]!.path, path.join(env.XDG_CONFIG_HOME!, 'zoopa-ondemand', 'web.env'));
    const vars = envVars(files[0]!.content);
    assert.equal(vars.get('ZOOPA_WAIT'), 'hold');
    assert.equal(vars.get('ZOOPA_PAGE_AFTER'), '0');
    assert.equal(vars.get('ZOOPA_PAGE_TEMPLATE'), `${pages}/web.html`);

    // What the proxy makes of the environment systemd gives it: the template's values,
    // then the env file's over them (systemd.exec(5); shown with a real manager in
    // test/integration/ondemand-globalpage.test.ts).
    const globals = Object.fromEntries(globalOndemandEnvVars(c.project.config.ondemand));
    const web = resolveProxySettings('web', { ...globals, ...Object.fromEntries(vars) }, { stackUnit: 'none' });
    assert.deepEqual([web.wait, web.pageAfterMs, web.pageTemplate], ['hold', 0, '<p>web {{stack}}</p>']);
    const old = resolveProxySettings('old', { ...globals, ZOOPA_UPSTREAM: '127.0.0.1:1' }, { stackUnit: 'none' });
    assert.deepEqual([old.wait, old.pageAfterMs, old.pageTemplate], ['page', 1500, '<p>global {{stack}}</p>']);
  });

  test('a stack with "page_template: builtin" gets an empty ZOOPA_PAGE_TEMPLATE, which the proxy reads as the built-in page', () => {
    const { ctx } = setup('ondemand:\n  page_template: "{pages}/global.html"\nstacks:\n  web:\n    ondemand: {upstream: 8080, page_template: builtin}\n');
    const c = ctx();
    const content = renderOndemandEnvFiles(c)[0]!.content;
    assert.match(content, /^ZOOPA_PAGE_TEMPLATE=$/m);
    const globals = Object.fromEntries(globalOndemandEnvVars(c.project.config.ondemand));
    assert.equal(resolveProxySettings('web', { ...globals, ...Object.fromEntries(envVars(content)) }, { stackUnit: 'none' }).pageTemplate, null);
  });

  test('a missing, folder or too large template is refused at install (env files), naming the key and the value', () => {
    const cases: Array<[string, (pages: string) => string, RegExp]> = [
      ['missing', (p) => `${p}/none.html`, /^ondemand\.page_template: ".*none\.html" cannot be read \(ENOENT\)$/],
      ['a folder', (p) => p, /^ondemand\.page_template: ".*" is not a file$/],
      ['too large', (p) => `${p}/big.html`, /^ondemand\.page_template: ".*big\.html" is larger than 256 KiB \(262145 bytes\)$/],
    ];
    for (const [what, file, re] of cases) {
      const { ctx, pages, root } = setup(undefined);
      fs.writeFileSync(path.join(pages, 'big.html'), 'x'.repeat(256 * 1024 + 1));
      const yamlFile = path.join(root, 'zoopa.yaml');
      fs.writeFileSync(yamlFile, `ondemand:\n  page_template: "${file(pages)}"\n`);
      const c = ctx();
      // `zoopa render` (units only) does not read it; install (with the env files) does.
      assert.doesNotThrow(() => renderServiceTemplate(c), what);
      assert.throws(
        () => renderOndemandEnvFiles(c),
        (e: unknown) => e instanceof ConfigError && re.test(e.message) && e.key === 'ondemand.page_template' && e.value === file(pages) && e.file === yamlFile && /absolute path/.test(e.hint ?? ''),
        what,
      );
    }
  });

  test('a per-stack template is read at install too', () => {
    const { ctx } = setup('stacks:\n  web:\n    ondemand: {upstream: 8080, page_template: "{pages}/gone.html"}\n');
    assert.throws(() => renderOndemandEnvFiles(ctx()), /^ConfigError: stacks\.web\.ondemand\.page_template: ".*gone\.html" cannot be read \(ENOENT\)$/);
  });
});

describe('top-level ondemand through the real CLI', () => {
  const world = (yaml: string) => {
    const base = tmpDir('zoopa-ondemand-global-');
    const root = path.join(base, 'stacks');
    writeFiles(base, { 'pages/wait.html': '<p>{{stack}}</p>' });
    // The original setup: a stack on demand only through its hand-written env file.
    writeFiles(root, { 'web/compose.yaml': COMPOSE, 'zoopa.yaml': yaml.replaceAll('{base}', base) });
    writeFiles(base, { 'home/.config/zoopa-ondemand/web.env': 'ZOOPA_UPSTREAM=127.0.0.1:8080\n' });
    return { base, root, env: isolatedEnv(base) };
  };

  const bad: Array<[string, string, RegExp[]]> = [
    ['a relative template', 'ondemand:\n  page_template: pages/wait.html\n', [/zoopa\.yaml: line 2: ondemand\.page_template: must be an absolute path to an HTML file \(got "pages\/wait\.html"\)/]],
    ['a missing template', 'ondemand:\n  page_template: "{base}/pages/nope.html"\n', [/zoopa\.yaml: ondemand\.page_template: ".*\/pages\/nope\.html" cannot be read \(ENOENT\)/]],
    ['a bad wait style', 'ondemand:\n  wait: later\n', [/zoopa\.yaml: line 2: ondemand\.wait: "later" is not allowed/, /hint: use one of: auto, hold, page/]],
  ];
  for (const [what, yaml, res] of bad) {
    test(`install refuses ${what}: exit 2, key, value and hint; nothing written`, async () => {
      const { base, root, env } = world(yaml);
      const before = snapshot(base);
      const r = await zoopa(['--root', root, 'install'], { env });
      assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
      for (const re of res) assert.match(r.stderr, re);
      assert.match(r.stderr, /hint: /);
      assert.deepEqual(snapshot(base), before, 'nothing written');
    });
  }

  test('install --dry-run shows the new Environment= lines and writes nothing; the hand-written env file stays as it is', async () => {
    const { base, root, env } = world('stacks: {}\n');
    const first = await zoopa(['--root', root, 'render'], { env });
    assert.equal(first.status, 0, first.stderr);
    fs.writeFileSync(path.join(root, 'zoopa.yaml'), `ondemand:\n  wait: page\n  page_after: 2s\n  page_template: ${base}/pages/wait.html\n`);
    const before = snapshot(base);
    const r = await zoopa(['--root', root, 'install', '--dry-run'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /~ zoopa-ondemand@\.service +change\n +\+Environment=ZOOPA_WAIT=page\n +\+Environment=ZOOPA_PAGE_AFTER=2\n +\+Environment=ZOOPA_PAGE_TEMPLATE=\/.*\/pages\/wait\.html\n/);
    assert.doesNotMatch(r.stdout, /zoopa-ondemand\/web\.env/, 'the hand-written env file is not in the plan');
    assert.deepEqual(snapshot(base), before, 'nothing written');
  });
});
