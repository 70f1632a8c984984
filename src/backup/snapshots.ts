/**
 * `zoopa backup snapshots <stack>`: the stack's restic snapshots (tags zoopa and
 * stack:<name>), newest first, with id, time, paths, tags, and size and file
 * count as `restic stats` (restore-size mode) reports them.
 */
import { formatBytes } from '../format.js';
import type { ResticEngine } from './engines/restic.js';

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

export function renderSnapshots(stack: string, rows: readonly SnapshotRow[]): string {
  if (!rows.length) return `no restic snapshot of ${stack} (tags zoopa,stack:${stack})\n`;
  const table = rows.map((r) => [r.shortId, r.time.replace('T', ' ').replace(/\.\d+(Z|[+-]\d\d:\d\d)$/, '$1'), formatBytes(r.size), String(r.files), r.tags.join(','), r.paths.join(' ')]);
  const head = ['ID', 'TIME', 'SIZE', 'FILES', 'TAGS', 'PATHS'];
  const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]!) : c)).join('  ');
  return [fmt(head), ...table.map(fmt)].join('\n') + '\n';
}
