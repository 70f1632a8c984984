/**
 * llama services in the real test bed: a real systemd user manager runs the rendered
 * units with the REAL llama-server (llama.cpp 0.7.0 from Debian unstable, fetched and
 * cached by scripts/llama-fetch.mjs; test/testbed/llama.ts) and tiny models the project
 * writes itself (test/testbed/tiny-gguf.ts: random weights, nonsense answers).
 *
 * With the real server:
 *  - the original's three kinds (router mode with --models-dir, one model with an alias,
 *    a large-context model with `mmap: true` — which used to render --mmap, refused by
 *    this llama-server) are installed, enabled and started; each runs exactly the
 *    rendered argv with the rendered CPU affinity and answers /health, /v1/models,
 *    /completion and /v1/chat/completions with real completions;
 *  - router mode lists the tiny models, loads one on request, and after
 *    --sleep-idle-seconds the loaded model is reported sleeping (and woken by a request);
 *    one model with --sleep-idle-seconds sleeps too (/props is_sleeping) and wakes;
 *  - Restart=on-failure, a clean stop, `zoopa llama list --json`;
 *  - on demand through zoopa-ondemand@slow.socket: a completion request made while the
 *    service is stopped is held while the (slow-loading) model loads and answered by
 *    the real server; the idle stop stops it; /health answers 503 while the model loads,
 *    then 200; a service started by hand is not stopped by the idle stop (the proxy says
 *    "not started by zoopa");
 *  - `zoopa doctor`'s flag check against the real --help: every rendered flag of the three
 *    kinds is listed, a flag the real --help does not list put into extra_args is reported;
 *  - the stand-in refuses exactly the flags the real one refuses (same argv, same verdict).
 *
 * Still on the stand-in (test/standins/llama-server), because the real server cannot show
 * it here:
 *  - a vision model with --mmproj: no multimodal projector can be made small;
 *  - a model that loads for LONGER than the idle timeout: the real tiny model's load time
 *    is not something a test can choose; the stand-in's LLAMA_STANDIN_LOAD_MS is.
 *
 * Never asserts on durations: waits have deadlines only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/exec.js';
import { parseCpus } from '../../src/llama/cpus.js';
import { llamaChecks } from '../../src/llama/doctor.js';
import { parseHelpFlags } from '../../src/llama/help.js';
import type { LlamaListEntry } from '../../src/llama/list.js';
import { resolveLlama } from '../../src/llama/resolve.js';
import { loadProject } from '../../src/stacks/discover.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { isolatedEnv, tmpDir, writeFiles, zoopa } from '../helpers/cli.js';
import { freePort, useTestbed, type Testbed } from '../testbed/index.js';
import { realLlamaServer, tinyModels, type TinyModels } from '../testbed/llama.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const STANDIN = path.join(REPO, 'test', 'standins', 'llama-server');

interface Reply {
  status: number;
  body: string;
}

type Target = { port: number } | { socketPath: string };

/** One HTTP request over TCP or a unix socket. The deadline only stops a hung test. */
function request(target: Target, method: 'GET' | 'POST', urlPath: string, body?: unknown, timeoutMs = 180_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }),
        method,
        path: urlPath,
        agent: false,
        headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

const get = (target: Target, urlPath: string, timeoutMs?: number) => request(target, 'GET', urlPath, undefined, timeoutMs);

interface Completion {
  content: string;
  tokens_predicted: number;
  stop: boolean;
}

interface ChatCompletion {
  object: string;
  model: string;
  choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
  usage: { completion_tokens: number };
}

/** A real completion: n tokens of nonsense (ignore_eos: the random model may pick end-of-text first). */
async function complete(target: Target, what: string): Promise<Completion> {
  const r = await request(target, 'POST', '/completion', { prompt: 'hello tiny model', n_predict: 4, ignore_eos: true });
  assert.equal(r.status, 200, `${what}: POST /completion → ${r.status} ${r.body.slice(0, 500)}`);
  const c = JSON.parse(r.body) as Completion;
  assert.equal(typeof c.content, 'string', what);
  assert.equal(c.tokens_predicted, 4, `${what}: four tokens generated`);
  return c;
}

