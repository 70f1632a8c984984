/**
 * `zoopa backup check [<stack>...] [--read-data-subset N%]`: `restic check` on the
 * repository (reading that share of the data when asked), then, per stack, that
 * its latest snapshot is younger than its `max_age` (default 2 days). Any
 * failure makes the check fail, each with one clear line.
 */
import { formatDuration } from '../config/duration.js';
import type { ResticEngine } from './engines/restic.js';

export interface StackAge {
  stack: string;
  maxAgeSec: number;
}

export interface StackCheck extends StackAge {
  ok: boolean;
  latest: { id: string; time: string } | null;
  ageSec: number | null;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  repository: { ok: boolean; detail: string; subset: string | null };
  stacks: StackCheck[];
}

/** An age for people: days and hours from a day on, else formatDuration's. */
export function formatAge(sec: number): string {
  if (sec < 86400) return formatDuration(sec);
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  return `${d}d${h ? ` ${h}h` : ''}`;
}

export async function checkBackups(engine: ResticEngine, stacks: readonly StackAge[], opts: { subset?: string | undefined; now?: Date } = {}): Promise<CheckReport> {
  const repo = await engine.check({ subset: opts.subset });
  const now = (opts.now ?? new Date()).getTime();
  const results: StackCheck[] = [];
  for (const s of stacks) {
    const max = formatAge(s.maxAgeSec);
    let snaps;
    try {
      snaps = await engine.snapshots(s.stack);
    } catch (e) {
      results.push({ ...s, ok: false, latest: null, ageSec: null, detail: (e as Error).message });
      continue;
    }
    const latest = snaps.sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
    if (!latest) {
      results.push({ ...s, ok: false, latest: null, ageSec: null, detail: `no snapshot at all (max_age ${max})` });
      continue;
    }
    const ageSec = Math.max(0, (now - Date.parse(latest.time)) / 1000);
    const ok = ageSec <= s.maxAgeSec;
    results.push({
      ...s,
      ok,
      latest: { id: latest.short_id, time: latest.time },
      ageSec,
      detail: ok
        ? `latest snapshot ${latest.short_id} is ${formatAge(ageSec)} old (max_age ${max})`
        : `latest snapshot ${latest.short_id} is ${formatAge(ageSec)} old, older than max_age ${max}`,
    });
  }
  return { ok: repo.ok && results.every((r) => r.ok), repository: { ...repo, subset: opts.subset ?? null }, stacks: results };
}

export function renderCheck(r: CheckReport): string {
  const rows = [
    ['repository', r.repository.ok ? 'ok' : 'FAILED', `restic check${r.repository.subset ? ` --read-data-subset ${r.repository.subset}` : ''}: ${r.repository.detail}`],
    ...r.stacks.map((s) => [s.stack, s.ok ? 'ok' : 'FAILED', s.detail]),
  ];
  const w = Math.max(...rows.map((x) => x[0]!.length));
  return rows.map((x) => `${x[0]!.padEnd(w)}  ${x[1]!.padEnd(6)}  ${x[2]}`).join('\n') + '\n';
}
