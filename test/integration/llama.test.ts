/**
 * llama services in the real test bed: a real systemd user manager runs the
 * rendered units with the llama-server stand-in (llama.cpp cannot be built or
 * downloaded here).
 *
 *  - the original's three kinds (router, one model with an alias, a vision model)
 *    are enabled and started by `zoopa llama enable --now`, answer /health and /v1/models, run with exactly the rendered argv and
 *    CPU affinity, come back after a crash (Restart=on-failure), and
 *    `zoopa llama list --json` reports them;
 *  - on demand, through zoopa-ondemand@<name>.socket: `zoopa install` writes the env
 *    file (ZOOPA_UPSTREAM, ZOOPA_STACK_UNIT=<name>.service, ZOOPA_READY=http:/health,
 *    ZOOPA_START_TIMEOUT, ZOOPA_IDLE_TIMEOUT); a request made while the model loads
 *    (/health 503) is held and answered once /health is 200, also when loading takes
 *    longer than the idle timeout; the idle stop stops the service; a service started
 *    by hand is not stopped by idle.
 *
 * Never asserts on durations: waits have deadlines only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCpus } from '../../src/llama/cpus.js';
import type { LlamaListEntry } from '../../src/llama/list.js';
import { parseUnitText } from '../../src/unitfile/model.js';
import { freePort, sleep, useTestbed, type Testbed } from '../testbed/index.js';

const STANDIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'standins', 'llama-server');

interface Reply {
  status: number;
  body: string;
}

/** One HTTP GET over TCP or a unix socket. The deadline only stops a hung test. */
function get(target: { port: number } | { socketPath: string }, urlPath: string, timeoutMs = 120_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }), path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
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

/** A log without the readiness probe's many /health lines, for failure messages. */
function quiet(log: string): string {
  const lines = log.split('\n');
  const probes = lines.filter((l) => /request: GET \/health /.test(l)).length;
  return [...lines.filter((l) => !/request: GET \/health /.test(l)).slice(-60), `(${probes} /health requests left out)`].join('\n');
}

function execWords(unitText: string): string[] {
  const v = (parseUnitText(unitText).get('Service') ?? []).find(([k]) => k === 'ExecStart')?.[1];
  assert.ok(v && !v.includes('"'), `plain ExecStart expected: ${v}`);
  return v.split(' ');
}

