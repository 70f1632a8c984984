/**
 * Proves, for real, the capabilities the tests and the demo rely on (run by
 * scripts/prereqs.mjs after the packages are installed; `node dist/scripts/capabilities.js`):
 *
 *  1. a test bed starts: the unprivileged test user, its own systemd user manager, the
 *     locally built busybox image imported into its rootless storage (test/testbed);
 *  2. rootless: a container of the test user on a project network publishes a port that
 *     answers HTTP (netavark + iptables, slirp4netns, /dev/net/tun, subuid ranges);
 *  3. rootful (as root): the same with root's podman;
 *  4. nginx, as the test user, in front of a unix socket answers HTTP.
 *
 * Each step has its own deadline and, on failure, prints the missing piece and the exact
 * fix, then exits 1. The proofs are src/podman/probe.ts, the ones `zoopa doctor` runs.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { probePublishedPort } from '../src/podman/probe.js';
import { httpGet, IMAGE, Testbed } from '../test/testbed/index.js';

interface Step {
  what: string;
  /** Resolves with a one-line proof; throws with the missing piece and the fix. */
  prove(tb: Testbed): Promise<string>;
  rootOnly?: boolean;
}

class Missing extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

const isRoot = () => process.getuid?.() === 0;

const STEPS: Step[] = [
  {
    what: 'rootless podman: a container with a published port answers HTTP',
    async prove(tb) {
      const r = await probePublishedPort({
        podman: ['podman'],
        env: tb.env,
        image: IMAGE,
        run: (argv, o) => tb.run(argv, { timeoutMs: o.timeoutMs ?? 30_000, reject: false }),
      });
      if (!r.ok) throw new Missing(`as ${tb.user}: ${r.detail}`, r.fix ?? 'see above');
      return `as ${tb.user}: ${r.detail}`;
    },
  },
  {
    what: 'rootful podman: a container with a published port answers HTTP',
    rootOnly: true,
    async prove(tb) {
      await tb.importImageRootful();
      const r = await probePublishedPort({ podman: ['podman'], env: { ...process.env, CONTAINERS_CONF: tb.containersConf }, image: IMAGE });
      if (!r.ok) throw new Missing(`as root: ${r.detail}`, r.fix ?? 'see above');
      return `as root: ${r.detail}`;
    },
  },
  {
    what: 'nginx in front of a unix socket answers HTTP',
    async prove(tb) {
      const sock = path.join(tb.dir, 'probe.sock');
      const token = `zoopa nginx probe ${process.pid}`;
      const server = http.createServer((_req, res) => res.end(token));
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(sock, resolve));
      fs.chmodSync(sock, 0o666);
      try {
        const nginx = await tb.startNginx([{ path: '/', upstream: `unix:${sock}` }]).catch((e: Error) => {
          throw new Missing(`nginx does not start as ${tb.user}: ${e.message}`, 'sudo apt-get install -y nginx');
        });
        try {
          const r = await httpGet(`${nginx.url}/`, { timeoutMs: 10_000 });
          if (r.status !== 200 || r.body !== token) {
            throw new Missing(`nginx answered HTTP ${r.status} instead of the socket's page; its error log: ${nginx.errorLog().trim().split('\n').pop() ?? ''}`, 'see nginx\'s error log above');
          }
          return `nginx on ${nginx.url} passed a request to unix:${sock}`;
        } finally {
          await nginx.stop();
        }
      } finally {
        server.close();
      }
    },
  },
];

async function main(): Promise<number> {
  const t0 = Date.now();
  let tb: Testbed;
  try {
    tb = await Testbed.start({ name: 'prereqs' });
  } catch (e) {
    process.stderr.write(`prereqs: FAILED: a test bed (test user, its systemd user manager, the busybox image) does not start: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    for (const step of STEPS) {
      if (step.rootOnly && !isRoot()) {
        process.stdout.write(`prereqs: skipped (not root): ${step.what}\n`);
        continue;
      }
      try {
        const proof = await step.prove(tb);
        process.stdout.write(`prereqs: proved: ${step.what}: ${proof}\n`);
      } catch (e) {
        process.stderr.write(`prereqs: FAILED: ${step.what}: ${(e as Error).message}\n`);
        process.stderr.write(`prereqs:   fix: ${e instanceof Missing ? e.fix : 'see the error above'}\n`);
        return 1;
      }
    }
  } finally {
    await tb.stop();
  }
  process.stdout.write(`prereqs: every capability proved in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}

main().then(
  (status) => (process.exitCode = status),
  (e: unknown) => {
    process.stderr.write(`prereqs: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  },
);