async function chat(target: Target, what: string, model?: string): Promise<ChatCompletion> {
  const r = await request(target, 'POST', '/v1/chat/completions', { ...(model ? { model } : {}), messages: [{ role: 'user', content: 'hello' }], max_tokens: 3, ignore_eos: true });
  assert.equal(r.status, 200, `${what}: POST /v1/chat/completions → ${r.status} ${r.body.slice(0, 500)}`);
  const c = JSON.parse(r.body) as ChatCompletion;
  assert.equal(c.object, 'chat.completion', what);
  assert.equal(c.choices[0]?.message.role, 'assistant', what);
  assert.equal(typeof c.choices[0]?.message.content, 'string', what);
  assert.equal(c.usage.completion_tokens, 3, `${what}: three tokens generated`);
  return c;
}

interface ModelList {
  object: string;
  data: Array<{ id: string; aliases?: string[]; status?: { value: string } }>;
}

async function models(target: Target): Promise<ModelList> {
  const r = await get(target, '/v1/models');
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as ModelList;
}

async function show(tb: Testbed, unit: string, prop: string): Promise<string> {
  const r = await tb.systemctl(['show', `--property=${prop}`, '--value', '--', unit]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function llamaList(tb: Testbed): Promise<LlamaListEntry[]> {
  const r = await tb.zoopa(['--root', tb.root, 'llama', 'list', '--json']);
  assert.equal(r.status, 0, `llama list: ${r.stderr}`);
  return JSON.parse(r.stdout) as LlamaListEntry[];
}

/** The last lines of a log, for failure messages. */
function tail(log: string, n = 60): string {
  return log.split('\n').slice(-n).join('\n');
}

function execWords(unitText: string): string[] {
  const v = (parseUnitText(unitText).get('Service') ?? []).find(([k]) => k === 'ExecStart')?.[1];
  assert.ok(v && !v.includes('"'), `plain ExecStart expected: ${v}`);
  return v.split(' ');
}

/** Pids whose parent is `pid` (any of its threads may have started them). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (Number(/^PPid:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${e}/status`, 'utf8'))?.[1]) === pid) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function healthy(tb: Testbed, name: string, port: number): Promise<void> {
  await tb.waitFor(async () => (await get({ port }, '/health', 5000).catch(() => undefined))?.status === 200, {
    timeoutMs: 180_000,
    what: `${name}: GET /health → 200`,
  });
}

/** The real server's process runs exactly the unit's argv (after the wrapper's exec) with its CPU affinity. */
function checkProcess(tb: Testbed, name: string, pid: number, binary: string): void {
  const unitText = fs.readFileSync(path.join(tb.root, 'systemd', `${name}.service`), 'utf8');
  const words = execWords(unitText);
  assert.equal(words[0], binary, `${name}: ExecStart runs the configured llama.binary`);
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  // The wrapper execs the real binary in place: same process, the real llama-server's path first.
  assert.equal(cmdline[0], path.join(path.dirname(binary), 'root', 'usr', 'bin', 'llama-server'), `${name}: the main process is the real llama-server`);
  assert.deepEqual(cmdline.slice(1), words.slice(1), `${name} runs the rendered argv`);
  const affinity = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const want = parseUnitText(unitText).get('Service')!.find(([k]) => k === 'CPUAffinity')?.[1];
  if (want) assert.deepEqual(parseCpus(affinity ?? ''), parseCpus(want), `${name} CPU affinity (${affinity})`);
}

describe('llama services with the real llama-server in a real user manager', () => {
  const bed = useTestbed({ name: 'llama', image: false });
  const ncpu = os.cpus().length;
  const ports = { router: 0, qwen: 0, large: 0, slow: 0 };
  let binary = '';
  let tiny: TinyModels;

  before(async () => {
    binary = await realLlamaServer();
    tiny = tinyModels();
  });

  it('zoopa install renders and links the units of the original three kinds (and an on-demand one)', async () => {
    const tb = bed();
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const yaml = [
      'llama:',
      `  binary: ${binary}`,
      '  working_directory: "~"',
      `  models_dir: ${tiny.dir}`,
      '  defaults:',
      '    batch_size: 512',
      '    parallel: 1',
      '  services:',
      `    router: { router: true, models_max: 1, sleep_idle: 3s, cpus: "0-${ncpu - 1}", port: ${ports.router} }`,
      `    qwen: { model: tiny-a.gguf, alias: qwen, cpus: "0", ctx_size: 2048, cache_type_k: q8_0, cache_type_v: q8_0, port: ${ports.qwen} }`,
      `    large: { model: tiny-b.gguf, alias: large, ctx_size: 131072, mmap: true, mlock: false, sleep_idle: 3s, extra_args: [--jinja, --no-webui], port: ${ports.large} }`,
      `    slow: { model: ${tiny.slow}, alias: slow, load_mode: none, port: ${ports.slow}, ondemand: { idle: 3s, start_timeout: 300s } }`,
      '',
    ].join('\n');
    tb.writeFile('stacks/zoopa.yaml', yaml);
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 0, `install: ${r.stdout}\n${r.stderr}`);
    for (const u of ['router.service', 'qwen.service', 'large.service', 'slow.service']) {
      assert.equal(await show(tb, u, 'LoadState'), 'loaded', u);
    }
    const large = fs.readFileSync(path.join(tb.root, 'systemd', 'large.service'), 'utf8');
    assert.ok(execWords(large).join(' ').includes('--load-mode mmap'), 'mmap: true renders --load-mode mmap');
    assert.ok(!execWords(large).includes('--mmap'), 'no --mmap (refused by this llama-server)');
  });

  it('each service runs the real llama-server with exactly the rendered argv and CPU affinity, and answers with real completions', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'router', 'qwen', 'large']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /systemctl --user enable --now router\.service qwen\.service large\.service/);
    for (const u of ['router.service', 'qwen.service', 'large.service']) assert.equal(await show(tb, u, 'UnitFileState'), 'enabled', u);
    for (const [name, port] of [
      ['router', ports.router],
      ['qwen', ports.qwen],
      ['large', ports.large],
    ] as const) {
      await healthy(tb, name, port).catch((e: Error) => assert.fail(`${e.message}\n${tail(tb.managerLog())}`));
      const health = await get({ port }, '/health');
      assert.deepEqual(JSON.parse(health.body), { status: 'ok' }, name);
      const pid = Number(await show(tb, `${name}.service`, 'MainPID'));
      assert.ok(pid > 0, `${name} has a main process`);
      checkProcess(tb, name, pid, binary);
    }
    for (const [name, port] of [
      ['qwen', ports.qwen],
      ['large', ports.large],
    ] as const) {
      const list = await models({ port });
      assert.equal(list.object, 'list');
      assert.ok(list.data.some((d) => d.id === name || d.aliases?.includes(name)), `${name}: /v1/models names the alias: ${JSON.stringify(list.data.map((d) => [d.id, d.aliases]))}`);
      await complete({ port }, name);
      await chat({ port }, name);
    }
  });

  it('router mode: --models-dir lists the tiny models, one is loaded on request, and sleeps after --sleep-idle-seconds', async () => {
    const tb = bed();
    const port = ports.router;
    const before = await models({ port });
    assert.deepEqual(before.data.map((d) => d.id).sort(), [...tiny.names], 'the models folder, by file name');
    for (const d of before.data) assert.equal(d.status?.value, 'unloaded', `${d.id} before any request`);

    const c = await chat({ port }, 'router → tiny-b', 'tiny-b');
    assert.equal(c.model, 'tiny-b');
    const loaded = new Map((await models({ port })).data.map((d) => [d.id, d.status?.value]));
    assert.equal(loaded.get('tiny-a'), 'unloaded', 'only the requested model was loaded');
    // (Already sleeping, on a machine slow enough to spend --sleep-idle-seconds since the answer.)
    assert.ok(['loaded', 'sleeping'].includes(loaded.get('tiny-b') ?? ''), `tiny-b loaded: ${loaded.get('tiny-b')}`);
    // The router starts the model's instance by re-running itself: a child of the main process.
    const pid = Number(await show(tb, 'router.service', 'MainPID'));
    const children = childrenOf(pid);
    assert.equal(children.length, 1, 'one model instance');
    const childArgv = fs.readFileSync(`/proc/${children[0]}/cmdline`, 'utf8').split('\0');
    assert.ok(childArgv.includes('--sleep-idle-seconds') && childArgv.includes(tiny.files['tiny-b']!), `instance argv: ${childArgv.join(' ')}`);

    // sleep_idle: 3s → --sleep-idle-seconds 3: the instance unloads the model and reports sleeping.
    await tb.waitFor(async () => (await models({ port })).data.find((d) => d.id === 'tiny-b')?.status?.value === 'sleeping', {
      timeoutMs: 180_000,
      what: 'router: tiny-b sleeping after --sleep-idle-seconds',
    });
    assert.match(tb.managerLog(), /server is entering sleeping state/);
    // A request wakes it and is answered.
    await chat({ port }, 'router → tiny-b after sleeping', 'tiny-b');
  });

  it('one model with --sleep-idle-seconds: the model sleeps when idle (/health stays 200) and a request wakes it', async () => {
    const tb = bed();
    const port = ports.large;
    const props = async () => JSON.parse((await get({ port }, '/props')).body) as { is_sleeping: boolean };
    await tb.waitFor(async () => (await props()).is_sleeping, { timeoutMs: 180_000, what: 'large: /props is_sleeping after --sleep-idle-seconds 3' });
    assert.equal((await get({ port }, '/health')).status, 200, 'a sleeping server is healthy');
    await complete({ port }, 'large after sleeping');
    assert.equal((await props()).is_sleeping, false, 'the request woke it');
  });

  it('zoopa llama list --json shows them active, with model sizes and the models folder', async () => {
    const tb = bed();
    const byName = new Map((await llamaList(tb)).map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()], ['router', 'qwen', 'large', 'slow']);
    for (const n of ['router', 'qwen', 'large']) {
      assert.equal(byName.get(n)!.state, 'active', n);
      assert.equal(byName.get(n)!.subState, 'running', n);
    }
    const qwen = byName.get('qwen')!;
    assert.equal(qwen.model, tiny.files['tiny-a']);
    assert.equal(qwen.modelBytes, fs.statSync(tiny.files['tiny-a']!).size);
    assert.equal(qwen.cpus, '0');
    assert.equal(qwen.threads, 1);
    assert.equal(qwen.port, ports.qwen);
    const router = byName.get('router')!;
    assert.equal(router.mode, 'router');
    assert.equal(router.modelsDir, tiny.dir);
    assert.equal(router.modelFiles, tiny.names.length);
    const slow = byName.get('slow')!;
    assert.equal(slow.ondemand, true);
    assert.equal(slow.state, 'inactive');
  });

  it('Restart=on-failure brings a crashed server back', async () => {
    const tb = bed();
    const pid = Number(await show(tb, 'qwen.service', 'MainPID'));
    process.kill(pid, 'SIGKILL');
    const again = await tb.waitFor(async () => {
      const p = Number(await show(tb, 'qwen.service', 'MainPID'));
      if (p === 0 || p === pid) return undefined;
      const h = await get({ port: ports.qwen }, '/health', 5000).catch(() => undefined);
      return h?.status === 200 ? p : undefined;
    }, { timeoutMs: 180_000, what: 'qwen.service restarted and healthy' });
    assert.notEqual(again, pid);
    assert.equal(await show(tb, 'qwen.service', 'NRestarts'), '1');
    await complete({ port: ports.qwen }, 'qwen after the restart');
  });

  it('a stop is clean: SIGTERM ends the server, the unit is inactive, not failed', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'llama', 'disable', '--now', 'router', 'qwen', 'large']);
    assert.equal(r.status, 0, r.stderr);
    for (const u of ['router.service', 'qwen.service', 'large.service']) {
      assert.equal(await show(tb, u, 'ActiveState'), 'inactive', u);
      assert.notEqual(await show(tb, u, 'UnitFileState'), 'enabled', u);
    }
  });

  describe('on demand through zoopa-ondemand@slow.socket', () => {
    const envFile = () => path.join(bed().configHome, 'zoopa-ondemand', 'slow.env');
    const sock = () => ({ socketPath: path.join(bed().runtimeDir, 'ondemand', 'slow.sock') });

    it('zoopa install wrote the env file of the contract for the llama service', () => {
      const file = envFile();
      assert.ok(fs.existsSync(file), `zoopa install did not write ${file}`);
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
      for (const want of [`ZOOPA_UPSTREAM=127.0.0.1:${ports.slow}`, 'ZOOPA_STACK_UNIT=slow.service', 'ZOOPA_READY=http:/health', 'ZOOPA_START_TIMEOUT=300', 'ZOOPA_IDLE_TIMEOUT=3']) {
        assert.ok(lines.includes(want), `${want} in ${file}: ${JSON.stringify(lines)}`);
      }
    });

    it('a completion request to the stopped service is held while the model loads and answered by the real server; then the idle stop stops it', async () => {
      const tb = bed();
      const s = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'slow']);
      assert.equal(s.status, 0, `${s.stderr}\n${tail(tb.managerLog())}`);
      assert.match(s.stdout, /systemctl --user enable --now zoopa-ondemand-dir\.service zoopa-ondemand@slow\.socket/);
      assert.equal(await show(tb, 'zoopa-ondemand@slow.socket', 'ActiveState'), 'active');
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'inactive');
      assert.notEqual(await show(tb, 'slow.service', 'UnitFileState'), 'enabled', 'the on-demand service itself is not enabled');
      const logStart = tb.managerLog().length;

      await complete(sock(), 'through the socket').catch((e: Error) => assert.fail(`${e.message}\n${tail(tb.managerLog().slice(logStart))}`));
      // (No look at the process here: a slow machine may already have stopped it at idle.
      // The next tests check it while it runs.)

      // The server loaded the model after the request came in, and served it after loading.
      const log = tb.managerLog().slice(logStart);
      const loading = log.indexOf(`loading model '${tiny.slow}'`);
      const loaded = log.indexOf('model loaded', loading);
      const served = log.indexOf('print_timing', loaded);
      assert.ok(loading >= 0 && loaded > loading && served > loaded, `the real server loaded the model, then served the request:\n${tail(log)}`);

      const entry = (await llamaList(tb)).find((e) => e.name === 'slow')!;
      assert.equal(entry.socket, 'active');

      await tb.waitFor(async () => (await show(tb, 'slow.service', 'ActiveState')) === 'inactive', { timeoutMs: 180_000, what: 'the idle stop of slow.service' });
      assert.equal(await show(tb, 'slow.service', 'Result'), 'success');
      assert.equal(await show(tb, 'zoopa-ondemand@slow.socket', 'ActiveState'), 'active', 'the socket keeps listening');
    });

    it('/health answers 503 while the model loads, then 200', async () => {
      const tb = bed();
      // The slow model is read into memory (load_mode: none): loading takes a while, but no set
      // time, so the probe polls as fast as it can and the start is repeated until a 503 was seen.
      const seen: number[] = [];
      for (let attempt = 0; attempt < 5 && !seen.includes(503); attempt++) {
        assert.equal((await tb.systemctl([attempt === 0 ? 'start' : 'restart', 'slow.service'])).status, 0);
        await tb.waitFor(async () => {
          const h = await get({ port: ports.slow }, '/health', 5000).catch(() => undefined);
          if (h && (seen.length === 0 || seen[seen.length - 1] !== h.status)) seen.push(h.status);
          return h?.status === 200;
        }, { timeoutMs: 180_000, intervalMs: 10, what: 'slow.service: GET /health → 200' });
      }
      assert.deepEqual(seen.slice(-2), [503, 200], `/health while loading, then loaded: ${seen.join(' ')}`);
      checkProcess(tb, 'slow', Number(await show(tb, 'slow.service', 'MainPID')), binary);
    });

    it('a service started by hand is not stopped by the idle stop', async () => {
      const tb = bed();
      // Started by hand in the test above; still running.
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'active');
      const pid = await show(tb, 'slow.service', 'MainPID');
      const logStart = tb.managerLog().length;
      await complete(sock(), 'through the socket to the service started by hand');
      await tb.waitFor(() => /leaving slow\.service running \(not started by zoopa\)/.test(tb.managerLog().slice(logStart)), {
        timeoutMs: 180_000,
        what: 'the proxy\'s idle timer: "leaving slow.service running (not started by zoopa)"',
      });
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'active', 'still running');
      assert.equal(await show(tb, 'slow.service', 'MainPID'), pid, 'the same process');
      assert.equal((await tb.systemctl(['stop', 'slow.service'])).status, 0);
    });
  });
});

