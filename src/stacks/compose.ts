/**
 * What Zoopa reads from a compose file: that it parses, its services, the
 * variables it interpolates, its published ports and bind mounts. It does not
 * interpret compose beyond that; podman-compose does.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, visit } from 'yaml';
import { StackError } from '../errors.js';

export interface ComposeInfo {
  file: string;
  services: string[];
  /** Variables interpolated anywhere in the file, with whether each has a default. */
  variables: Map<string, { hasDefault: boolean; line: number }>;
  /** Host-side published ports: { host, port, service }. */
  ports: Array<{ host: string; port: number; service: string }>;
  /** Host paths of bind mounts, absolute. */
  bindMounts: Array<{ source: string; service: string }>;
  /** The top-level `name:` (compose's project name when no -p is given), if any. */
  name?: string | undefined;
}

const VAR_RE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])[^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Variables in one string, skipping `$$` escapes. */
export function variablesIn(text: string): Array<{ name: string; hasDefault: boolean }> {
  const out: Array<{ name: string; hasDefault: boolean }> = [];
  const cleaned = text.replace(/\$\$/g, '\0\0');
  for (const m of cleaned.matchAll(VAR_RE)) {
    const name = m[1] ?? m[3]!;
    const op = m[2];
    out.push({ name, hasDefault: op === '-' || op === ':-' || op === '+' || op === ':+' });
  }
  return out;
}

/**
 * Compose interpolation of one string with `vars` (a stack's .env): `${VAR}`, `$VAR`,
 * `${VAR:-default}`, `${VAR-default}`, `$$` → `$`. An unset variable without a default is
 * left as written.
 */
export function interpolate(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, braced?: string, op?: string, def?: string, bare?: string) => {
    if (all === '$$') return '$';
    const name = (braced ?? bare)!;
    const v = vars.get(name);
    if (op === ':-') return v ? v : def!;
    if (op === '-') return v !== undefined ? v : def!;
    return v !== undefined ? v : all;
  });
}

/** `vars`: when given, ports and bind-mount sources are read with these variables interpolated. */
export function readCompose(file: string, vars?: ReadonlyMap<string, string>): ComposeInfo {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StackError(`cannot read ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0] ?? lc.linePos(err.pos[0]);
    throw new StackError(`compose file does not parse${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${err.message.split('\n')[0]}`, {
      file,
      hint: 'fix the YAML; "podman-compose config" in the stack folder shows what podman-compose makes of it',
    });
  }
  const data = doc.toJS() as unknown;
  const services = (data as { services?: unknown } | null)?.services;
  if (!data || typeof data !== 'object' || !services || typeof services !== 'object' || Array.isArray(services)) {
    throw new StackError('compose file has no "services:" mapping', { file, key: 'services', hint: 'a compose file lists its containers under services:' });
  }
  const variables = new Map<string, { hasDefault: boolean; line: number }>();
  visit(doc, {
    Scalar(_k, node) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const line = node.range ? lc.linePos(node.range[0]).line : 0;
      for (const v of variablesIn(node.value)) {
        const prev = variables.get(v.name);
        variables.set(v.name, { hasDefault: (prev?.hasDefault ?? true) && v.hasDefault, line: prev?.line ?? line });
      }
    },
  });
  const ports: ComposeInfo['ports'] = [];
  const bindMounts: ComposeInfo['bindMounts'] = [];
  const dir = path.dirname(file);
  for (const [name, svc] of Object.entries(services as Record<string, unknown>)) {
    const s = (svc ?? {}) as { ports?: unknown[]; volumes?: unknown[] };
    const sub = (v: unknown): unknown => (vars && typeof v === 'string' ? interpolate(v, vars) : v);
    for (const p of s.ports ?? []) {
      const parsed = parsePort(p && typeof p === 'object' ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, sub(v)])) : sub(p));
      if (parsed) ports.push({ ...parsed, service: name });
    }
    for (const v of s.volumes ?? []) {
      const src = typeof v === 'string' ? (sub(v) as string).split(':')[0] : (v as { type?: string; source?: string })?.type === 'bind' ? (sub((v as { source?: string }).source) as string | undefined) : undefined;
      if (src && (src.startsWith('.') || src.startsWith('/') || src.startsWith('~'))) {
        bindMounts.push({ source: path.resolve(dir, src), service: name });
      }
    }
  }
  const name = (data as { name?: unknown }).name;
  return { file, services: Object.keys(services), variables, ports, bindMounts, name: typeof name === 'string' ? name : undefined };
}

function parsePort(p: unknown): { host: string; port: number } | undefined {
  if (typeof p === 'number') return undefined; // container port only
  if (typeof p === 'string') {
    // [host:]hostPort:containerPort[/proto]
    const parts = p.split('/')[0]!.split(':');
    if (parts.length === 3) return { host: parts[0]!, port: Number(parts[1]) };
    if (parts.length === 2) return { host: '0.0.0.0', port: Number(parts[0]) };
    return undefined;
  }
  if (p && typeof p === 'object') {
    const o = p as { published?: number | string; host_ip?: string };
    if (o.published !== undefined) return { host: o.host_ip ?? '0.0.0.0', port: Number(o.published) };
  }
  return undefined;
}
