/**
 * Prometheus text exposition (format 0.0.4) of a StatusReport: what `/metrics`
 * serves and `zoopa metrics --textfile DIR` writes for node_exporter's textfile
 * collector. Every family has HELP and TYPE lines; label values are escaped.
 * Checked by `promtool check metrics` in the tests.
 */
import { WAKE_BUCKETS } from '../ondemand/stats.js';
import { ondemandStateName, type StatusReport } from '../status/collect.js';

export const ONDEMAND_STATES = ['sleeping', 'waking', 'awake', 'stopping', 'frozen', 'off'] as const;
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function value(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

class Family {
  readonly lines: string[] = [];
  constructor(
    readonly name: string,
    readonly type: 'gauge' | 'counter' | 'histogram',
    readonly help: string,
  ) {}
  sample(l: Labels, v: number, suffix = ''): this {
    this.lines.push(`${this.name}${suffix}${labels(l)} ${value(v)}`);
    return this;
  }
  toString(): string {
    if (this.lines.length === 0) return '';
    return [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`, ...this.lines].join('\n') + '\n';
  }
}

const seconds = (iso: string | null): number | undefined => {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t / 1000;
};

export function renderMetrics(r: StatusReport): string {
  const up = new Family('zoopa_stack_up', 'gauge', '1 when the stack unit is active.');
  const state = new Family('zoopa_ondemand_state', 'gauge', 'On-demand state of the stack: 1 for the current state, 0 for the others.');
  const wakes = new Family('zoopa_ondemand_wakes_total', 'counter', 'Wakes started by the on-demand proxy.');
  const failures = new Family('zoopa_ondemand_wake_failures_total', 'counter', 'Wakes that failed (the stack did not start or did not become ready).');
  const idleStops = new Family('zoopa_ondemand_idle_stops_total', 'counter', 'Stacks stopped by the on-demand proxy after the idle timeout.');
  const wakeSeconds = new Family('zoopa_ondemand_wake_seconds', 'histogram', 'Time from the first connection to the app answering, for successful wakes.');
  const conns = new Family('zoopa_ondemand_connections', 'gauge', 'Open client connections of the on-demand proxy (held ones included).');
  const bytes = new Family('zoopa_ondemand_bytes_total', 'counter', 'Bytes proxied: direction="in" client to app, "out" app to client.');
  const lastSuccess = new Family('zoopa_backup_last_success_timestamp_seconds', 'gauge', 'When the last successful backup of the stack finished (Unix time).');
  const lastDuration = new Family('zoopa_backup_last_duration_seconds', 'gauge', 'How long the last backup of the stack took.');
  const lastResult = new Family('zoopa_backup_last_result', 'gauge', 'Result of the last backup of the stack: 1 ok, 0 failed or interrupted.');
  const downtime = new Family('zoopa_backup_downtime_seconds', 'gauge', 'How long the stack was down for its last backup.');
  const llamaUp = new Family('zoopa_llama_up', 'gauge', '1 when the llama.cpp service unit is active.');

  for (const s of r.stacks) {
    const l = { stack: s.name };
    up.sample(l, s.state === 'active' ? 1 : 0);
    const o = s.ondemand;
    if (o) {
      const cur = ondemandStateName(o);
      for (const st of ONDEMAND_STATES) state.sample({ stack: s.name, state: st }, st === cur ? 1 : 0);
      wakes.sample(l, o.stats.wakes);
      failures.sample(l, o.stats.wakeFailures);
      idleStops.sample(l, o.stats.idleStops);
      WAKE_BUCKETS.forEach((le, i) => wakeSeconds.sample({ stack: s.name, le: String(le) }, o.stats.wakeSeconds.buckets[i] ?? 0, '_bucket'));
      wakeSeconds.sample({ stack: s.name, le: '+Inf' }, o.stats.wakeSeconds.count, '_bucket');
      wakeSeconds.sample(l, o.stats.wakeSeconds.sum, '_sum');
      wakeSeconds.sample(l, o.stats.wakeSeconds.count, '_count');
      conns.sample(l, o.connections);
      bytes.sample({ stack: s.name, direction: 'in' }, o.bytesTotal.in);
      bytes.sample({ stack: s.name, direction: 'out' }, o.bytesTotal.out);
    }
    const b = s.backup;
    if (b) {
      const ok = seconds(b.lastSuccessAt);
      if (ok !== undefined) lastSuccess.sample(l, ok);
      lastDuration.sample(l, b.durationSec);
      lastResult.sample(l, b.result === 'ok' ? 1 : 0);
      if (b.downtimeSec !== null) downtime.sample(l, b.downtimeSec);
    }
  }
  for (const m of r.llama) llamaUp.sample({ service: m.name }, m.state === 'active' ? 1 : 0);
  return [up, state, wakes, failures, idleStops, wakeSeconds, conns, bytes, lastSuccess, lastDuration, lastResult, downtime, llamaUp].map(String).join('');
}