describe('llama services on the stand-in, for what the real server cannot show here', () => {
  const bed = useTestbed({ name: 'llama-standin', image: false });
  const ports = { vision: 0, longload: 0 };

  it('zoopa install: a vision model with a projector, and an on-demand model that loads for longer than its idle timeout', async () => {
    const tb = bed();
    assert.ok(fs.existsSync(STANDIN), `stand-in ${STANDIN} exists`);
    // The checkout may not be enterable by the test user: the stand-in gets its own copy.
    const binary = tb.writeFile('bin/llama-server', fs.readFileSync(STANDIN), 0o755);
    tb.writeFile('bin/llama-server.help', fs.readFileSync(`${STANDIN}.help`));
    for (const m of ['qwen.gguf', 'gemma-3-4b-it-Q4_K_M.gguf', 'mmproj-gemma-3-4b-it-f16.gguf']) tb.writeFile(path.join('home', 'models', m), `stand-in model ${m}\n`);
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const yaml = [
      'llama:',
      `  binary: ${binary}`,
      '  working_directory: "~"',
      '  services:',
      `    vision: { model: gemma-3-4b-it-Q4_K_M.gguf, mmproj: mmproj-gemma-3-4b-it-f16.gguf, alias: gemma, ctx_size: 131072, mmap: true, port: ${ports.vision} }`,
      `    longload: { model: qwen.gguf, alias: longload, port: ${ports.longload}, ondemand: { idle: 3s, start_timeout: 120s } }`,
      '',
    ].join('\n');
    tb.writeFile('stacks/zoopa.yaml', yaml);
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 0, `install: ${r.stdout}\n${r.stderr}`);
  });

  it('the vision model runs with --mmproj and the rendered argv, and answers /v1/models', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'vision']);
    assert.equal(r.status, 0, r.stderr);
    await healthy(tb, 'vision', ports.vision);
    assert.deepEqual((await models({ port: ports.vision })).data.map((d) => d.id), ['gemma']);
    const unitText = fs.readFileSync(path.join(tb.root, 'systemd', 'vision.service'), 'utf8');
    const pid = Number(await show(tb, 'vision.service', 'MainPID'));
    // The shebang makes it `node <stand-in> args...`: compare everything after node.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    assert.deepEqual(cmdline.slice(1), execWords(unitText), 'vision runs the rendered argv');
    assert.ok(cmdline.includes('--mmproj'));
    const d = await tb.zoopa(['--root', tb.root, 'llama', 'disable', '--now', 'vision']);
    assert.equal(d.status, 0, d.stderr);
  });

  it('a model that loads for longer than the idle timeout is not stopped as soon as it is ready', async () => {
    const tb = bed();
    const s = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'longload']);
    assert.equal(s.status, 0, s.stderr);
    assert.equal((await tb.systemctl(['set-environment', 'LLAMA_STANDIN_LOAD_MS=5000'])).status, 0);
    const logStart = tb.managerLog().length;
    const sock = { socketPath: path.join(tb.runtimeDir, 'ondemand', 'longload.sock') };
    const reply = await get(sock, '/v1/models').catch((e: Error) => assert.fail(`GET through the socket: ${e.message}\n${tail(tb.managerLog().slice(logStart))}`));
    assert.equal(reply.status, 200, `${reply.body}\n${tail(tb.managerLog().slice(logStart))}`);
    assert.deepEqual((JSON.parse(reply.body) as ModelList).data.map((d) => d.id), ['longload']);
    const log = tb.managerLog().slice(logStart);
    assert.ok(log.indexOf('main: model loaded') > log.indexOf('main: loading model (stand-in: 5000 ms)'), `loaded during this request:\n${tail(log)}`);
    assert.doesNotMatch(log, /request: GET \/v1\/models \S+ 503/, 'never forwarded while loading');
    await tb.waitFor(async () => (await show(tb, 'longload.service', 'ActiveState')) === 'inactive', { timeoutMs: 180_000, what: 'the idle stop of longload.service' });
    assert.equal(await show(tb, 'longload.service', 'Result'), 'success');
  });
});

