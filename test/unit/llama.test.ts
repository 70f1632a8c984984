/**
 * llama services: the original's three kinds of unit (router mode with a models
 * folder, one model with an alias, a vision model with a large context) render
 * with the exact ExecStart words and CPUAffinity=, byte-identically, and pass
 * the real `systemd-analyze --user verify` (which needs no running manager, only
 * an XDG_RUNTIME_DIR; the binary is the llama-server stand-in, because verify
 * checks that it exists). Bad input is a ConfigError naming the service and key,
 * exit 2 through the CLI, nothing written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, UsageError } from '../../src/errors.js';
import { run } from '../../src/exec.js';
import { formatCpus, parseCpus, CpusSpecError } from '../../src/llama/cpus.js';
import { llamaChecks, lowestAllowedNice } from '../../src/llama/doctor.js';
import { commandLineFlags, parseHelpFlags, unknownFlags } from '../../src/llama/help.js';
import { pickServices, planLlamaEnable } from '../../src/llama/enable.js';
import { formatLlamaList, type LlamaListEntry } from '../../src/llama/list.js';
import { llamaOndemandTargets, resolveLlama } from '../../src/llama/resolve.js';
import { renderLlamaUnits } from '../../src/llama/units.js';
import { loadProject } from '../../src/stacks/discover.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { renderAll } from '../../src/units/render.js';
import { resolveTools } from '../../src/unitfile/tools.js';
import { isolatedEnv, snapshot, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';

/** test/standins/llama-server in the source tree (dist/test/unit → ../../../test/standins). */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const STANDIN = path.join(REPO, 'test', 'standins', 'llama-server');

const COMPOSE = 'services:\n  app:\n    image: localhost/zoopa-busybox:latest\n';

interface World {
  base: string;
  root: string;
  home: string;
  models: string;
  env: NodeJS.ProcessEnv;
}

/** A stacks root with zoopa.yaml and model files under ~/models. */
function world(yaml: string, opts: { models?: string[]; files?: Record<string, string> } = {}): World {
  const base = tmpDir('zoopa-llama-');
  const root = path.join(base, 'stacks');
  const env = isolatedEnv(base);
  const home = env.HOME!;
  const models = path.join(home, 'models');
  fs.mkdirSync(path.join(home, 'llama.cpp'), { recursive: true });
  fs.mkdirSync(models, { recursive: true });
  for (const m of opts.models ?? []) {
    fs.mkdirSync(path.dirname(path.join(models, m)), { recursive: true });
    fs.writeFileSync(path.join(models, m), `stand-in model file ${m}\n`);
  }
  writeFiles(root, { 'zoopa.yaml': yaml, ...(opts.files ?? {}) });
  return { base, root, home, models, env };
}

function render(w: World) {
  const project = loadProject({ root: w.root, env: w.env });
  const tools = resolveTools({ configFile: project.configFile, env: w.env });
  return renderLlamaUnits({ project, tools, env: w.env });
}

