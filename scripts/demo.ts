/**
 * `npm run demo`: Zoopa's on-demand wake and sleep, for real, in an isolated test bed.
 *
 *  1. starts a test bed: its own systemd user manager, rootless podman as an
 *     unprivileged user, the locally built busybox image (test/testbed);
 *  2. copies the embedded demo stacks folder (assets/demo: a web app that needs
 *     about 2 s before it listens, on demand with a 10 s idle timeout) into it;
 *  3. `zoopa install` and `zoopa ondemand enable web`, then nginx in front of
 *     $XDG_RUNTIME_DIR/ondemand/web.sock;
 *  4. shows the stack asleep (`zoopa status`), sends one request through nginx
 *     that wakes it (time to first byte, and the app's own start time from its
 *     page), shows it awake, waits for the idle timeout, shows it asleep again;
 *  5. removes everything (the test bed also cleans up on Ctrl-C or a crash).
 *
 * `npm run demo` builds and checks the prerequisites (scripts/prereqs.mjs) first.
 *
 * When the stack cannot start (its unit fails: the unit's check names each container
 * that does not run), the demo stops waiting at once and prints the cause instead of
 * waiting for nginx's 504. `node dist/scripts/demo.js --image localhost/nope:1` runs the
 * demo with an image that does not exist, to see that path.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { describeProblem, lastCheck } from '../src/stacks/verify.js';
import { freePort, Testbed, type Nginx } from '../test/testbed/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEMO = path.join(REPO, 'assets', 'demo');
const STACK = 'web';

const t0 = Date.now();
const never = new Promise<never>(() => undefined);
function say(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${s}s] ${msg}\n`);
}
function show(text: string): void {
  for (const line of text.replace(/\n+$/, '').split('\n')) process.stdout.write(`         ${line}\n`);
}

async function zoopa(tb: Testbed, args: string[]): Promise<string> {
  const r = await tb.zoopa(['--root', tb.root, ...args], { timeoutMs: 180_000 });
  if (r.status !== 0) throw new Error(`zoopa ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function unitActive(tb: Testbed, unit: string): Promise<string> {
  const r = await tb.systemctl(['show', '--property=ActiveState', '--value', '--', unit]);
  return r.stdout.trim();
}

/** GET through nginx; resolves with the status, the body and the time to the first byte of the response. */
function timedGet(url: string): Promise<{ status: number; body: string; ttfbMs: number; totalMs: number }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    let ttfbMs = 0;
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ttfbMs, totalMs: ms() }));
      res.on('error', reject);
    });
    req.on('socket', (s) => s.once('data', () => (ttfbMs = ms())));
    req.setTimeout(150_000, () => req.destroy(new Error('no answer within 150 s')));
    req.on('error', reject);
  });
}

/** --image NAME: run the demo's app from another image (e.g. one that does not exist). */
function imageOverride(): string | undefined {
  const i = process.argv.indexOf('--image');
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (!v || !/^[a-z0-9][a-z0-9._/:-]*$/.test(v)) throw new Error(`--image takes an image name, got ${JSON.stringify(v ?? '')}`);
  return v;
}

/**
 * Resolves when the stack unit has failed, with the cause: what the unit's check found
 * (each container that does not run), else the unit's last lines in the manager log.
 */
