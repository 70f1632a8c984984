/** UnitManager backed by `systemctl --user` (reaches the manager over its private socket or D-Bus). */
import type { CallOptions, UnitInfo, UnitManager } from '../core/ports.js';
import { AbortError, CommandError } from '../errors.js';
import { run } from '../exec.js';

const BASE_PROPS = ['Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'FragmentPath'] as const;

/** Default deadline of a query or a quick change (show, list, enable, daemon-reload, ...). */
export const SYSTEMCTL_CALL_TIMEOUT_MS = 30_000;
/**
 * Default deadline of a start/stop/restart when the caller gives none: a bound on a
 * hung manager only. Callers that wait for a job pass their own deadline.
 */
export const SYSTEMCTL_JOB_TIMEOUT_MS = 15 * 60_000;

export class SystemctlUserManager implements UnitManager {
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly systemctl = 'systemctl',
  ) {}

  private async ctl(args: readonly string[], call: CallOptions = {}, defaultTimeoutMs = SYSTEMCTL_CALL_TIMEOUT_MS): Promise<string> {
    const r = await run([this.systemctl, '--user', ...args], { env: this.env, timeoutMs: call.timeoutMs ?? defaultTimeoutMs, signal: call.signal });
    return r.stdout;
  }

  async show(units: readonly string[], extraProps: readonly string[] = [], call: CallOptions = {}): Promise<Map<string, UnitInfo>> {
    const out = new Map<string, UnitInfo>();
    if (units.length === 0) return out;
    const props = [...BASE_PROPS, ...extraProps];
    const text = await this.ctl(['show', `--property=${props.join(',')}`, '--', ...units], call);
    // One block per unit, in the order asked, separated by blank lines.
    const blocks = text.split(/\n\n/);
    units.forEach((name, i) => {
      const kv: Record<string, string> = {};
      for (const line of (blocks[i] ?? '').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) kv[line.slice(0, eq)] = line.slice(eq + 1);
      }
      out.set(name, {
        name,
        loadState: kv.LoadState ?? 'not-found',
        activeState: kv.ActiveState ?? 'inactive',
        subState: kv.SubState ?? 'dead',
        unitFileState: kv.UnitFileState ?? '',
        fragmentPath: kv.FragmentPath ?? '',
        props: kv,
      });
    });
    return out;
  }

  async list(patterns: readonly string[], call: CallOptions = {}): Promise<Map<string, UnitInfo>> {
    const [loaded, files] = await Promise.all([
      this.ctl(['list-units', '--all', '--output=json', '--', ...patterns], call),
      this.ctl(['list-unit-files', '--output=json', '--', ...patterns], call),
    ]);
    const out = new Map<string, UnitInfo>();
    for (const f of JSON.parse(files || '[]') as Array<{ unit_file: string; state: string }>) {
      out.set(f.unit_file, { name: f.unit_file, loadState: 'loaded', activeState: 'inactive', subState: 'dead', unitFileState: f.state, fragmentPath: '', props: {} });
    }
    for (const u of JSON.parse(loaded || '[]') as Array<{ unit: string; load: string; active: string; sub: string }>) {
      const prev = out.get(u.unit);
      out.set(u.unit, { name: u.unit, loadState: u.load, activeState: u.active, subState: u.sub, unitFileState: prev?.unitFileState ?? '', fragmentPath: '', props: {} });
    }
    return out;
  }

  async start(unit: string, call: CallOptions = {}): Promise<void> {
    await this.ctl(['start', '--', unit], call, SYSTEMCTL_JOB_TIMEOUT_MS);
  }

  async stop(unit: string, call: CallOptions = {}): Promise<void> {
    await this.ctl(['stop', '--', unit], call, SYSTEMCTL_JOB_TIMEOUT_MS);
  }

  async restart(unit: string, call: CallOptions = {}): Promise<void> {
    await this.ctl(['restart', '--', unit], call, SYSTEMCTL_JOB_TIMEOUT_MS);
  }

  async enable(units: readonly string[], opts: { now?: boolean } = {}, call: CallOptions = {}): Promise<void> {
    if (units.length) await this.ctl(['enable', ...(opts.now ? ['--now'] : []), '--', ...units], call, opts.now ? SYSTEMCTL_JOB_TIMEOUT_MS : SYSTEMCTL_CALL_TIMEOUT_MS);
  }

  async disable(units: readonly string[], opts: { now?: boolean } = {}, call: CallOptions = {}): Promise<void> {
    if (units.length) await this.ctl(['disable', ...(opts.now ? ['--now'] : []), '--', ...units], call, opts.now ? SYSTEMCTL_JOB_TIMEOUT_MS : SYSTEMCTL_CALL_TIMEOUT_MS);
  }

  async daemonReload(call: CallOptions = {}): Promise<void> {
    await this.ctl(['daemon-reload'], call);
  }

  async resetFailed(unit: string, call: CallOptions = {}): Promise<void> {
    const r = await run([this.systemctl, '--user', 'reset-failed', '--', unit], {
      env: this.env,
      reject: false,
      timeoutMs: call.timeoutMs ?? SYSTEMCTL_CALL_TIMEOUT_MS,
      signal: call.signal,
    });
    // A unit that is not failed (or not loaded) has nothing to reset.
    if (r.status !== 0 && !/not loaded|not failed|Unit .* not found/i.test(r.stderr)) {
      throw new CommandError(r.argv, r);
    }
  }

  /** journalctl --user -u unit, output straight to our stdout; an abort (Ctrl-C in the CLI) ends it quietly. */
  async logs(unit: string, opts: { follow?: boolean; lines?: number }, call: CallOptions = {}): Promise<void> {
    const argv = ['journalctl', '--user', '-u', unit, '--no-pager', ...(opts.lines !== undefined ? ['-n', String(opts.lines)] : []), ...(opts.follow ? ['-f'] : [])];
    try {
      const r = await run(argv, { env: this.env, stdout: 'inherit', reject: false, signal: call.signal, timeoutMs: call.timeoutMs });
      if (r.status !== 0) throw new CommandError(argv, r, { hint: 'is journald running for your user? ("zoopa doctor")' });
    } catch (e) {
      if (e instanceof AbortError) return;
      throw e;
    }
  }
}