function renderError(w: World): ConfigError {
  try {
    render(w);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

/** ExecStart split into words (test paths hold no spaces or quotes). */
function execWords(text: string): string[] {
  const v = (parseUnitText(text).get('Service') ?? []).find(([k]) => k === 'ExecStart')?.[1];
  assert.ok(v, 'ExecStart present');
  assert.ok(!v.includes('"'), 'no quoting expected in this fixture');
  return v.split(' ');
}

function value(text: string, section: string, key: string): string[] {
  return (parseUnitText(text).get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The original's three kinds, as a user would port them into zoopa.yaml. */
const ORIGINAL = (binary: string) => `
llama:
  binary: ${binary}
  defaults:
    cpus: 0 1 6-11
    batch_size: 512
    ubatch_size: 256
    parallel: 1
  services:
    llama-router:
      router: true
      models_max: 1
      sleep_idle: 10m
      ctx_size: 8192
      port: 8080
    qwen-coder:
      model: Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf
      alias: qwen-coder
      ctx_size: 16384
      cache_type_k: q8_0
      cache_type_v: q8_0
      port: 8081
    gemma-vision:
      model: gemma-3-12b-it-Q4_K_M.gguf
      mmproj: mmproj-gemma-3-12b-it-f16.gguf
      alias: gemma-vision
      ctx_size: 131072
      cpus: 2-5
      mmap: true
      mlock: false
      extra_args: [--jinja, --no-webui]
      port: 8082
`;
const ORIGINAL_MODELS = ['Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf', 'gemma-3-12b-it-Q4_K_M.gguf', 'mmproj-gemma-3-12b-it-f16.gguf'];

describe('cpus spec', () => {
  test('parses numbers and ranges, sorted, and formats them canonically', () => {
    assert.deepEqual(parseCpus('0 1 6-11'), [0, 1, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(parseCpus('6-11,0, 1'), [0, 1, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(parseCpus('3'), [3]);
    assert.equal(formatCpus(parseCpus('0 1 6-11')), '0 1 6-11');
    assert.equal(formatCpus(parseCpus('0-2 4 5')), '0-2 4 5');
    assert.equal(formatCpus([7]), '7');
  });
  for (const [spec, why] of [
    ['', /no CPUs/],
    ['0 1 x', /"x" is neither/],
    ['0-', /"0-" is neither/],
    ['-1', /"-1" is neither/],
    ['11-6', /reversed/],
    ['0 1 1', /CPU 1 is listed twice/],
    ['0-4 3-6', /CPU 3 is listed twice/],
    ['0 99999', /out of range/],
    ['1.5', /neither/],
  ] as const) {
    test(`rejects ${JSON.stringify(spec)}`, () => {
      assert.throws(() => parseCpus(spec), (e: unknown) => e instanceof CpusSpecError && why.test(e.message));
    });
  }
});

describe('the original three kinds', () => {
  const w = world(ORIGINAL(STANDIN), { models: ORIGINAL_MODELS });
  const units = render(w);
  const byName = new Map(units.map((u) => [u.name, u.content]));
  const models = w.models;

  test('one unit per service, named <name>.service', () => {
    assert.deepEqual([...byName.keys()].sort(), ['gemma-vision.service', 'llama-router.service', 'qwen-coder.service']);
    for (const u of units) assert.equal(u.kind, 'llama');
  });

  test('router mode with the models folder', () => {
    const t = byName.get('llama-router.service')!;
    assert.deepEqual(execWords(t), [
      STANDIN, '--models-dir', models, '--models-max', '1',
      '--ctx-size', '8192', '--threads', '8', '--threads-batch', '8',
      '--batch-size', '512', '--ubatch-size', '256', '--parallel', '1',
      '--sleep-idle-seconds', '600', '--host', '127.0.0.1', '--port', '8080',
    ]);
    assert.deepEqual(value(t, 'Service', 'CPUAffinity'), ['0 1 6-11']);
  });

  test('one model with an alias', () => {
    const t = byName.get('qwen-coder.service')!;
    assert.deepEqual(execWords(t), [
      STANDIN, '--model', path.join(models, 'Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf'), '--alias', 'qwen-coder',
      '--ctx-size', '16384', '--threads', '8', '--threads-batch', '8',
      '--batch-size', '512', '--ubatch-size', '256', '--parallel', '1',
      '--cache-type-k', 'q8_0', '--cache-type-v', 'q8_0', '--host', '127.0.0.1', '--port', '8081',
    ]);
    assert.deepEqual(value(t, 'Service', 'CPUAffinity'), ['0 1 6-11']);
  });

  test('a vision model with a large context: its own cpus drive threads, mmap as --load-mode mmap, no --no-mlock', () => {
    const t = byName.get('gemma-vision.service')!;
    assert.deepEqual(execWords(t), [
      STANDIN, '--model', path.join(models, 'gemma-3-12b-it-Q4_K_M.gguf'), '--mmproj', path.join(models, 'mmproj-gemma-3-12b-it-f16.gguf'),
      '--alias', 'gemma-vision', '--ctx-size', '131072', '--threads', '4', '--threads-batch', '4',
      '--batch-size', '512', '--ubatch-size', '256', '--parallel', '1', '--load-mode', 'mmap',
      '--host', '127.0.0.1', '--port', '8082', '--jinja', '--no-webui',
    ]);
    assert.deepEqual(value(t, 'Service', 'CPUAffinity'), ['2-5']);
  });

  test('every unit: Type=simple, WorkingDirectory, Nice, Restart, RestartSec, WantedBy', () => {
    for (const [name, t] of byName) {
      assert.ok(t.startsWith('# Generated by zoopa'), `${name} header`);
      assert.deepEqual(value(t, 'Service', 'Type'), ['simple'], name);
      assert.deepEqual(value(t, 'Service', 'WorkingDirectory'), [path.join(w.home, 'llama.cpp')], name);
      assert.deepEqual(value(t, 'Service', 'Nice'), ['0'], name);
      assert.deepEqual(value(t, 'Service', 'Restart'), ['on-failure'], name);
      assert.deepEqual(value(t, 'Service', 'RestartSec'), ['2'], name);
      assert.deepEqual(value(t, 'Install', 'WantedBy'), ['default.target'], name);
    }
  });

  test('byte-identical when rendered again', () => {
    assert.deepEqual(render(w), units);
  });

  test('the stand-in accepts every rendered command line (its --help exits 0 after them)', async () => {
    for (const [name, t] of byName) {
      const words = execWords(t);
      const r = await run([...words, '--help'], { reject: false });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    }
  });

  test('systemd-analyze --user verify prints nothing', async () => {
    const dir = path.join(w.base, 'units');
    fs.mkdirSync(dir);
    for (const u of units) fs.writeFileSync(path.join(dir, u.name), u.content);
    const r = await run(['systemd-analyze', '--user', 'verify', ...units.map((u) => path.join(dir, u.name))], { env: w.env, reject: false });
    assert.equal(r.stdout + r.stderr, '', 'verify prints nothing');
    assert.equal(r.status, 0);
  });

  test('verify would catch a missing binary (so the check above means something)', async () => {
    const dir = path.join(w.base, 'units-missing');
    fs.mkdirSync(dir);
    const t = byName.get('qwen-coder.service')!.replace(STANDIN, '/nonexistent/llama-server');
    fs.writeFileSync(path.join(dir, 'qwen-coder.service'), t);
    const r = await run(['systemd-analyze', '--user', 'verify', path.join(dir, 'qwen-coder.service')], { env: w.env, reject: false });
    assert.match(r.stderr, /not executable/);
  });
});

describe('defaults and options', () => {
  test('defaults: ~/llama.cpp binary and working directory, ~/models, host 127.0.0.1, no cpus → no CPUAffinity or threads', () => {
    const w = world('llama:\n  services:\n    m:\n      model: a.gguf\n      port: 9000\n', { models: ['a.gguf'] });
    const [u] = render(w);
    assert.deepEqual(execWords(u!.content), [path.join(w.home, 'llama.cpp/build/bin/llama-server'), '--model', path.join(w.home, 'models/a.gguf'), '--host', '127.0.0.1', '--port', '9000']);
    assert.deepEqual(value(u!.content, 'Service', 'CPUAffinity'), []);
    assert.deepEqual(value(u!.content, 'Service', 'WorkingDirectory'), [path.join(w.home, 'llama.cpp')]);
  });

  test('a service overrides defaults; explicit threads below the cpu count are kept', () => {
    const w = world('llama:\n  defaults: { cpus: "0-3", ctx_size: 4096, nice: 5, restart_sec: 500ms }\n  services:\n    m: { model: a.gguf, port: 9000, threads: 3, ctx_size: 2048 }\n', { models: ['a.gguf'] });
    const [u] = render(w);
    const words = execWords(u!.content);
    assert.deepEqual(words.slice(words.indexOf('--ctx-size'), words.indexOf('--ctx-size') + 6), ['--ctx-size', '2048', '--threads', '3', '--threads-batch', '4']);
    assert.deepEqual(value(u!.content, 'Service', 'Nice'), ['5']);
    assert.deepEqual(value(u!.content, 'Service', 'RestartSec'), ['500ms']);
  });

  test('load_mode as it is', () => {
    const w = world('llama:\n  services:\n    m: { model: a.gguf, port: 9000, load_mode: mmap+mlock }\n', { models: ['a.gguf'] });
    const words = execWords(render(w)[0]!.content);
    assert.deepEqual(words.slice(words.indexOf('--load-mode'), words.indexOf('--load-mode') + 2), ['--load-mode', 'mmap+mlock']);
  });

  test('mmap/mlock render --load-mode (llama-server 0.7.0 refuses --mmap, --no-mmap and --mlock)', () => {
    const cases: Array<[string, string[]]> = [
      ['mmap: true', ['--load-mode', 'mmap']],
      ['mmap: false', ['--load-mode', 'none']],
      ['mlock: true', ['--load-mode', 'mmap+mlock']],
      ['mmap: true, mlock: true', ['--load-mode', 'mmap+mlock']],
      ['mmap: false, mlock: true', ['--load-mode', 'mlock']],
      ['mlock: false', []],
      ['mmap: true, mlock: false', ['--load-mode', 'mmap']],
    ];
    for (const [keys, want] of cases) {
      const w = world(`llama:\n  services:\n    m: { model: a.gguf, port: 9000, ${keys} }\n`, { models: ['a.gguf'] });
      const words = execWords(render(w)[0]!.content);
      const i = words.indexOf('--load-mode');
      assert.deepEqual(i < 0 ? [] : words.slice(i, i + 2), want, keys);
      for (const old of ['--mmap', '--no-mmap', '--mlock']) assert.ok(!words.includes(old), `${keys}: no ${old}`);
    }
    // For a llama.cpp older than --load-mode: its flags through extra_args.
    const old = world('llama:\n  services:\n    m: { model: a.gguf, port: 9000, extra_args: [--no-mmap, --mlock] }\n', { models: ['a.gguf'] });
    assert.deepEqual(execWords(render(old)[0]!.content).slice(-2), ['--no-mmap', '--mlock']);
  });

  test('a model path with a space and a % is quoted and escaped by the unit model', () => {
    const w = world('llama:\n  services:\n    m: { model: "my models/100% q4.gguf", port: 9000 }\n', { models: ['my models/100% q4.gguf'] });
    const t = render(w)[0]!.content;
    const exec = value(t, 'Service', 'ExecStart')[0]!;
    assert.ok(exec.includes(`"${path.join(w.models, 'my models/100%% q4.gguf')}"`), exec);
  });

  test('on demand: no [Install] (the socket starts it), and the target for the on-demand renderer', () => {
    const yaml = 'llama:\n  services:\n    m: { model: a.gguf, port: 9000, ondemand: true }\n    n: { model: a.gguf, host: 0.0.0.0, port: 9001, ondemand: { idle: 15m, start_timeout: 20m } }\n    o: { model: a.gguf, port: 9002 }\n';
    const w = world(yaml, { models: ['a.gguf'] });
    const units = new Map(render(w).map((u) => [u.name, u.content]));
    assert.equal(parseUnitText(units.get('m.service')!).has('Install'), false);
    assert.equal(parseUnitText(units.get('n.service')!).has('Install'), false);
    assert.deepEqual(value(units.get('o.service')!, 'Install', 'WantedBy'), ['default.target']);
    const project = loadProject({ root: w.root, env: w.env });
    assert.deepEqual(llamaOndemandTargets(project.config.llama), [
      { name: 'm', unit: 'm.service', upstream: '127.0.0.1:9000', ready: 'http:/health', startTimeout: 600, idle: undefined },
      { name: 'n', unit: 'n.service', upstream: '127.0.0.1:9001', ready: 'http:/health', startTimeout: 1200, idle: 900 },
    ]);
  });

  test('no llama section: no units, no targets', () => {
    const w = world('stacks: {}\n');
    assert.deepEqual(render(w), []);
    assert.deepEqual(llamaOndemandTargets(undefined), []);
  });

  test('llama list text: model and size, router folder, missing file', () => {
    const base: Omit<LlamaListEntry, 'name' | 'unit' | 'mode' | 'model' | 'modelBytes' | 'modelsDir' | 'modelFiles' | 'port'> = {
      alias: null, host: '127.0.0.1', cpus: null, threads: null, ondemand: false, installed: true, state: 'active', subState: 'running', enabled: 'linked', socket: null,
    };
    const text = formatLlamaList(
      [
        { ...base, name: 'r', unit: 'r.service', mode: 'router', model: null, modelBytes: null, modelsDir: '/h/models', modelFiles: 2, port: 8080 },
        { ...base, name: 'q', unit: 'q.service', mode: 'model', model: '/h/models/q.gguf', modelBytes: 5 * 1024 * 1024, modelsDir: null, modelFiles: null, port: 8081, alias: 'qwen', cpus: '0 1 6-11' },
        { ...base, name: 'x', unit: 'x.service', mode: 'model', model: '/h/models/x.gguf', modelBytes: null, modelsDir: null, modelFiles: null, port: 8082, ondemand: true, socket: 'active', state: 'inactive', subState: 'dead' },
      ],
      { HOME: '/h' },
    );
    assert.match(text, /^r\s+~\/models\/ \(router, 2 models\)\s+-\s+127\.0\.0\.1:8080\s+-\s+active \(running\)$/m);
    assert.match(text, /^q\s+~\/models\/q\.gguf as qwen\s+5\.0 MiB\s+127\.0\.0\.1:8081\s+0 1 6-11\s+active \(running\)$/m);
    assert.match(text, /^x\s+~\/models\/x\.gguf\s+MISSING .*inactive \(dead\), on demand \(socket active\)$/m);
  });
});

describe('bad input: a ConfigError naming the service and key, nothing rendered', () => {
  const one = (svc: string, extra = '') => `llama:\n${extra}  services:\n    m:\n${svc.replace(/^/gm, '      ')}\n`;
  const cases: Array<{ name: string; yaml: string; key: string; message: RegExp; models?: string[]; files?: Record<string, string> }> = [
    { name: 'a missing model file', yaml: one('model: nope.gguf\nport: 9000'), key: 'llama.services.m.model', message: /model file .*nope\.gguf does not exist/ },
    { name: 'a missing mmproj file', yaml: one('model: a.gguf\nmmproj: nope.gguf\nport: 9000'), key: 'llama.services.m.mmproj', message: /does not exist/, models: ['a.gguf'] },
    { name: 'a missing models folder in router mode', yaml: 'llama:\n  models_dir: /nonexistent/models\n  services:\n    m: { router: true, port: 9000 }\n', key: 'llama.services.m.router', message: /models folder \/nonexistent\/models does not exist/ },
    { name: 'neither model nor router', yaml: one('port: 9000'), key: 'llama.services.m.model', message: /required/ },
    { name: 'both model and router', yaml: one('model: a.gguf\nrouter: true\nport: 9000'), key: 'llama.services.m.model', message: /not both/, models: ['a.gguf'] },
    { name: 'alias in router mode', yaml: one('router: true\nalias: x\nport: 9000'), key: 'llama.services.m.alias', message: /router mode/ },
    { name: 'junk in cpus', yaml: one('model: a.gguf\ncpus: 0 1 six\nport: 9000'), key: 'llama.services.m.cpus', message: /bad CPU list "0 1 six": "six" is neither/, models: ['a.gguf'] },
    { name: 'a reversed cpus range', yaml: one('model: a.gguf\ncpus: 11-6\nport: 9000'), key: 'llama.services.m.cpus', message: /reversed/, models: ['a.gguf'] },
    { name: 'a duplicate cpu', yaml: one('model: a.gguf\ncpus: 0 1 0-3\nport: 9000'), key: 'llama.services.m.cpus', message: /CPU 0 is listed twice/, models: ['a.gguf'] },
    { name: 'bad cpus in defaults', yaml: 'llama:\n  defaults: { cpus: "3-1" }\n  services:\n    m: { model: a.gguf, port: 9000 }\n', key: 'llama.defaults.cpus (used by service m)', message: /reversed/, models: ['a.gguf'] },
    { name: 'more threads than cpus', yaml: one('model: a.gguf\ncpus: 0-3\nthreads: 8\nport: 9000'), key: 'llama.services.m.threads', message: /8 threads on 4 CPUs/, models: ['a.gguf'] },
    { name: 'load_mode with mmap', yaml: one('model: a.gguf\nload_mode: mmap\nmmap: true\nport: 9000'), key: 'llama.services.m.load_mode', message: /cannot be combined with mmap/, models: ['a.gguf'] },
    { name: 'a managed flag in extra_args', yaml: one('model: a.gguf\nextra_args: [--port, "9001"]\nport: 9000'), key: 'llama.services.m.extra_args', message: /--port is set by zoopa from the port key/, models: ['a.gguf'] },
    { name: 'an old loading flag in extra_args with the mmap key', yaml: one('model: a.gguf\nmmap: false\nextra_args: [--no-mmap]\nport: 9000'), key: 'llama.services.m.extra_args', message: /--no-mmap and the mmap key both choose how the model is loaded/, models: ['a.gguf'] },
    { name: 'a managed short flag with _ spelling in extra_args', yaml: one('model: a.gguf\nextra_args: [--ctx_size, "9"]\nport: 9000'), key: 'llama.services.m.extra_args', message: /ctx_size key/, models: ['a.gguf'] },
    {
      name: 'two llama services on one port',
      yaml: 'llama:\n  services:\n    a: { model: a.gguf, port: 9000 }\n    b: { model: a.gguf, host: localhost, port: 9000 }\n',
      key: 'llama.services.b.port',
      message: /port 9000 is already used by llama service a/,
      models: ['a.gguf'],
    },
    {
      name: 'a wildcard host and a loopback host on one port',
      yaml: 'llama:\n  services:\n    a: { model: a.gguf, host: 0.0.0.0, port: 9000 }\n    b: { model: a.gguf, port: 9000 }\n',
      key: 'llama.services.b.port',
      message: /already used by llama service a/,
      models: ['a.gguf'],
    },
    {
      name: 'a port that is an on-demand stack upstream',
      yaml: 'stacks:\n  web:\n    ondemand: { upstream: 127.0.0.1:8080 }\nllama:\n  services:\n    m: { model: a.gguf, port: 8080 }\n',
      key: 'llama.services.m.port',
      message: /port 8080 is also the on-demand upstream of stack web \(stacks\.web\.ondemand\.upstream/,
      models: ['a.gguf'],
      files: { 'web/compose.yaml': COMPOSE },
    },
    {
      name: 'a port that is an on-demand stack upstream given as a bare port',
      yaml: 'stacks:\n  web:\n    ondemand: { upstream: 8080 }\nllama:\n  services:\n    m: { model: a.gguf, port: 8080 }\n',
      key: 'llama.services.m.port',
      message: /on-demand upstream of stack web/,
      models: ['a.gguf'],
      files: { 'web/compose.yaml': COMPOSE },
    },
    { name: 'a name that is not a safe unit name', yaml: 'llama:\n  services:\n    "Big Model": { model: a.gguf, port: 9000 }\n', key: 'llama.services.Big Model', message: /cannot be a service name/, models: ['a.gguf'] },
    { name: 'a name with a dot', yaml: 'llama:\n  services:\n    "a.b": { model: a.gguf, port: 9000 }\n', key: 'llama.services.a.b', message: /cannot be a service name/, models: ['a.gguf'] },
    {
      name: 'a name that collides with a stack unit',
      yaml: 'llama:\n  services:\n    web-stack: { model: a.gguf, port: 9000 }\n',
      key: 'llama.services.web-stack',
      message: /collide with stack web's unit/,
      models: ['a.gguf'],
      files: { 'web/compose.yaml': COMPOSE },
    },
    { name: 'a name ending in -stack', yaml: 'llama:\n  services:\n    big-stack: { model: a.gguf, port: 9000 }\n', key: 'llama.services.big-stack', message: /-stack/, models: ['a.gguf'] },
    { name: 'a name of zoopa’s own units', yaml: 'llama:\n  services:\n    zoopa-ondemand: { model: a.gguf, port: 9000 }\n', key: 'llama.services.zoopa-ondemand', message: /kept for zoopa/, models: ['a.gguf'] },
    {
      name: 'a name that is also a stack',
      yaml: 'llama:\n  services:\n    web: { model: a.gguf, port: 9000 }\n',
      key: 'llama.services.web',
      message: /a stack is also called web/,
      models: ['a.gguf'],
      files: { 'web/compose.yaml': COMPOSE },
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const w = world(c.yaml, { models: c.models ?? [], files: c.files ?? {} });
      const e = renderError(w);
      assert.equal(e.key, c.key);
      assert.equal(e.file, path.join(w.root, 'zoopa.yaml'));
      assert.match(e.message, c.message);
      assert.ok(e.message.startsWith(c.key), `message names the key: ${e.message}`);
      assert.ok(e.hint, 'has a hint');
      assert.equal(e.exitStatus, 2);
      // renderAll (what render/install use) fails the same way.
      const project = loadProject({ root: w.root, env: w.env });
      assert.throws(() => renderAll({ project, tools: resolveTools({ env: w.env }), env: w.env }), ConfigError);
    });
  }

  test('schema errors: unknown key, bad cache type, missing port (through the loader)', () => {
    for (const [yaml, re] of [
      ['llama:\n  services:\n    m: { model: a.gguf, port: 9000, ctxsize: 1 }\n', /llama\.services\.m\.ctxsize: unknown key/],
      ['llama:\n  services:\n    m: { model: a.gguf, port: 9000, cache_type_k: q9 }\n', /llama\.services\.m\.cache_type_k: "q9" is not allowed/],
      ['llama:\n  services:\n    m: { model: a.gguf }\n', /llama\.services\.m\.port: required/],
      ['llama:\n  bianry: /x\n', /llama\.bianry: unknown key/],
    ] as const) {
      const w = world(yaml, { models: ['a.gguf'] });
      assert.throws(() => loadProject({ root: w.root, env: w.env }), (e: unknown) => e instanceof ConfigError && re.test(e.message));
    }
  });

  test('list does not fail on a missing model (it shows it), render does', () => {
    const w = world('llama:\n  services:\n    m: { model: nope.gguf, port: 9000 }\n');
    const project = loadProject({ root: w.root, env: w.env });
    assert.equal(resolveLlama(project, { env: w.env, checkFiles: false })[0]!.modelPath, path.join(w.models, 'nope.gguf'));
    assert.throws(() => resolveLlama(project, { env: w.env }), ConfigError);
  });

  for (const [name, yaml, re] of [
    ['a missing model file', 'llama:\n  services:\n    m: { model: nope.gguf, port: 9000 }\n', /zoopa\.yaml: llama\.services\.m\.model: model file .*nope\.gguf does not exist/],
    ['a bad cpus spec', 'llama:\n  services:\n    m: { model: a.gguf, port: 9000, cpus: "0 1 6-x" }\n', /llama\.services\.m\.cpus: bad CPU list/],
    ['a port clash', 'llama:\n  services:\n    a: { model: a.gguf, port: 9000 }\n    b: { model: a.gguf, port: 9000 }\n', /llama\.services\.b\.port: port 9000 is already used by llama service a/],
  ] as const) {
    test(`through the CLI: ${name} → exit 2, one error with a hint, nothing written`, async () => {
      const w = world(yaml, { models: ['a.gguf'] });
      const before = snapshot(w.base);
      for (const args of [['render'], ['install', '--dry-run'], ['install']]) {
        const r = await zoopa(['--root', w.root, ...args], { env: w.env });
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
        assert.match(r.stderr, /hint: /);
        assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error: ')).length, 1);
      }
      assert.deepEqual(snapshot(w.base), before, 'nothing written');
    });
  }
});

describe('enable/disable and doctor', () => {
  const yaml = (binary: string) => `llama:\n  binary: ${binary}\n  services:\n    a: { model: a.gguf, port: 9000 }\n    b: { model: a.gguf, port: 9001, ondemand: true, cpus: "0 1 6-11" }\n    c: { router: true, port: 9002, nice: -5 }\n`;

  test('enable: the service, or for an on-demand one its socket and the socket folder unit', () => {
    const w = world(yaml(STANDIN), { models: ['a.gguf'] });
    const project = loadProject({ root: w.root, env: w.env });
    const plan = planLlamaEnable(pickServices(project, ['b.service', 'a'], w.env));
    assert.deepEqual(plan, { services: ['a', 'b'], enable: ['zoopa-ondemand-dir.service', 'a.service', 'zoopa-ondemand@b.socket'], disable: ['a.service', 'zoopa-ondemand@b.socket'] });
    assert.throws(() => pickServices(project, ['nope'], w.env), (e: unknown) => e instanceof UsageError && /unknown llama service "nope"/.test(e.message) && /a, b, c/.test(e.hint ?? ''));
  });

  test('through the CLI: enable --dry-run prints the systemctl command; an unknown service exits 2', async () => {
    const w = world(yaml(STANDIN), { models: ['a.gguf'] });
    const r = await zoopa(['--root', w.root, 'llama', 'enable', '--now', '--dry-run', 'a', 'b'], { env: w.env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'would run: systemctl --user enable --now zoopa-ondemand-dir.service a.service zoopa-ondemand@b.socket\ndry run: nothing changed\n');
    const bad = await zoopa(['--root', w.root, 'llama', 'disable', 'x'], { env: w.env });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown llama service "x"/);
  });

  test('doctor: binary, models, cpus this machine lacks, negative nice beyond RLIMIT_NICE', async () => {
    const w = world(yaml('/nonexistent/llama-server'), { models: ['a.gguf'] });
    const project = loadProject({ root: w.root, env: w.env });
    fs.rmSync(w.models, { recursive: true });
    const checks = new Map((await llamaChecks(project, w.env, { cpuCount: 2, isRoot: false })).map((c) => [c.check, c]));
    assert.equal(checks.get('llama binary')?.verdict, 'fail');
    assert.match(checks.get('llama binary')!.fix!, /cmake/);
    assert.equal(checks.get('llama models')?.verdict, 'fail');
    assert.match(checks.get('llama models')!.detail, /a: .*a\.gguf; b: .*; c: models folder/);
    assert.equal(checks.get('llama cpus (b)')?.verdict, 'warn');
    assert.match(checks.get('llama cpus (b)')!.detail, /6-11 are absent/);
    if (lowestAllowedNice() === 0) assert.equal(checks.get('llama nice')?.verdict, 'warn');

    const ok = world(yaml(STANDIN), { models: ['a.gguf'] });
    const good = await llamaChecks(loadProject({ root: ok.root, env: ok.env }), ok.env, { cpuCount: 64, isRoot: true });
    assert.deepEqual(good.map((c) => [c.check, c.verdict]), [['llama binary', 'ok'], ['llama flags', 'ok'], ['llama models', 'ok']]);
    assert.match(good[0]!.detail, /version: 0 \(stand-in/);
  });

  test('doctor: a flag the binary\'s --help does not list is named with its service; a binary that cannot run fails', async () => {
    const w = world(yaml(STANDIN).replace('a: { model: a.gguf, port: 9000 }', 'a: { model: a.gguf, port: 9000, extra_args: [--no-such-flag, --jinja, --n_gpu_layers, "-1"] }'), { models: ['a.gguf'] });
    const checks = await llamaChecks(loadProject({ root: w.root, env: w.env }), w.env, { cpuCount: 64, isRoot: true });
    const flags = checks.filter((c) => c.check.startsWith('llama flags'));
    assert.deepEqual(flags.map((c) => [c.check, c.verdict]), [['llama flags (a)', 'warn']]);
    assert.match(flags[0]!.detail, /^service a: --no-such-flag is not listed by .*llama-server --help \(version: 0 \(stand-in/);
    assert.match(flags[0]!.fix!, /llama\.services\.a\.extra_args/);

    // A binary that exists but cannot run (as when its shared libraries are missing).
    const broken = path.join(w.base, 'broken-llama-server');
    fs.writeFileSync(broken, '#!/bin/sh\necho "error while loading shared libraries: libllama.so.0" >&2\nexit 127\n', { mode: 0o755 });
    const b = world(yaml(broken), { models: ['a.gguf'] });
    const bad = await llamaChecks(loadProject({ root: b.root, env: b.env }), b.env, { cpuCount: 64, isRoot: true });
    assert.equal(bad[0]!.check, 'llama binary');
    assert.equal(bad[0]!.verdict, 'fail');
    assert.match(bad[0]!.detail, /--version failed \(exit 127\): error while loading shared libraries/);
  });

  test('--help parsing: option lines at column 0, names separated by commas; command line flags', () => {
    const help = [
      '----- common params -----',
      '',
      '-h,    --help, --usage                  print usage and exit',
      '-t,    --threads N                      number of CPU threads',
      '-kvo,  --kv-offload, -nkvo, --no-kv-offload',
      '                                        whether to enable KV cache offloading, see --not-a-flag',
      '--spec-draft-type-k, -ctkd, --cache-type-k-draft TYPE',
      '-fa,   --flash-attn [on|off|auto]       set Flash Attention use',
      '--rope-scaling {none,linear,yarn}       RoPE frequency scaling method',
    ].join('\n');
    assert.deepEqual([...parseHelpFlags(help)].sort(), ['--cache-type-k-draft', '--flash-attn', '--help', '--kv-offload', '--no-kv-offload', '--rope-scaling', '--spec-draft-type-k', '--threads', '--usage', '-ctkd', '-fa', '-h', '-kvo', '-nkvo', '-t']);
    assert.deepEqual(commandLineFlags(['/bin/llama-server', '--threads', '4', '--n_gpu_layers', '-1', '--flash-attn=on', '-t', '2', 'x']), ['--threads', '--n-gpu-layers', '--flash-attn', '-t']);
    assert.deepEqual(unknownFlags(['b', '--threads', '1', '--mmap', '--mmap', '-t', '1'], parseHelpFlags(help)), ['--mmap']);
  });

  test('RLIMIT_NICE from /proc/<pid>/limits', () => {
    const limits = (v: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${v}                    ${v}                    \n`;
    assert.equal(lowestAllowedNice(limits('0')), 0);
    assert.equal(lowestAllowedNice(limits('25')), -5);
    assert.equal(lowestAllowedNice(limits('40')), -20);
    assert.equal(lowestAllowedNice(limits('unlimited')), -20);
  });
});

describe('test bed parts for the real llama-server', () => {
  test('tiny GGUF: header, metadata and tensor table as llama.cpp reads them, data aligned, same bytes every time', async () => {
    const { tinyGguf } = await import('../testbed/tiny-gguf.js');
    const b = tinyGguf({ name: 't', embd: 64, ff: 128, heads: 2 });
    assert.deepEqual(tinyGguf({ name: 't', embd: 64, ff: 128, heads: 2 }), b, 'deterministic');
    assert.equal(b.toString('ascii', 0, 4), 'GGUF');
    assert.equal(b.readUInt32LE(4), 3, 'version 3');
    const tensors = Number(b.readBigUInt64LE(8));
    const kvs = Number(b.readBigUInt64LE(16));
    assert.equal(tensors, 3 + 9, 'embeddings, output norm, output, and 9 per layer');
    let o = 24;
    const str = () => {
      const n = Number(b.readBigUInt64LE(o));
      const s = b.toString('utf8', o + 8, o + 8 + n);
      o += 8 + n;
      return s;
    };
    const sizes: Record<number, number> = { 4: 4, 5: 4, 6: 4, 7: 1 };
    const meta = new Map<string, unknown>();
    for (let i = 0; i < kvs; i++) {
      const key = str();
      const type = b.readUInt32LE(o);
      o += 4;
      if (type === 8) meta.set(key, str());
      else if (type === 9) {
        const et = b.readUInt32LE(o);
        const n = Number(b.readBigUInt64LE(o + 4));
        o += 12;
        if (et === 8) for (let k = 0; k < n; k++) str();
        else o += n * sizes[et]!;
        meta.set(key, n);
      } else {
        meta.set(key, type === 6 ? b.readFloatLE(o) : type === 7 ? b[o] : b.readUInt32LE(o));
        o += sizes[type]!;
      }
    }
    assert.equal(meta.get('general.architecture'), 'llama');
    assert.equal(meta.get('llama.embedding_length'), 64);
    assert.equal(meta.get('tokenizer.ggml.model'), 'llama');
    const nVocab = meta.get('tokenizer.ggml.tokens') as number;
    assert.ok(nVocab >= 3 + 256, `${nVocab} tokens: control and byte tokens at least`);
    assert.equal(meta.get('tokenizer.ggml.scores'), nVocab);
    assert.equal(meta.get('tokenizer.ggml.token_type'), nVocab);
    assert.match(meta.get('tokenizer.chat_template') as string, /add_generation_prompt/);
    let end = 0;
    for (let i = 0; i < tensors; i++) {
      const name = str();
      const dims = b.readUInt32LE(o);
      const shape = Array.from({ length: dims }, (_, k) => Number(b.readBigUInt64LE(o + 4 + 8 * k)));
      o += 4 + 8 * dims;
      assert.equal(b.readUInt32LE(o), 0, `${name}: F32`);
      const offset = Number(b.readBigUInt64LE(o + 4));
      o += 12;
      assert.equal(offset % 32, 0, `${name}: aligned`);
      if (name === 'token_embd.weight') assert.deepEqual(shape, [64, nVocab]);
      end = Math.max(end, offset + shape.reduce((x, y) => x * y, 1) * 4);
    }
    const dataStart = Math.ceil(o / 32) * 32;
    assert.equal(b.length, dataStart + Math.ceil(end / 32) * 32, 'the data follows the aligned header');
    assert.ok(b.length < 400 * 1024, `a few hundred KB: ${b.length}`);
  });

  test('llama-fetch: the Debian mirror and keyring come from the machine\'s apt sources (deb822 and one-line), never security', async () => {
    const m = (await import(pathToFileURL(path.join(REPO, 'scripts', 'llama-fetch.mjs')).href)) as {
      debianMirror(etc?: string): { uri: string; keyring: string };
      wrapperText(root: string): string;
    };
    const etc = tmpDir('zoopa-apt-');
    fs.mkdirSync(path.join(etc, 'sources.list.d'));
    fs.writeFileSync(path.join(etc, 'sources.list.d', 'a-security.sources'), 'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n');
    fs.writeFileSync(path.join(etc, 'sources.list.d', 'debian.sources'), `Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\nComponents: main\nSigned-By: ${etc}/key.gpg\n`);
    fs.writeFileSync(path.join(etc, 'key.gpg'), '');
    assert.deepEqual(m.debianMirror(etc), { uri: 'http://mirror.example/debian', keyring: `${etc}/key.gpg` });
    const one = tmpDir('zoopa-apt-');
    fs.writeFileSync(path.join(one, 'sources.list'), '# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n');
    assert.deepEqual(m.debianMirror(one), { uri: 'http://ftp.example/debian', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' });
    assert.deepEqual(m.debianMirror(tmpDir('zoopa-apt-')), { uri: 'http://deb.debian.org/debian', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg' });
    const w = m.wrapperText("/c/it's/root");
    assert.match(w, /^#!\/bin\/sh\n/);
    assert.match(w, /\nexec '\/c\/it'\\''s\/root\/usr\/bin\/llama-server' "\$@"\n$/);
    assert.match(w, /LD_LIBRARY_PATH='\/c\/it'\\''s\/root\/usr\/lib\/x86_64-linux-gnu:.*\/ggml\/backends0:.*\/llama'/);
  });
});
