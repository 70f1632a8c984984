/** Printing an install plan for people (and as JSON). */
import os from 'node:os';
import type { InstallPlan, PlanItem } from '../units/install.js';

const MARK: Record<PlanItem['action'], string> = { add: '+', change: '~', unchanged: '=', remove: '-' };

function tilde(p: string): string {
  const h = os.homedir();
  return h && h !== '/' && p.startsWith(h + '/') ? '~' + p.slice(h.length) : p;
}

export function formatPlan(plan: InstallPlan, opts: { showUnchanged?: boolean } = {}): string {
  const lines: string[] = [];
  for (const i of plan.items) {
    if (i.action === 'unchanged' && !i.relink && !i.conflict && !opts.showUnchanged) continue;
    const what = i.kind === 'unit' ? i.name : tilde(i.path);
    const linkOnly = i.action === 'unchanged' && i.relink;
    const notes = [linkOnly ? 'link (already rendered)' : i.action, i.conflict ? `replaces hand-written ${tilde(i.conflict)}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${linkOnly ? '+' : MARK[i.action]} ${what.padEnd(40)} ${notes}`);
    if (i.diff) for (const d of i.diff.split('\n')) lines.push(`      ${d}`);
  }
  const counts = (['add', 'change', 'remove'] as const).map((a) => `${plan.items.filter((i) => i.action === a).length} ${a === 'add' ? 'added' : a === 'change' ? 'changed' : 'removed'}`);
  const unchanged = plan.items.filter((i) => i.action === 'unchanged').length;
  return [`units folder ${tilde(plan.unitsDir)}, linked into ${tilde(plan.userUnitDir)}`, ...lines, `${counts.join(', ')}, ${unchanged} unchanged`].join('\n') + '\n';
}

export function planJson(plan: InstallPlan): unknown {
  return {
    unitsDir: plan.unitsDir,
    userUnitDir: plan.userUnitDir,
    changes: plan.changes,
    items: plan.items.map(({ content: _c, ...rest }) => rest),
  };
}
