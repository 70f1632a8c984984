/**
 * Installing rendered units the way the original did by hand: write them into
 * the units folder (default <root>/systemd), link each into
 * $XDG_CONFIG_HOME/systemd/user, and `systemctl --user daemon-reload`.
 *
 * A unit or file is Zoopa's only if its text carries GENERATED_MARKER; Zoopa
 * never overwrites, unlinks or deletes anything else (a hand-written unit of
 * the same name is a conflict, replaced only with --adopt, and kept aside).
 * The plan is computed first and printed; applying it is a separate step, so
 * --dry-run touches nothing and a second install finds nothing to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { UnitManager } from '../core/ports.js';
import { StateError, UsageError } from '../errors.js';
import { userUnitDir, zoopaStateDir } from '../paths.js';
import type { Project } from '../stacks/discover.js';
import { lineDiff } from '../unitfile/diff.js';
import { GENERATED_MARKER } from '../unitfile/model.js';
import type { ManagedFile, RenderedUnit } from '../unitfile/types.js';
import { renderAll, renderManagedFiles } from './render.js';
import { resolveTools } from '../unitfile/tools.js';
import { writeFileAtomic } from '../fsutil.js';

export type Action = 'add' | 'change' | 'unchanged' | 'remove';

export interface PlanItem {
  /** Unit name, or the path of a managed file. */
  name: string;
  kind: 'unit' | 'file';
  action: Action;
  /** Where the content lives (units: in the units folder). */
  path: string;
  /** For units: the link in the user unit folder. */
  link?: string;
  /** The link is missing or points elsewhere (and will be set). */
  relink?: boolean;
  content?: string;
  mode?: number;
  diff?: string;
  /** A hand-written file in the way, moved aside with --adopt. */
  conflict?: string;
}

export interface InstallPlan {
  unitsDir: string;
  userUnitDir: string;
  items: PlanItem[];
  /** Anything to do at all. */
  changes: boolean;
}

export interface PlanOptions {
  env?: NodeJS.ProcessEnv;
  /** Override the units folder (zoopa render --out). */
  outDir?: string | undefined;
  /** Only write units into the folder, do not link (zoopa render). */
  renderOnly?: boolean;
}

export function unitsDirFor(project: Project, outDir?: string): string {
  if (outDir) return path.resolve(outDir);
  return path.resolve(project.root, project.config.units_dir ?? 'systemd');
}

