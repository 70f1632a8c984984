/**
 * Proves that podman can do what stacks need, on this machine, for real: a container
 * on a project network (what podman-compose creates) with a published port answers
 * HTTP on 127.0.0.1. Package names prove nothing (netavark without iptables installs
 * fine and then cannot publish a port, while podman-compose 1.0.3 still exits 0).
 *
 * Used by `zoopa doctor` (the user's own podman) and by scripts/prereqs.mjs (the test
 * user's rootless podman and root's podman, through the test bed). Each failure names
 * the missing piece and the exact fix (diagnose()).
 *
 *   const r = await probePublishedPort({ podman: ['podman'], env, image });
 *   if (!r.ok) console.log(r.detail, r.fix);
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { run as execRun, type RunOptions, type RunResult } from '../exec.js';
import { which } from '../unitfile/tools.js';

export type Runner = (argv: readonly string[], opts: RunOptions) => Promise<RunResult>;

export interface ProbeOptions {
  /** argv that runs podman: ['podman'], or ['/usr/bin/sudo', '-n', '/usr/bin/podman']. */
  podman: readonly string[];
  env: NodeJS.ProcessEnv;
  /** An image holding busybox's sh, mkdir and httpd (see busybox-image.ts). */
  image: string;
  /** Runs a command (default exec.run); the test bed passes one that runs as its user. */
  run?: Runner;
  /** Deadline for each podman call and for the HTTP answer (default 30 s). */
  timeoutMs?: number;
}

export interface ProbeResult {
  ok: boolean;
  /** What was found, one line. */
  detail: string;
  /** The exact fix, when not ok. */
  fix?: string;
}

/** The network backend podman uses ('netavark', 'cni', or '' when podman info fails). */
export async function networkBackend(o: Pick<ProbeOptions, 'podman' | 'env' | 'run'>): Promise<string> {
  const r = await (o.run ?? execRun)([...o.podman, 'info', '--format', '{{.Host.NetworkBackend}}'], { env: o.env, reject: false, timeoutMs: 30_000 }).catch(() => undefined);
  return r?.status === 0 ? r.stdout.trim() : '';
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
/** Where podman looks for CNI plugins by default. */
const CNI_PLUGIN_DIRS = ['/usr/local/libexec/cni', '/usr/libexec/cni', '/usr/local/lib/cni', '/usr/lib/cni', '/opt/cni/bin'];

/** How to make `program` (from Debian package `pkg`) runnable for the network backend. */
function helperFix(program: string, pkg: string, env: NodeJS.ProcessEnv): string {
  const onPath = which(program, env);
  if (onPath) return `${onPath} is installed, yet the network backend could not run it: check the PATH podman runs with and helper_binaries_dir in containers.conf (podman info)`;
  const elsewhere = which(program, { PATH: SBIN_DIRS.join(':') });
  return elsewhere
    ? `${elsewhere} exists but is not on PATH (${env.PATH ?? ''}): add ${elsewhere.slice(0, elsewhere.lastIndexOf('/'))} to PATH (netavark runs ${program} from PATH)`
    : `sudo apt-get install -y ${pkg}`;
}

/**
 * The helper programs the network backend runs to publish a port (netavark and CNI's
 * portmap run `iptables`), looked up where a package installs them (PATH and the sbin
 * folders: a user's shell PATH often lacks them, while podman still finds them).
 * Returns the missing ones, each with its exact fix.
 */
export function missingNetworkHelpers(backend: string, env: NodeJS.ProcessEnv): Array<{ program: string; fix: string }> {
  const missing: Array<{ program: string; fix: string }> = [];
  const where = { PATH: [env.PATH ?? '', ...SBIN_DIRS].filter(Boolean).join(':') };
  if ((backend === 'netavark' || backend === 'cni') && !which('iptables', where)) {
    missing.push({ program: 'iptables', fix: 'sudo apt-get install -y iptables' });
  }
  if (backend === 'cni') {
    // CNI's bridge and portmap plugins publish the port (containers.conf cni_plugin_dirs).
    const dirs = CNI_PLUGIN_DIRS;
    for (const plugin of ['bridge', 'portmap']) {
      if (!which(plugin, { PATH: dirs.join(':') })) missing.push({ program: `CNI plugin ${plugin} (in ${dirs.join(', ')})`, fix: 'sudo apt-get install -y containernetworking-plugins' });
    }
  }
  return missing;
}

/** Turns podman's error text into the missing piece and its fix. */
export function diagnose(stderr: string, env: NodeJS.ProcessEnv = process.env): { missing: string; fix: string } | undefined {
  const t = stderr;
  if (/netavark: No such file or directory|iptables.*(not found|No such file)|executable file `iptables` not found/i.test(t)) {
    return { missing: 'iptables (netavark runs it to publish ports)', fix: helperFix('iptables', 'iptables', env) };
  }
  if (/could not find "?netavark"?|netavark.*binary.*not found/i.test(t)) return { missing: 'netavark', fix: 'sudo apt-get install -y netavark' };
  if (/slirp4netns.*(not found|No such file)|could not find slirp4netns/i.test(t)) return { missing: 'slirp4netns', fix: 'sudo apt-get install -y slirp4netns' };
  if (/\/dev\/net\/tun/.test(t)) return { missing: 'access to /dev/net/tun (slirp4netns publishes rootless ports through it)', fix: 'sudo chmod 0666 /dev/net/tun' };
  if (/newuidmap|newgidmap/.test(t)) return { missing: 'newuidmap/newgidmap', fix: 'sudo apt-get install -y uidmap' };
  if (/no subuid ranges|cannot find mappings for user|There might not be enough IDs/i.test(t)) {
    return { missing: 'subordinate uid/gid ranges for this user', fix: 'sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER' };
  }
  if (/aardvark-dns.*(not found|No such file)/i.test(t)) return { missing: 'aardvark-dns', fix: 'sudo apt-get install -y aardvark-dns' };
  if (/port is already allocated|address already in use/i.test(t)) return { missing: 'a free port (another program took it)', fix: 'run the check again' };
  return undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close); the test bed uses it too. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', reject);
  });
}