async function stackFailure(tb: Testbed, stop: AbortSignal): Promise<string> {
  const unit = `${STACK}-stack.service`;
  while (!stop.aborted) {
    if ((await unitActive(tb, unit)) === 'failed') {
      const check = lastCheck(STACK, tb.env);
      if (check) return check.problems.map((p) => `- ${describeProblem(p)}`).join('\n');
      return tb.managerLog().split('\n').slice(-15).join('\n');
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return '';
}

function copyDemo(tb: Testbed, port: number): void {
  fs.cpSync(DEMO, tb.root, { recursive: true });
  const image = imageOverride();
  if (image) {
    const compose = path.join(tb.root, STACK, 'compose.yaml');
    const doc = YAML.parseDocument(fs.readFileSync(compose, 'utf8'));
    doc.setIn(['services', 'app', 'image'], image);
    fs.writeFileSync(compose, doc.toString());
  }
  // The published port and the upstream: a free port instead of the example's 18080.
  fs.writeFileSync(path.join(tb.root, STACK, '.env'), `WEB_PORT=${port}\n`);
  const file = path.join(tb.root, 'zoopa.yaml');
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'));
  doc.setIn(['stacks', STACK, 'ondemand', 'upstream'], `127.0.0.1:${port}`);
  fs.writeFileSync(file, doc.toString());
  tb.chown(tb.root);
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(DEMO, 'zoopa.yaml'))) throw new Error(`the demo stacks folder is missing: ${DEMO}`);
  say('starting the test bed: an isolated systemd user manager, rootless podman, the busybox image');
  const tb = await Testbed.start({ name: 'demo' });
  let nginx: Nginx | undefined;
  try {
    say(`test bed ready in ${tb.dir} (user ${tb.user})`);
    const port = await freePort();
    copyDemo(tb, port);
    say(`copied the demo stacks folder (assets/demo) to ${tb.root}; the app publishes 127.0.0.1:${port}`);
    show(fs.readFileSync(path.join(tb.root, 'zoopa.yaml'), 'utf8'));

    say('zoopa install: render the units and link them into the user manager');
    show(await zoopa(tb, ['install']));
    say(`zoopa ondemand enable ${STACK}: enable and start the socket`);
    show(await zoopa(tb, ['ondemand', 'enable', STACK]));

    const sock = path.join(tb.runtimeDir, 'ondemand', `${STACK}.sock`);
    nginx = await tb.startNginx([{ path: '/', upstream: `unix:${sock}` }]);
    say(`nginx listens on ${nginx.url} and passes every request to unix:${sock}`);

    say('zoopa status: the stack is asleep (no containers, the socket listens)');
    show(await zoopa(tb, ['status']));

    say(`GET ${nginx.url}/ : the first request wakes the stack`);
    const stop = new AbortController();
    const failed = stackFailure(tb, stop.signal).then((cause) => {
      if (cause) throw new Error(`${STACK}-stack.service failed to start ${((Date.now() - t0) / 1000).toFixed(1)} s into the demo; its containers do not run:\n${cause}`);
    });
    const r = await Promise.race([timedGet(`${nginx.url}/`), failed.then(() => never)]).finally(() => stop.abort());
    say(`HTTP ${r.status}, time to first byte ${(r.ttfbMs / 1000).toFixed(2)} s (podman-compose up, container start and the app's own start)`);
    show(r.body);
    const m = /started at uptime ([\d.]+) s, listening at ([\d.]+) s/.exec(r.body);
    if (m) say(`the app's own start time: ${(Number(m[2]) - Number(m[1])).toFixed(2)} s from its first line to listening`);
    if (r.status !== 200) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 5000);
      const cause = await stackFailure(tb, ac.signal).finally(() => clearTimeout(timer));
      if (cause) throw new Error(`the request failed (HTTP ${r.status}): ${STACK}-stack.service failed to start; its containers do not run:\n${cause}`);
      throw new Error(`the request failed: HTTP ${r.status}; nginx error log:\n${nginx.errorLog().slice(-1500)}`);
    }
    const again = await timedGet(`${nginx.url}/`);
    say(`a second request, stack awake: HTTP ${again.status}, time to first byte ${again.ttfbMs.toFixed(1)} ms`);

    say('zoopa status: awake');
    show(await zoopa(tb, ['status']));

    say('waiting for the idle timeout (10 s without traffic), then the stop...');
    const idleFrom = Date.now();
    for (;;) {
      if ((await unitActive(tb, `${STACK}-stack.service`)) === 'inactive' && (await unitActive(tb, `zoopa-ondemand@${STACK}.service`)) === 'inactive') break;
      if (Date.now() - idleFrom > 180_000) throw new Error('the stack did not go back to sleep within 180 s');
      await new Promise((res) => setTimeout(res, 250));
    }
    say(`asleep again ${((Date.now() - idleFrom) / 1000).toFixed(1)} s after the last request (10 s idle timeout plus the stack's stop)`);
    say('zoopa status: asleep');
    show(await zoopa(tb, ['status']));

    say("the proxy's log lines (from the user manager's log):");
    show(
      tb
        .managerLog()
        .split('\n')
        .filter((l) => l.startsWith(`${STACK}: `))
        .join('\n'),
    );
  } finally {
    say('cleaning up: nginx, the user manager and its units, containers, folders');
    await nginx?.stop().catch(() => undefined);
    await tb.stop();
    say('done');
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
