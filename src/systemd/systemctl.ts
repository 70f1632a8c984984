/** UnitManager backed by `systemctl --user` (reaches the manager over its private socket or D-Bus). */
import type { CallOptions, UnitInfo, UnitManager } from '../core/ports.js';
import { AbortError, CommandError } from '../errors.js';
import { run } from '../exec.js';

const BASE_PROPS = ['Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'FragmentPath'] as const;

export class SystemctlUserManager implements UnitManager {
  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly systemctl = 'systemctl',
  ) {}

  private async ctl(args: readonly string[], timeoutMs?: number): Promise<string> {
    const r = await run([this.systemctl, '--user', ...args], { env: this.env, timeoutMs });
    return r.stdout;
  }

  async show(units: readonly string[], extraProps: readonly string[] = []): Promise<Map<string, UnitInfo>> {
    const out = new Map<string, UnitInfo>();
    if (units.length === 0) return out;
    const props = [...BASE_PROPS, ...extraProps];
    const text = await this.ctl(['show', `--property=${props.join(',')}`, '--', ...units]);
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

  async list(patterns: readonly string[]): Promise<Map<string, UnitInfo>> {
    const [loaded, files] = await Promise.all([
      this.ctl(['list-units', '--all', '--output=json', '--', ...patterns]),
      this.ctl(['list-unit-files', '--output=json', '--', ...patterns]),
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

  async start(unit: string): Promise<void> {
    await this.ctl(['start', '--', unit]);
  }

  async stop(unit: string): Promise<void> {
    await this.ctl(['stop', '--', unit]);
  }

  async restart(unit: string): Promise<void> {
    await this.ctl(['restart', '--', unit]);
  }

  async enable(units: readonly string[], opts: { now?: boolean } = {}): Promise<void> {
    if (units.length) await this.ctl(['enable', ...(opts.now ? ['--now'] : []), '--', ...units]);
  }

  async disable(units: readonly string[], opts: { now?: boolean } = {}): Promise<void> {
    if (units.length) await this.ctl(['disable', ...(opts.now ? ['--now'] : []), '--', ...units]);
  }

  async daemonReload(): Promise<void> {
    await this.ctl(['daemon-reload']);
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