export function isGenerated(text: string): boolean {
  return text.split('\n', 3).some((l) => l.startsWith('#') && l.includes(GENERATED_MARKER));
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function readLink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

interface Manifest {
  unitsDir: string;
  units: string[];
  files: string[];
}

function manifestPath(env: NodeJS.ProcessEnv): string {
  return path.join(zoopaStateDir(env), 'installed.json');
}

export function readManifest(env: NodeJS.ProcessEnv): Manifest | undefined {
  const t = readText(manifestPath(env));
  if (!t) return undefined;
  try {
    return JSON.parse(t) as Manifest;
  } catch {
    return undefined;
  }
}

/** Render everything and compare with what is on disk. Pure: writes nothing. */
export function planInstall(project: Project, opts: PlanOptions = {}): InstallPlan {
  const env = opts.env ?? process.env;
  const tools = resolveTools({ podmanCompose: project.config.podman_compose, configFile: project.configFile, env });
  const ctx = { project, tools, env };
  const units = renderAll(ctx);
  const files = opts.renderOnly ? [] : renderManagedFiles(ctx);
  const unitsDir = unitsDirFor(project, opts.outDir);
  const linkDir = userUnitDir(env);
  const items: PlanItem[] = [];

  for (const u of units) items.push(planUnit(u, unitsDir, linkDir, !opts.renderOnly));
  for (const f of files) items.push(planFile(f));

  // Units and files a previous install wrote that are no longer rendered.
  const manifest = readManifest(env);
  const rendered = new Set(units.map((u) => u.name));
  const candidates = new Set<string>(manifest?.unitsDir === unitsDir ? manifest.units : []);
  for (const f of safeReaddir(unitsDir)) if (/\.(service|socket|timer|target|path)$/.test(f)) candidates.add(f);
  for (const name of [...candidates].sort()) {
    if (rendered.has(name)) continue;
    const p = path.join(unitsDir, name);
    const text = readText(p);
    if (text === undefined || !isGenerated(text)) continue; // never touch a unit we did not write
    const link = path.join(linkDir, name);
    items.push({ name, kind: 'unit', action: 'remove', path: p, link: readLink(link) === p ? link : undefined });
  }
  if (!opts.renderOnly) {
    const renderedFiles = new Set(files.map((f) => f.path));
    for (const p of manifest?.files ?? []) {
      if (renderedFiles.has(p)) continue;
      const text = readText(p);
      if (text !== undefined && isGenerated(text)) items.push({ name: p, kind: 'file', action: 'remove', path: p });
    }
  }
  return { unitsDir, userUnitDir: linkDir, items, changes: items.some((i) => i.action !== 'unchanged' || i.relink) };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function planUnit(u: RenderedUnit, unitsDir: string, linkDir: string, withLink: boolean): PlanItem {
  const p = path.join(unitsDir, u.name);
  const link = path.join(linkDir, u.name);
  const old = readText(p);
  const item: PlanItem = { name: u.name, kind: 'unit', action: 'add', path: p, content: u.content };
  if (old !== undefined) {
    if (!isGenerated(old)) item.conflict = p;
    item.action = old === u.content ? 'unchanged' : 'change';
    if (item.action === 'change') item.diff = lineDiff(old, u.content);
  }
  if (withLink) {
    item.link = link;
    const target = readLink(link);
    if (target !== p) {
      item.relink = true;
      if (exists(link)) {
        // Something else sits where our link goes: ours only if it is a generated unit.
        const text = readText(link);
        if (text === undefined || !isGenerated(text)) item.conflict ??= link;
      }
    }
  }
  return item;
}

function planFile(f: ManagedFile): PlanItem {
  const old = readText(f.path);
  const item: PlanItem = { name: f.path, kind: 'file', action: 'add', path: f.path, content: f.content, mode: f.mode };
  if (old !== undefined) {
    if (!isGenerated(old)) item.conflict = f.path;
    item.action = old === f.content ? 'unchanged' : 'change';
    if (item.action === 'change') item.diff = lineDiff(old, f.content);
  }
  return item;
}

/** Hand-written files in the way; install refuses them unless adopting. */
export function conflicts(plan: InstallPlan): PlanItem[] {
  return plan.items.filter((i) => i.conflict);
}

export function checkConflicts(plan: InstallPlan, adopt: boolean): void {
  const c = conflicts(plan);
  if (c.length && !adopt) {
    throw new UsageError(`${c.length === 1 ? 'a file' : `${c.length} files`} that zoopa did not write would be replaced: ${c.map((i) => i.conflict).join(', ')}`, {
      key: '--adopt',
      value: c[0]!.conflict,
      hint: 'if these are your hand-written units or env files from the original setup, run again with --adopt: zoopa keeps each old file as <name>.zoopa-orig beside it',
    });
  }
}

function setAside(p: string): void {
  if (exists(p)) fs.renameSync(p, `${p}.zoopa-orig`);
}

/**
 * Apply a plan: write, link, remove, then one daemon-reload if any unit
 * changed. Returns whether anything was done.
 */
export async function applyInstall(plan: InstallPlan, manager: UnitManager | undefined, opts: { adopt?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<boolean> {
  checkConflicts(plan, opts.adopt ?? false);
  const env = opts.env ?? process.env;
  let unitsChanged = false;
  for (const i of plan.items) {
    if (i.action === 'remove') continue;
    if (i.conflict) setAside(i.conflict);
    if (i.action !== 'unchanged' || i.conflict) {
      writeFileAtomic(i.path, i.content!, { mode: i.mode ?? 0o644 });
      if (i.kind === 'unit') unitsChanged = true;
    }
    if (i.kind === 'unit' && i.link && (i.relink || i.conflict === i.link)) {
      fs.mkdirSync(path.dirname(i.link), { recursive: true });
      if (exists(i.link)) fs.unlinkSync(i.link);
      fs.symlinkSync(i.path, i.link);
      unitsChanged = true;
    }
  }
  // An instance file (zoopa-ondemand@web.socket) whose template stays installed
  // goes on existing through the template: keep it enabled.
  const kept = new Set(plan.items.filter((i) => i.kind === 'unit' && i.action !== 'remove').map((i) => i.name));
  const removedUnits = plan.items.filter((i) => i.action === 'remove' && i.kind === 'unit' && !(templateOf(i.name) && kept.has(templateOf(i.name)!)));
  if (removedUnits.length && manager) {
    // Drop enablement symlinks of units that go away; running ones keep running.
    const plain = removedUnits.filter((i) => i.link && !i.name.includes('@.')).map((i) => i.name);
    if (plain.length) await manager.disable(plain).catch(() => undefined);
    removeWantsLinks(plan.userUnitDir, removedUnits.map((i) => ({ name: i.name, path: i.path, link: i.link })));
  }
  for (const i of plan.items) {
    if (i.action !== 'remove') continue;
    const template = templateOf(i.name);
    if (template && kept.has(template)) repointWantsLinks(plan.userUnitDir, i, path.join(plan.userUnitDir, template));
    if (i.link) fs.rmSync(i.link, { force: true });
    fs.rmSync(i.path, { force: true });
    if (i.kind === 'unit') unitsChanged = true;
  }
  writeManifest(plan, env);
  if (unitsChanged && manager) await manager.daemonReload();
  return plan.changes;
}

function writeManifest(plan: InstallPlan, env: NodeJS.ProcessEnv): void {
  const m: Manifest = {
    unitsDir: plan.unitsDir,
    units: plan.items.filter((i) => i.kind === 'unit' && i.action !== 'remove').map((i) => i.name),
    files: plan.items.filter((i) => i.kind === 'file' && i.action !== 'remove').map((i) => i.path),
  };
  const p = manifestPath(env);
  const text = JSON.stringify(m, null, 2) + '\n';
  if (readText(p) !== text) writeFileAtomic(p, text);
}

export interface UninstallPlan {
  units: Array<{ name: string; path: string; link: string | undefined }>;
  files: string[];
}

/** What uninstall removes: exactly the generated units and files of the last install. */
export function planUninstall(project: Project, env: NodeJS.ProcessEnv = process.env): UninstallPlan {
  const manifest = readManifest(env);
  const unitsDir = manifest?.unitsDir ?? unitsDirFor(project);
  const linkDir = userUnitDir(env);
  const names = new Set<string>(manifest?.units ?? []);
  for (const f of safeReaddir(unitsDir)) if (/\.(service|socket|timer|target|path)$/.test(f)) names.add(f);
  const units: UninstallPlan['units'] = [];
  for (const name of [...names].sort()) {
    const p = path.join(unitsDir, name);
    const text = readText(p);
    if (text === undefined || !isGenerated(text)) continue;
    const link = path.join(linkDir, name);
    units.push({ name, path: p, link: readLink(link) === p ? link : undefined });
  }
  const files = (manifest?.files ?? []).filter((p) => {
    const t = readText(p);
    return t !== undefined && isGenerated(t);
  });
  return { units, files };
}

export async function applyUninstall(plan: UninstallPlan, manager: UnitManager, opts: { stop?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  const env = opts.env ?? process.env;
  if (opts.stop && plan.units.length) {
    // Our units, and the running instances of our templates (zoopa-ondemand@web.socket
    // exists only through zoopa-ondemand@.socket), in one list call.
    const patterns = plan.units.map((u) => u.name.replace('@.', '@*.'));
    const info = await manager.list(patterns);
    const running = [...info.values()].filter((u) => !u.name.includes('@.') && !['inactive', 'failed'].includes(u.activeState)).map((u) => u.name);
    // Sockets and timers first, so nothing re-activates a service we stop.
    const trigger = (n: string) => n.endsWith('.socket') || n.endsWith('.timer');
    for (const n of running.sort((a, b) => Number(trigger(b)) - Number(trigger(a)))) await manager.stop(n);
  }
  const linked = plan.units.filter((u) => u.link && !u.name.includes('@.')).map((u) => u.name);
  if (linked.length) {
    await manager.disable(linked).catch((e: unknown) => {
      throw new StateError('ZOOPA_UNINSTALL', `could not disable ${linked.join(' ')}`, { cause: e });
    });
  }
  removeWantsLinks(userUnitDir(env), plan.units);
  for (const u of plan.units) {
    if (u.link) fs.rmSync(u.link, { force: true });
    fs.rmSync(u.path, { force: true });
  }
  for (const f of plan.files) fs.rmSync(f, { force: true });
  fs.rmSync(manifestPath(env), { force: true });
  if (plan.units.length) await manager.daemonReload();
}

/**
 * Remove enablement links (`*.wants/`, `*.requires/`) that point at units going
 * away, including instances of templates (`sockets.target.wants/zoopa-ondemand@web.socket`),
 * which `systemctl disable` of the template cannot name.
 */
function removeWantsLinks(linkDir: string, units: ReadonlyArray<{ name: string; path: string; link: string | undefined }>): void {
  const targets = new Set<string>();
  for (const u of units) {
    targets.add(u.path);
    if (u.link) targets.add(u.link);
  }
  const templates = units.filter((u) => u.name.includes('@.')).map((u) => u.name);
  for (const d of safeReaddir(linkDir)) {
    if (!/\.(wants|requires)$/.test(d)) continue;
    const dir = path.join(linkDir, d);
    for (const f of safeReaddir(dir)) {
      const p = path.join(dir, f);
      const t = readLink(p);
      if (t === undefined) continue;
      const abs = path.resolve(dir, t);
      const base = path.basename(abs);
      if (targets.has(abs) || templates.includes(base) || units.some((u) => u.name === base)) fs.rmSync(p, { force: true });
    }
  }
}

/** Enablement links of an instance whose own file goes now point at its template, as `systemctl enable` makes them. */
function repointWantsLinks(linkDir: string, unit: { path: string; link?: string | undefined }, templateLink: string): void {
  for (const d of safeReaddir(linkDir)) {
    if (!/\.(wants|requires)$/.test(d)) continue;
    for (const f of safeReaddir(path.join(linkDir, d))) {
      const p = path.join(linkDir, d, f);
      const t = readLink(p);
      if (t === undefined) continue;
      const abs = path.resolve(path.dirname(p), t);
      if (abs === unit.path || abs === unit.link) {
        fs.rmSync(p, { force: true });
        fs.symlinkSync(templateLink, p);
      }
    }
  }
}

/** `zoopa-ondemand@.socket` for `zoopa-ondemand@web.socket`; undefined for a unit that is no instance. */
function templateOf(name: string): string | undefined {
  const m = /^([^@]+)@[^.@][^@]*(\.[a-z]+)$/.exec(name);
  return m ? `${m[1]}@${m[2]}` : undefined;
}
