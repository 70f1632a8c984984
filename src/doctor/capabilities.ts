/**
 * zoopa doctor's proof that podman can run a stack here: the network backend and the
 * programs it runs to publish a port, then a real container with a published port
 * answering HTTP (src/podman/probe.ts). The container runs a throwaway image built
 * from the machine's /bin/busybox (a user machine may have no image of its own that
 * serves HTTP), removed again afterwards.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../exec.js';
import { buildBusyboxTar, busyboxUnusable, importArgs } from '../podman/busybox-image.js';
import { missingNetworkHelpers, networkBackend, probePublishedPort } from '../podman/probe.js';
import { which } from '../unitfile/tools.js';
import type { CheckResult } from './types.js';

const CHECK = 'podman published port';

export async function podmanNetworkChecks(env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
  const podman = which('podman', env);
  if (!podman) return []; // the podman check says so
  const backend = await networkBackend({ podman: [podman], env });
  if (!backend) return []; // podman info failed: the podman check says why
  const missing = missingNetworkHelpers(backend, env);
  if (missing.length) {
    return [
      {
        check: CHECK,
        verdict: 'fail',
        detail: `podman's network backend is ${backend}, which runs ${missing.map((m) => m.program).join(', ')} to publish a port: not found (containers with ports: fail, and podman-compose 1.0.3 still exits 0)`,
        fix: [...new Set(missing.map((m) => m.fix))].join('; '),
      },
    ];
  }
  const unusable = busyboxUnusable();
  if (unusable) {
    return [
      {
        check: CHECK,
        verdict: 'warn',
        detail: `network backend ${backend} and its helpers are present, but a published port was not tried: ${unusable} (doctor builds a throwaway image from it)`,
        fix: `sudo apt-get install -y busybox-static, or try by hand: podman run --rm -d -p 127.0.0.1:8080:80 <an image of yours that serves HTTP on 80> && curl http://127.0.0.1:8080/`,
      },
    ];
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-doctor-'));
  const image = `localhost/zoopa-doctor-probe:${crypto.randomBytes(4).toString('hex')}`;
  try {
    const tar = await buildBusyboxTar(dir, 'probe');
    const imp = await run([podman, ...importArgs(tar, image)], { env, reject: false, timeoutMs: 60_000 });
    if (imp.status !== 0) {
      return [{ check: CHECK, verdict: 'fail', detail: `podman import of a throwaway busybox image failed: ${imp.stderr.trim().split('\n').pop() ?? ''}`, fix: 'run "podman info" and fix what it reports' }];
    }
    const r = await probePublishedPort({ podman: [podman], env, image });
    return [r.ok ? { check: CHECK, verdict: 'ok', detail: `${r.detail} (network backend ${backend})` } : { check: CHECK, verdict: 'fail', detail: `${r.detail} (network backend ${backend})`, ...(r.fix ? { fix: r.fix } : {}) }];
  } finally {
    await run([podman, 'rmi', '-f', image], { env, reject: false, timeoutMs: 30_000 }).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
