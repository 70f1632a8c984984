/**
 * zoopa check-stack <stack> --file F... --timeout S [--rootful]: run by a stack unit's
 * ExecStartPost= (src/units/stack.ts) after `podman-compose up -d`, in the stack folder.
 * Exits 0 when every service runs (healthy where it has a healthcheck), else prints each
 * problem to stderr (so the unit's log names container, state, exit code, image and last
 * log lines) and exits 1, which fails the start (`systemctl --user start`, `zoopa up`).
 *
 * On failure it also saves the problems (verify.ts saveCheck: `zoopa up` and the proxy
 * read them) and removes the stack's containers with `podman-compose down` (--compose):
 * a failed start would otherwise leave them running in the unit's cgroup, where systemd
 * waits TimeoutStopSec= for them to die, and the next start is then a fresh `up`.
 *
 * It waits for pending health checks until --timeout seconds after the unit's start
 * began (read from systemd, so the problems are printed before TimeoutStartSec= kills
 * the unit), or --timeout seconds from now when that cannot be read.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { UsageError } from '../../errors.js';
import { run } from '../../exec.js';
import { createLogger } from '../../log.js';
import { rootfulContainerEngine, rootlessContainerEngine } from '../../podman/podman.js';
import { stackUnitName } from '../../names.js';
import { clearCheck, composeServices, describeProblem, saveCheck, verifyStack } from '../../stacks/verify.js';
import { which } from '../../unitfile/tools.js';
import { returnsStatus, unitManager } from '../context.js';

/** Leave this much of the unit's start timeout for printing and exiting. */
const MARGIN_MS = 3000;

/** ms left of the unit's start timeout, from when systemd began starting it (undefined: unknown). */
async function remainingOfUnitStart(unit: string, timeoutMs: number): Promise<number | undefined> {
  try {
    const info = (await unitManager().show([unit], ['InactiveExitTimestampMonotonic'], { timeoutMs: 10_000 })).get(unit);
    const began = Number(info?.props.InactiveExitTimestampMonotonic ?? 0); // µs, CLOCK_MONOTONIC
    if (!began || info?.activeState !== 'activating') return undefined;
    const nowUs = Number(process.hrtime.bigint() / 1000n); // CLOCK_MONOTONIC too
    return timeoutMs - (nowUs - began) / 1000;
  } catch {
    return undefined;
  }
}

export function register(program: Command): void {
  program
    .command('check-stack <stack>')
    .description("verify that every service of a stack has a running (and healthy) container; run by the stack unit's ExecStartPost=")
    .option('-f, --file <file>', 'compose file (relative to the current folder); repeat for several', (v: string, prev: string[] = []) => [...prev, v])
    .option('--timeout <seconds>', 'how long to wait for health checks (the unit start timeout)', (v) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`--timeout takes whole seconds, got ${JSON.stringify(v)}`, { key: '--timeout', value: v, hint: 'e.g. --timeout 120' });
      return Number(v);
    })
    .option('--rootful', "the stack runs in root's podman (asked through sudo -n)")
    .option('--compose <path>', 'podman-compose, to remove the containers again when the check fails')
    .action(returnsStatus(async (stack: string, opts: { file?: string[]; timeout?: number; rootful?: boolean; compose?: string }) => {
      const files = (opts.file?.length ? opts.file : ['docker-compose.yml']).map((f) => path.resolve(f));
      const services = composeServices(files);
      const timeoutMs = (opts.timeout ?? 0) * 1000;
      const left = timeoutMs ? await remainingOfUnitStart(stackUnitName(stack), timeoutMs) : undefined;
      const waitMs = Math.max(0, (left ?? timeoutMs) - MARGIN_MS);
      const engine = opts.rootful ? rootfulContainerEngine() : rootlessContainerEngine();
      const problems = await verifyStack(engine, stack, services, { timeoutMs: waitMs });
      const log = createLogger();
      if (!problems.length) {
        clearCheck(stack);
        log.info(`check-stack ${stack}: all ${services.length} service(s) running`);
        return 0;
      }
      log.error(`check-stack ${stack}: ${problems.length} of ${services.length} service(s) not running:\n${problems.map((p) => `- ${describeProblem(p)}`).join('\n')}`);
      try {
        saveCheck(stack, problems);
      } catch (e) {
        log.warn(`check-stack ${stack}: could not save the problems for "zoopa up": ${(e as Error).message}`);
      }
      if (opts.compose) {
        // Exactly the unit's ExecStop= (src/stacks/units.ts composeArgv): the rootful stack's
        // absolute -f files (the sudo rule allows that argv only); -f for several files otherwise.
        const given = opts.file ?? [];
        const fileArgs = opts.rootful || given.length > 1 ? given.flatMap((f) => ['-f', f]) : [];
        const down = [...(opts.rootful ? [which('sudo') ?? '/usr/bin/sudo', '-n'] : []), opts.compose, '-p', stack, ...fileArgs, 'down'];
        log.info(`check-stack ${stack}: removing its containers again: ${down.join(' ')}`);
        const r = await run(down, { reject: false, timeoutMs: 120_000 }).catch((e: Error) => ({ status: null, stderr: e.message }));
        if (r.status !== 0) log.warn(`check-stack ${stack}: ${down.join(' ')} failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
      }
      return 1;
    }));
}