describe('llama services in a real user manager', () => {
  const bed = useTestbed({ name: 'llama', image: false });
  const ncpu = os.cpus().length;
  const ports = { router: 0, qwen: 0, vision: 0, slow: 0 };
  let binary = '';

  it('zoopa install renders and links the units of the original three kinds', async () => {
    const tb = bed();
    assert.ok(fs.existsSync(STANDIN), `stand-in ${STANDIN} exists`);
    // The checkout may not be enterable by the test user: the stand-in gets its own copy.
    binary = tb.writeFile('bin/llama-server', fs.readFileSync(STANDIN), 0o755);
    for (const m of ['qwen.gguf', 'gemma-3-4b-it-Q4_K_M.gguf', 'mmproj-gemma-3-4b-it-f16.gguf']) tb.writeFile(path.join('home', 'models', m), `stand-in model ${m}\n`);
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const yaml = [
      'llama:',
      `  binary: ${binary}`,
      '  working_directory: "~"',
      '  defaults:',
      '    batch_size: 512',
      '    parallel: 1',
      '  services:',
      `    router: { router: true, cpus: "0-${ncpu - 1}", port: ${ports.router} }`,
      `    qwen: { model: qwen.gguf, alias: qwen, cpus: "0", ctx_size: 8192, cache_type_k: q8_0, cache_type_v: q8_0, port: ${ports.qwen} }`,
      `    vision: { model: gemma-3-4b-it-Q4_K_M.gguf, mmproj: mmproj-gemma-3-4b-it-f16.gguf, alias: gemma, ctx_size: 131072, mmap: true, port: ${ports.vision} }`,
      `    slow: { model: qwen.gguf, alias: slow, port: ${ports.slow}, ondemand: { idle: 3s, start_timeout: 60s } }`,
      '',
    ].join('\n');
    tb.writeFile('stacks/zoopa.yaml', yaml);
    const r = await tb.zoopa(['--root', tb.root, 'install']);
    assert.equal(r.status, 0, `install: ${r.stdout}\n${r.stderr}`);
    for (const u of ['router.service', 'qwen.service', 'vision.service', 'slow.service']) {
      assert.equal(await show(tb, u, 'LoadState'), 'loaded', u);
    }
  });

  it('each service runs the stand-in with exactly the rendered argv and CPU affinity, and answers /health and /v1/models', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'router', 'qwen', 'vision']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /systemctl --user enable --now router\.service qwen\.service vision\.service/);
    for (const u of ['router.service', 'qwen.service', 'vision.service']) assert.equal(await show(tb, u, 'UnitFileState'), 'enabled', u);
    for (const [name, port, ids] of [
      ['router', ports.router, ['gemma-3-4b-it-Q4_K_M', 'qwen']],
      ['qwen', ports.qwen, ['qwen']],
      ['vision', ports.vision, ['gemma']],
    ] as const) {
      const health = await tb.waitFor(async () => {
        const h = await get({ port }, '/health', 5000).catch(() => undefined);
        return h?.status === 200 ? h : undefined;
      }, { timeoutMs: 60_000, what: `${name}: GET /health → 200` });
      assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
      const models = await get({ port }, '/v1/models');
      assert.equal(models.status, 200);
      const list = JSON.parse(models.body) as { object: string; data: Array<{ id: string; object: string; owned_by: string }> };
      assert.equal(list.object, 'list');
      assert.deepEqual(list.data.map((d) => d.id), [...ids], name);

      const unitText = fs.readFileSync(path.join(tb.root, 'systemd', `${name}.service`), 'utf8');
      const pid = Number(await show(tb, `${name}.service`, 'MainPID'));
      assert.ok(pid > 0, `${name} has a main process`);
      // The shebang makes it `node <stand-in> args...`: compare everything after node.
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
      assert.deepEqual(cmdline.slice(1), execWords(unitText), `${name} runs the rendered argv`);
      const affinity = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const want = parseUnitText(unitText).get('Service')!.find(([k]) => k === 'CPUAffinity')?.[1];
      if (want) assert.deepEqual(parseCpus(affinity ?? ''), parseCpus(want), `${name} CPU affinity (${affinity})`);
    }
  });

  it('zoopa llama list --json shows them active, with model sizes and the models folder', async () => {
    const tb = bed();
    const byName = new Map((await llamaList(tb)).map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()], ['router', 'qwen', 'vision', 'slow']);
    for (const n of ['router', 'qwen', 'vision']) {
      assert.equal(byName.get(n)!.state, 'active', n);
      assert.equal(byName.get(n)!.subState, 'running', n);
    }
    const qwen = byName.get('qwen')!;
    assert.equal(qwen.model, path.join(tb.home, 'models', 'qwen.gguf'));
    assert.equal(qwen.modelBytes, fs.statSync(path.join(tb.home, 'models', 'qwen.gguf')).size);
    assert.equal(qwen.cpus, '0');
    assert.equal(qwen.threads, 1);
    assert.equal(qwen.port, ports.qwen);
    const router = byName.get('router')!;
    assert.equal(router.mode, 'router');
    assert.equal(router.modelsDir, path.join(tb.home, 'models'));
    assert.equal(router.modelFiles, 2);
    const slow = byName.get('slow')!;
    assert.equal(slow.ondemand, true);
    assert.equal(slow.state, 'inactive');
    const text = await tb.zoopa(['--root', tb.root, 'llama', 'list']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^qwen\s+~\/models\/qwen\.gguf as qwen\s+\d+ B\s+127\.0\.0\.1:\d+\s+0\s+active \(running\)$/m);
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
    }, { timeoutMs: 60_000, what: 'qwen.service restarted and healthy' });
    assert.notEqual(again, pid);
    assert.equal(await show(tb, 'qwen.service', 'NRestarts'), '1');
  });

  it('a stop is clean: SIGTERM ends the server with status 0, the unit is inactive, not failed', async () => {
    const tb = bed();
    const r = await tb.zoopa(['--root', tb.root, 'llama', 'disable', '--now', 'router', 'qwen', 'vision']);
    assert.equal(r.status, 0, r.stderr);
    for (const u of ['router.service', 'qwen.service', 'vision.service']) {
      assert.equal(await show(tb, u, 'ActiveState'), 'inactive', u);
      assert.notEqual(await show(tb, u, 'UnitFileState'), 'enabled', u);
    }
  });

  describe('on demand through zoopa-ondemand@slow.socket', () => {
    const envFile = () => path.join(bed().configHome, 'zoopa-ondemand', 'slow.env');
    const sock = () => ({ socketPath: path.join(bed().runtimeDir, 'ondemand', 'slow.sock') });

    it('zoopa install wrote the env file of the contract for the llama service', () => {
      const file = envFile();
      assert.ok(fs.existsSync(file), `zoopa install did not write ${file}: the on-demand renderer must emit env files for llamaOndemandTargets()`);
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
      for (const want of [`ZOOPA_UPSTREAM=127.0.0.1:${ports.slow}`, 'ZOOPA_STACK_UNIT=slow.service', 'ZOOPA_READY=http:/health', 'ZOOPA_START_TIMEOUT=60', 'ZOOPA_IDLE_TIMEOUT=3']) {
        assert.ok(lines.includes(want), `${want} in ${file}: ${JSON.stringify(lines)}`);
      }
    });

    it('a request while the model loads is held and answered once /health is 200; then the idle stop stops the service', async () => {
      const tb = bed();
      if (!fs.existsSync(envFile())) {
        // Until the on-demand renderer writes it (previous test), write the contract by hand
        // so the proxy side is still exercised.
        tb.writeFile(path.relative(tb.dir, envFile()), `ZOOPA_UPSTREAM=127.0.0.1:${ports.slow}\nZOOPA_STACK_UNIT=slow.service\nZOOPA_READY=http:/health\nZOOPA_START_TIMEOUT=60\nZOOPA_IDLE_TIMEOUT=3\n`, 0o600);
      }
      // The model "loads" for 2 s (less than the 3 s idle timeout; longer: the next test):
      // /health answers 503 meanwhile.
      assert.equal((await tb.systemctl(['set-environment', 'LLAMA_STANDIN_LOAD_MS=2000'])).status, 0);
      const s = await tb.zoopa(['--root', tb.root, 'llama', 'enable', '--now', 'slow']);
      assert.equal(s.status, 0, `${s.stderr}\n${tb.managerLog().slice(-3000)}`);
      assert.match(s.stdout, /systemctl --user enable --now zoopa-ondemand-dir\.service zoopa-ondemand@slow\.socket/);
      assert.equal(await show(tb, 'zoopa-ondemand@slow.socket', 'ActiveState'), 'active');
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'inactive');
      assert.notEqual(await show(tb, 'slow.service', 'UnitFileState'), 'enabled', 'the on-demand service itself is not enabled');
      const logStart = tb.managerLog().length;

      const reply = await get(sock(), '/v1/models').catch((e: Error) => assert.fail(`GET through the socket: ${e.message}\n${quiet(tb.managerLog().slice(logStart))}`));
      assert.equal(reply.status, 200, `held until ready, not forwarded while loading: ${reply.body}\n${tb.managerLog().slice(logStart).slice(-3000)}`);
      assert.deepEqual((JSON.parse(reply.body) as { data: Array<{ id: string }> }).data.map((d) => d.id), ['slow']);
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'active');

      // The server really was loading when the request came in, and the request reached it only after.
      const log = tb.managerLog().slice(logStart);
      const loading = log.indexOf('main: loading model');
      const loaded = log.indexOf('main: model loaded');
      const served = log.search(/request: GET \/v1\/models \S+ 200/);
      assert.ok(loading >= 0 && loaded > loading, `the stand-in loaded a model during this request:\n${log.slice(-3000)}`);
      assert.ok(served > loaded, 'the request reached the server after the model was loaded');
      assert.doesNotMatch(log, /request: GET \/v1\/models \S+ 503/, 'never forwarded while loading');

      const entry = (await llamaList(tb)).find((e) => e.name === 'slow')!;
      assert.equal(entry.socket, 'active');

      await tb.waitFor(async () => (await show(tb, 'slow.service', 'ActiveState')) === 'inactive', { timeoutMs: 90_000, what: 'the idle stop of slow.service' });
      assert.equal(await show(tb, 'slow.service', 'Result'), 'success');
      assert.equal(await show(tb, 'zoopa-ondemand@slow.socket', 'ActiveState'), 'active', 'the socket keeps listening');
    });

    it('a model that loads for longer than the idle timeout is not stopped as soon as it is ready', async () => {
      const tb = bed();
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'inactive');
      assert.equal((await tb.systemctl(['set-environment', 'LLAMA_STANDIN_LOAD_MS=5000'])).status, 0);
      const logStart = tb.managerLog().length;
      try {
        const reply = await get(sock(), '/v1/models').catch((e: Error) => assert.fail(`GET through the socket: ${e.message}\n${quiet(tb.managerLog().slice(logStart))}`));
        assert.equal(reply.status, 200, `${reply.body}\n${quiet(tb.managerLog().slice(logStart))}`);
        assert.deepEqual((JSON.parse(reply.body) as { data: Array<{ id: string }> }).data.map((d) => d.id), ['slow']);
      } finally {
        assert.equal((await tb.systemctl(['set-environment', 'LLAMA_STANDIN_LOAD_MS=0'])).status, 0);
        await tb.waitFor(async () => (await show(tb, 'slow.service', 'ActiveState')) === 'inactive', { timeoutMs: 90_000, what: 'the idle stop of slow.service' });
      }
    });

    it('a service started by hand is not stopped by the idle stop', async () => {
      const tb = bed();
      assert.equal((await tb.systemctl(['start', 'slow.service'])).status, 0);
      await tb.waitFor(async () => (await get({ port: ports.slow }, '/health', 5000).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, what: 'slow.service healthy' });
      const pid = await show(tb, 'slow.service', 'MainPID');
      const reply = await get(sock(), '/v1/models');
      assert.equal(reply.status, 200, reply.body);
      // Well past the 3 s idle timeout (a grace period, not a timing assertion).
      await sleep(12_000);
      assert.equal(await show(tb, 'slow.service', 'ActiveState'), 'active', 'still running');
      assert.equal(await show(tb, 'slow.service', 'MainPID'), pid, 'the same process');
      assert.equal((await tb.systemctl(['stop', 'slow.service'])).status, 0);
    });
  });
});
