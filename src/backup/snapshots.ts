/**
 * `zoopa backup snapshots <stack>`: the stack's restic snapshots (tags zoopa and
 * stack:<name>), newest first, with id, time, paths, tags, and size and file
 * count as `restic stats` (restore-size mode) reports them; and for its Duplicati
 * jobs, what `duplicati-server-util list-backups --detailed` tells of their
 * versions (Duplicati's util lists no versions one by one).
 */
import { formatBytes } from '../format.js';
import { findJob, type DuplicatiEngine } from './engines/duplicati.js';
import type { ResticEngine } from './engines/restic.js';

export interface DuplicatiVersions {
  /** The job as zoopa.yaml names it. */
  job: string;
  /** `<ID>: <name>` in Duplicati, or null when Duplicati has no such job. */
  found: string | null;
  versions: number | null;
  lastBackup: string | null;
  lastError: string | null;
}

export interface StackSnapshots {
  stack: string;
  restic: SnapshotRow[];
  duplicati: DuplicatiVersions[];
}

export async function duplicatiVersions(engine: DuplicatiEngine, jobs: readonly string[]): Promise<DuplicatiVersions[]> {
  if (!jobs.length) return [];
  const all = await engine.listBackups();
  return jobs.map((job) => {
    const j = findJob(all, job);
    const v = j?.details['Versions'];
    return {
      job,
      found: j ? `${j.id}: ${j.name}` : null,
      versions: v !== undefined && /^\d+$/.test(v) ? Number(v) : null,
      lastBackup: j?.details['Last backup'] ?? null,
      lastError: j?.details['Last error'] ?? null,
    };
  });
}

export interface SnapshotRow {
  id: string;
  shortId: string;
  time: string;
  paths: string[];
  tags: string[];
  /** Bytes a restore writes. */
  size: number;
  /** Files and folders a restore creates (restic stats' total_file_count). */
  files: number;
}

export async function stackSnapshots(engine: ResticEngine, stack: string): Promise<SnapshotRow[]> {
  const snaps = (await engine.snapshots(stack)).sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  const rows: SnapshotRow[] = [];
  for (const s of snaps) {
    const st = await engine.stats(s.id);
    rows.push({ id: s.id, shortId: s.short_id, time: s.time, paths: s.paths, tags: s.tags ?? [], size: st.total_size, files: st.total_file_count });
  }
  return rows;
}

export function renderStackSnapshots(s: StackSnapshots, withRestic: boolean): string {
  const out: string[] = [];
  if (withRestic) out.push(renderSnapshots(s.stack, s.restic));
  for (const d of s.duplicati) {
    if (!d.found) out.push(`duplicati job ${JSON.stringify(d.job)}: not found in Duplicati\n`);
    else {
      const parts = [`${d.versions ?? 'unknown number of'} version${d.versions === 1 ? '' : 's'}`];
      if (d.lastBackup) parts.push(`last backup ${d.lastBackup}`);
      if (d.lastError) parts.push(`last error ${d.lastError}`);
      out.push(`duplicati job ${d.found}: ${parts.join(', ')}\n`);
    }
  }
  return out.join('');
}

export function renderSnapshots(stack: string, rows: readonly SnapshotRow[]): string {
  if (!rows.length) return `no restic snapshot of ${stack} (tags zoopa,stack:${stack})\n`;
  const table = rows.map((r) => [r.shortId, r.time.replace('T', ' ').replace(/\.\d+(Z|[+-]\d\d:\d\d)$/, '$1'), formatBytes(r.size), String(r.files), r.tags.join(','), r.paths.join(' ')]);
  const head = ['ID', 'TIME', 'SIZE', 'FILES', 'TAGS', 'PATHS'];
  const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]!) : c)).join('  ');
  return [fmt(head), ...table.map(fmt)].join('\n') + '\n';
}
