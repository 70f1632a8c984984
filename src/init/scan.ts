/**
 * What `zoopa init` finds in a stacks root: every folder holding a compose file
 * (also those whose names cannot be stack names, with the rename to suggest),
 * its other compose files, its published ports (variables from its .env
 * resolved) and its bind mounts. Discovery and compose reading are the ones
 * every command uses (src/stacks/); nothing here is written anywhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NAME_RE } from '../names.js';
import { interpolate, readCompose } from '../stacks/compose.js';
import { composeFileIn } from '../stacks/discover.js';
import { readEnvFile } from '../envfile.js';

/** Files podman-compose reads on its own besides the main file when no -f is given. */
export const AUTO_OVERRIDES = [
  'compose.override.yaml',
  'compose.override.yml',
  'docker-compose.override.yml',
  'docker-compose.override.yaml',
  'container-compose.override.yml',
  'container-compose.override.yaml',
];

export interface FoundStack {
  name: string;
  dir: string;
  /** The main compose file, relative to the folder. */
  composeFile: string;
  services: string[];
  /** Override files podman-compose merges by itself (relative). */
  autoOverrides: string[];
  /** Other compose-like YAML files in the folder (relative): candidates for `files:`. */
  otherComposeFiles: string[];
  /** Published host ports, variables resolved. */
  ports: Array<{ host: string; port: number; service: string }>;
  /** Bind mount sources relative to the stack folder (absolute when outside it). */
  bindMounts: string[];
  /** The compose file's own project name (`name:`), if any. */
  projectName: string | undefined;
}

export interface BadFolder {
  folder: string;
  suggested: string;
}

export interface Scan {
  root: string;
  stacks: FoundStack[];
  badNames: BadFolder[];
}

/** The stack name a folder could be renamed to. */
export function suggestName(folder: string, taken: ReadonlySet<string>): string {
  let base = folder
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .replace(/-+$/, '')
    .replace(/-{2,}/g, '-');
  if (!base) base = 'stack';
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  return name;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function scanRoot(root: string): Scan {
  const stacks: FoundStack[] = [];
  const bad: string[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => byName(a.name, b.name))) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const dir = path.join(root, e.name);
    const composeFile = composeFileIn(dir);
    if (!composeFile) continue;
    if (!NAME_RE.test(e.name)) {
      bad.push(e.name);
      continue;
    }
    stacks.push(scanStack(e.name, dir, composeFile));
  }
  const taken = new Set(stacks.map((s) => s.name));
  const badNames = bad.map((folder) => {
    const suggested = suggestName(folder, taken);
    taken.add(suggested);
    return { folder, suggested };
  });
  return { root, stacks, badNames };
}

function scanStack(name: string, dir: string, composeFile: string): FoundStack {
  const vars = readEnvFile(path.join(dir, '.env')) ?? new Map<string, string>();
  const info = readCompose(composeFile, vars);
  const main = path.basename(composeFile);
  const yamls = fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== main && fs.statSync(path.join(dir, f)).isFile())
    .sort(byName);
  const autoOverrides = yamls.filter((f) => AUTO_OVERRIDES.includes(f));
  const otherComposeFiles = yamls.filter((f) => !AUTO_OVERRIDES.includes(f) && /compose/.test(f));
  const ports = info.ports.filter((p) => Number.isInteger(p.port) && p.port > 0 && p.port < 65536);
  const bindMounts = [
    ...new Set(
      info.bindMounts.map((b) => {
        const rel = path.relative(dir, b.source);
        return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : rel === '' ? '.' : b.source;
      }),
    ),
  ];
  return { name, dir, composeFile: main, services: info.services, autoOverrides, otherComposeFiles, ports, bindMounts, projectName: info.name ? interpolate(info.name, vars) : undefined };
}

/** The upstream to suggest for a published port (0.0.0.0 and :: are reached on loopback). */
export function upstreamFor(p: { host: string; port: number }): string {
  const host = p.host === '' || p.host === '0.0.0.0' ? '127.0.0.1' : p.host === '::' ? '[::1]' : p.host.includes(':') ? `[${p.host}]` : p.host;
  return `${host}:${p.port}`;
}
