/**
 * The proxy's view of systemd: `systemctl --user` show/start/stop of the stack
 * unit, each call bounded by a timeout within the deadline it serves (a hung
 * systemctl must not keep a held client past the start timeout, nor an idle
 * stop forever). Every call goes through exec.run (argv, no shell).
 *
 * Kept in the proxy (and not src/systemd/systemctl.ts's UnitManager) because
 * that port has no timeout or AbortSignal yet; once it has, `fromUnitManager`
 * is all this file needs to be.
 */
import type { UnitManager } from '../core/ports.js';
import { CommandError } from '../errors.js';
import { run } from '../exec.js';

export interface StackUnitInfo {
  loadState: string;
  activeState: string;
  /** systemd's id of the unit's current (or last) run; '' when it never ran. */
  invocationId: string;
  /** Extra properties asked for, raw. */
  props: Record<string, string>;
}

export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface ProxyUnits {
  show(unit: string, o: CallOptions, extraProps?: readonly string[]): Promise<StackUnitInfo>;
  /** `systemctl start` (waits for the job). */
  start(unit: string, o: CallOptions): Promise<void>;
  /** `systemctl stop` (waits for the job). */
  stop(unit: string, o: CallOptions): Promise<void>;
}

/** A show() with at most this long (or less, when the deadline is nearer). */
export const SHOW_TIMEOUT_MS = 15_000;

/** The job was cancelled by another one (a start by hand during zoopa's stop): not a failure. */
export function isCanceledJob(e: unknown): boolean {
  return e instanceof CommandError && /Job for \S+ canceled/i.test(e.stderr);
}

export class SystemctlUnits implements ProxyUnits {
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly systemctl = 'systemctl',
  ) {}

  async show(unit: string, o: CallOptions, extraProps: readonly string[] = []): Promise<StackUnitInfo> {
    const props = ['LoadState', 'ActiveState', 'InvocationID', ...extraProps];
    const r = await run([this.systemctl, '--user', 'show', `--property=${props.join(',')}`, '--', unit], { env: this.env, timeoutMs: o.timeoutMs, signal: o.signal });
    const kv: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) kv[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return { loadState: kv.LoadState ?? 'not-found', activeState: kv.ActiveState ?? 'inactive', invocationId: kv.InvocationID ?? '', props: kv };
  }

  async start(unit: string, o: CallOptions): Promise<void> {
    await run([this.systemctl, '--user', 'start', '--', unit], { env: this.env, timeoutMs: o.timeoutMs, signal: o.signal });
  }

  async stop(unit: string, o: CallOptions): Promise<void> {
    await run([this.systemctl, '--user', 'stop', '--', unit], { env: this.env, timeoutMs: o.timeoutMs, signal: o.signal });
  }
}

/** A UnitManager as ProxyUnits (its calls have no timeout: for tests and in-process use). */
export function fromUnitManager(m: UnitManager): ProxyUnits {
  return {
    async show(unit, _o, extraProps = []) {
      const info = (await m.show([unit], ['InvocationID', ...extraProps])).get(unit);
      return { loadState: info?.loadState ?? 'not-found', activeState: info?.activeState ?? 'inactive', invocationId: info?.props.InvocationID ?? '', props: info?.props ?? {} };
    },
    start: (unit) => m.start(unit),
    stop: (unit) => m.stop(unit),
  };
}