describe('the real llama-server\'s flags: doctor and the stand-in agree with it', () => {
  let binary = '';
  let tiny: TinyModels;
  before(async () => {
    binary = await realLlamaServer();
    tiny = tinyModels();
  });

  /** A project in a temporary folder, the original's three kinds run by `binaryPath`. */
  function project(binaryPath: string, extraArgs: string[] = []) {
    const base = tmpDir('zoopa-llama-flags-');
    const env = isolatedEnv(base);
    const root = path.join(base, 'stacks');
    const yaml = [
      'llama:',
      `  binary: ${binaryPath}`,
      '  working_directory: "~"',
      `  models_dir: ${tiny.dir}`,
      '  defaults: { cpus: "0", batch_size: 512, ubatch_size: 256, parallel: 1 }',
      '  services:',
      '    router: { router: true, models_max: 1, sleep_idle: 10m, ctx_size: 8192, port: 8080 }',
      `    qwen: { model: tiny-a.gguf, alias: qwen, ctx_size: 16384, cache_type_k: q8_0, cache_type_v: q8_0, port: 8081${extraArgs.length ? `, extra_args: ${JSON.stringify(extraArgs)}` : ''} }`,
      '    large: { model: tiny-b.gguf, mmproj: tiny-a.gguf, alias: large, ctx_size: 131072, mmap: true, mlock: true, extra_args: [--jinja, --no-webui], port: 8082 }',
      `    slow: { model: ${tiny.slow}, load_mode: none, threads: 1, threads_batch: 1, port: 8083, ondemand: true }`,
      '',
    ].join('\n');
    writeFiles(root, { 'zoopa.yaml': yaml });
    fs.mkdirSync(path.join(env.HOME!), { recursive: true });
    return { project: loadProject({ root, env }), env };
  }

  it('a warm cache is used offline: no apt-get, no dpkg-deb, no network', async () => {
    const entry = path.dirname(binary);
    const before = fs.statSync(path.join(entry, 'root', 'usr', 'bin', 'llama-server'));
    const empty = tmpDir('zoopa-llama-nopath-');
    // Nothing to run on PATH and a proxy that goes nowhere: a download could not even start.
    const r = await run([process.execPath, path.join(REPO, 'scripts', 'llama-fetch.mjs')], {
      env: { PATH: empty, HOME: empty, http_proxy: 'http://127.0.0.1:9', https_proxy: 'http://127.0.0.1:9' },
      reject: false,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), binary);
    assert.equal(r.stderr, '', 'nothing fetched');
    const after = fs.statSync(path.join(entry, 'root', 'usr', 'bin', 'llama-server'));
    assert.equal(after.ino, before.ino, 'the same unpacked tree');
    assert.equal(after.mtimeMs, before.mtimeMs);
    const v = await run([binary, '--version'], { env: { PATH: empty }, reject: false });
    assert.equal(v.status, 0, v.stderr);
    // Not pinned: a cold cache gets unstable's llama.cpp of the day (README names the one checked).
    assert.match(v.stdout + v.stderr, /^version: \d+\.\d+\.\d+ \(build \d+/m);
  });

  it('doctor: every flag zoopa renders for the three kinds is in the real --help', async () => {
    const { project: p, env } = project(binary);
    const checks = await llamaChecks(p, env, { cpuCount: 64, isRoot: true });
    const binaryCheck = checks.find((c) => c.check === 'llama binary')!;
    assert.equal(binaryCheck.verdict, 'ok', binaryCheck.detail);
    assert.match(binaryCheck.detail, /version: \d+\.\d+\.\d+ \(build \d+/);
    const flags = checks.filter((c) => c.check.startsWith('llama flags'));
    assert.deepEqual(flags.map((c) => [c.check, c.verdict, c.detail]).map((x) => x.slice(0, 2)), [['llama flags', 'ok']], JSON.stringify(flags));
  });

  it('doctor: a flag the real --help does not list, put into extra_args, is reported with the flag and the service', async () => {
    const { project: p, env } = project(binary, ['--no-such-flag', '--slot-save-path', '/tmp']);
    const checks = await llamaChecks(p, env, { cpuCount: 64, isRoot: true });
    const flags = checks.filter((c) => c.check.startsWith('llama flags'));
    assert.deepEqual(flags.map((c) => [c.check, c.verdict]), [['llama flags (qwen)', 'warn']]);
    assert.match(flags[0]!.detail, /^service qwen: --no-such-flag is not listed by .*llama-server --help \(version: /);
    // Through the CLI: `zoopa doctor --json` (its other checks may fail here: no user manager).
    const cli = await zoopa(['--root', p.root, 'doctor', '--json'], { env });
    const reported = (JSON.parse(cli.stdout) as Array<{ check: string; verdict: string; detail: string }>).find((c) => c.check === 'llama flags (qwen)');
    assert.equal(reported?.verdict, 'warn', cli.stdout);
    assert.match(reported!.detail, /--no-such-flag/);
    // And the real server does refuse it.
    const r = await run([binary, '--no-such-flag', '--help'], { reject: false });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /error: invalid argument: --no-such-flag/);
  });

  it('the stand-in refuses exactly the flags the real llama-server refuses (same argv, same verdict)', async () => {
    const { project: p } = project(binary);
    const rendered = resolveLlama(p, { checkFiles: false }).map((s) => s.argv.slice(1));
    const cases: string[][] = [
      ...rendered,
      ['--mmap'],
      ['--no-mmap'],
      ['--mlock'],
      ['--load-mode', 'mmap'],
      ['-lm', 'mmap+mlock'],
      ['--load-mode', 'bogus'],
      ['--no-such-flag'],
      ['--threads', 'x'],
      ['--threads_batch', '2'],
      ['--models-max', 'x'],
      ['--sleep-idle-seconds', '5'],
      ['--n-gpu-layers', '-1'],
      ['-c', '4096', '-t', '1', '-np', '1', '-a', 'x'],
      ['--jinja', '--no-webui', '--metrics'],
      ['--flash-attn', 'bogus'],
      ['-fa', 'on'],
      ['--rope-scaling', 'yarn'],
      ['--rope-scaling', 'bogus'],
      ['--cache-type-k', 'bogus'],
      ['-ngl', 'auto'],
      ['--draft', '3'],
      ['--numa', 'bogus'],
      ['--control-vector-layer-range', '1', '2'],
      ['--threads'],
    ];
    const verdict = (r: { status: number | null; stderr: string }) => (r.status === 0 ? 'accepted' : `refused: ${r.stderr.trim().split('\n')[0]?.replace(/^(error while handling argument "[^"]+").*$/, '$1')}`);
    const mismatches: string[] = [];
    for (const argv of cases) {
      // Both parse the whole command line before acting on --help: a refused flag exits 1 first.
      const real = await run([binary, ...argv, '--help'], { reject: false });
      const standin = await run([STANDIN, ...argv, '--help'], { reject: false });
      if (verdict(real) !== verdict(standin)) mismatches.push(`${argv.join(' ')}: real ${verdict(real)}, stand-in ${verdict(standin)}`);
    }
    assert.deepEqual(mismatches, []);
    // The same flag names, all of them (the stand-in reads them from llama-server.help, a copy of
    // the real --help: refresh it from `llama-server --help` when llama.cpp is updated).
    const names = async (b: string) => parseHelpFlags((await run([b, '--help'], { reject: false })).stdout);
    const realNames = await names(binary);
    const standinNames = await names(STANDIN);
    assert.ok(realNames.size > 300, `${realNames.size} flags in the real --help`);
    assert.deepEqual([...standinNames].filter((f) => !realNames.has(f)), [], 'flags only the stand-in accepts');
    assert.deepEqual([...realNames].filter((f) => !standinNames.has(f)), [], 'flags only the real one accepts');
    // The rendered command lines are all accepted (so the comparison above is not vacuous).
    for (const argv of rendered) assert.equal((await run([binary, ...argv, '--help'], { reject: false })).status, 0, argv.join(' '));
  });
});