const lastLine = (text: string) => text.trim().split('\n').filter(Boolean).pop() ?? '';

/**
 * Creates a network, runs busybox httpd on it publishing 127.0.0.1:<free port>,
 * and asks it for a page; removes the container and the network again.
 */
export async function probePublishedPort(o: ProbeOptions): Promise<ProbeResult> {
  const runner = o.run ?? execRun;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const id = `zoopa-probe-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const podman = (args: string[], t = timeoutMs) => runner([...o.podman, ...args], { env: o.env, reject: false, timeoutMs: t });
  const token = `zoopa probe ${id}`;
  try {
    const net = await podman(['network', 'create', id]);
    if (net.status !== 0) return failed(`podman network create failed: ${lastLine(net.stderr)}`, net.stderr, o.env);
    const port = await freePort();
    const started = await podman([
      'run', '-d', '--name', id, '--network', id, '-p', `127.0.0.1:${port}:8080`, o.image,
      'sh', '-c', `mkdir -p /www && echo "${token}" > /www/index.html && exec httpd -f -p 8080 -h /www`,
    ]);
    if (started.status !== 0) return failed(`a container with a published port does not start: ${lastLine(started.stderr)}`, started.stderr, o.env);
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const r = await get(port);
        if (r.status === 200 && r.body.includes(token)) return { ok: true, detail: `a container on a project network answered HTTP on published port 127.0.0.1:${port}` };
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const logs = await podman(['logs', '--tail', '5', id], 15_000);
    return failed(`the container runs but 127.0.0.1:${port} does not answer within ${timeoutMs / 1000} s (${last})${logs.stdout || logs.stderr ? `; its log: ${lastLine(logs.stdout + logs.stderr)}` : ''}`, logs.stderr, o.env);
  } finally {
    await podman(['rm', '-f', '-t', '0', id], 30_000).catch(() => undefined);
    await podman(['network', 'rm', '-f', id], 30_000).catch(() => undefined);
  }
}

function failed(detail: string, stderr: string, env: NodeJS.ProcessEnv): ProbeResult {
  const d = diagnose(stderr, env);
  return d
    ? { ok: false, detail: `${detail} (missing: ${d.missing})`, fix: d.fix }
    : { ok: false, detail, fix: 'run the podman command above by hand and fix what it reports ("podman info" shows the network backend)' };
}
