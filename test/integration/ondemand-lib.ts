/**
 * Helpers shared by the on-demand integration tests (test/integration/ondemand*.test.ts).
 * Everything here asks the real systemd, podman or the socket; nothing is faked.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { httpdCommand, type StackFixture } from '../fixtures/stacks.js';
import { IMAGE, type Testbed } from '../testbed/index.js';

export interface UnitState {
  active: string;
  enabled: string;
  load: string;
  mainPid: number;
}

/** ActiveState / UnitFileState / LoadState / MainPID of units, from one `systemctl --user show`. */
export async function unitStates(tb: Testbed, names: readonly string[]): Promise<Map<string, UnitState>> {
  const r = await tb.systemctl(['show', '--property=Id,ActiveState,UnitFileState,LoadState,MainPID', '--', ...names]);
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, UnitState>();
  r.stdout
    .trim()
    .split(/\n\n/)
    .forEach((block, i) => {
      const kv = Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      out.set(names[i]!, { active: kv.ActiveState ?? '', enabled: kv.UnitFileState ?? '', load: kv.LoadState ?? '', mainPid: Number(kv.MainPID ?? 0) });
    });
  return out;
}

export async function activeState(tb: Testbed, unit: string): Promise<string> {
  return (await unitStates(tb, [unit])).get(unit)!.active;
}

/** Containers of a compose project that are running now. */
export async function runningContainers(tb: Testbed, project: string): Promise<string[]> {
  const r = await tb.podman(['ps', '--filter', `label=io.podman.compose.project=${project}`, '--format', '{{.Names}}']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

/** How many times a container of the project was started (podman's event log). */
export async function containerStarts(tb: Testbed, project: string): Promise<number> {
  const r = await tb.podman(['events', '--stream=false', '--filter', 'event=start', '--format', '{{.Name}}']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((n) => n.startsWith(`${project}_`)).length;
}

/** How many times the stack unit ran `podman-compose up` (its output lands in the manager log). */
export function composeUps(tb: Testbed, container: string): number {
  return tb.managerLog().split('\n').filter((l) => l.startsWith(`podman run --name=${container} `)).length;
}

/** Connect to a unix socket and report what happened, without sending anything. */
export function tryConnect(sockPath: string): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect({ path: sockPath });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

export { exchange } from '../helpers/exchange.js';

export interface OndemandRow {
  name: string;
  state: string;
  ondemand: { state: string; socket: string; owned: boolean; connections: number; secondsUntilIdleStop: number | null; lastWake: { at: string } | null } | null;
}

export async function status(tb: Testbed): Promise<Map<string, OndemandRow>> {
  const r = await tb.zoopa(['--root', tb.root, 'status', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const data = JSON.parse(r.stdout) as { stacks: OndemandRow[] };
  return new Map(data.stacks.map((s) => [s.name, s]));
}

/** A stack with two busybox httpd services on two published ports (like CryptPad's 3000 and 3003). */
export function twoPortStack(tb: Testbed, name: string, ports: [number, number], startDelaySec = 0): StackFixture & { port2: number; expectBody2: string } {
  const dir = path.join(tb.root, name);
  const body = (s: string) => `${name} ${s}`;
  const compose = {
    services: {
      main: { image: IMAGE, command: httpdCommand(body('main'), startDelaySec), ports: [`127.0.0.1:${ports[0]}:8080`], stop_signal: 'SIGKILL' },
      second: { image: IMAGE, command: httpdCommand(body('second'), startDelaySec), ports: [`127.0.0.1:${ports[1]}:8080`], stop_signal: 'SIGKILL' },
    },
  };
  const composeFile = tb.writeFile(path.join(dir, 'compose.yaml'), YAML.stringify(compose));
  tb.chown(dir);
  return {
    name,
    dir,
    composeFile,
    port: ports[0],
    url: `http://127.0.0.1:${ports[0]}/`,
    expectBody: `${body('main')}\n`,
    services: ['main', 'second'],
    port2: ports[1],
    expectBody2: `${body('second')}\n`,
  };
}

export function socketOf(tb: Testbed, stack: string, listener?: string): string {
  return path.join(tb.runtimeDir, 'ondemand', listener ? `${stack}.${listener}.sock` : `${stack}.sock`);
}

/** Tally of results: { "200": 50 } or { "200": 46, "Error: socket hang up": 4 }. */
export function tally(xs: ReadonlyArray<string | number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}

/** One busybox httpd service whose image is `image` (which may not exist yet): a stack that cannot start until it does. */
export function imageStack(tb: Testbed, name: string, port: number, image: string): StackFixture {
  const dir = path.join(tb.root, name);
  const body = `${name} web`;
  const compose = { services: { web: { image, command: httpdCommand(body), ports: [`127.0.0.1:${port}:8080`], stop_signal: 'SIGKILL' } } };
  const composeFile = tb.writeFile(path.join(dir, 'compose.yaml'), YAML.stringify(compose));
  tb.chown(dir);
  return { name, dir, composeFile, port, url: `http://127.0.0.1:${port}/`, expectBody: `${body}\n`, services: ['web'] };
}

/** The proxy's log lines for a stack, without the level label or journal prefix. */
export function proxyLines(tb: Testbed, stack: string): string[] {
  return tb
    .managerLog()
    .split('\n')
    .map((l) => l.replace(/^(<\d>|error: |warning: )/, ''))
    .filter((l) => l.startsWith(`${stack}: `));
}

/** One busybox service that runs `afterSec` seconds, then exits with `code` (an app that crashes just after its start). */
export function crashingStack(tb: Testbed, name: string, port: number, afterSec: number, code: number): StackFixture {
  const dir = path.join(tb.root, name);
  const compose = { services: { web: { image: IMAGE, command: ['sh', '-c', `sleep ${afterSec}; exit ${code}`], ports: [`127.0.0.1:${port}:8080`], stop_signal: 'SIGKILL' } } };
  const composeFile = tb.writeFile(path.join(dir, 'compose.yaml'), YAML.stringify(compose));
  tb.chown(dir);
  return { name, dir, composeFile, port, url: `http://127.0.0.1:${port}/`, expectBody: '', services: ['web'] };
}
