/**
 * "Zoopa started this stack": a marker file `%t/ondemand/<stack>.owned`, written
 * before the start job and removed after the idle stop. It outlives the proxy
 * process (systemd starts a fresh proxy per activation), so a restarted proxy
 * still stops a stack that an earlier one woke, and never one started by hand.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ondemandRuntimeDir } from '../paths.js';

export interface OwnedMarker {
  stack: string;
  unit: string;
  /** ISO time of the start. */
  at: string;
  /** The proxy that started it. */
  pid: number;
}

export function ownedMarkerPath(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(ondemandRuntimeDir(env), `${stack}.owned`);
}

/** %t/ondemand, created (mode 0711, like zoopa-ondemand-dir.service) when missing. */
export function ensureOndemandDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = ondemandRuntimeDir(env);
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  return dir;
}

export function readOwnedMarker(stack: string, env: NodeJS.ProcessEnv = process.env): OwnedMarker | null {
  let text: string;
  try {
    text = fs.readFileSync(ownedMarkerPath(stack, env), 'utf8');
  } catch {
    return null;
  }
  try {
    const m = JSON.parse(text) as Partial<OwnedMarker>;
    return { stack, unit: String(m.unit ?? ''), at: String(m.at ?? ''), pid: Number(m.pid ?? 0) };
  } catch {
    // A marker we cannot read still says "owned": stopping is what it is for.
    return { stack, unit: '', at: '', pid: 0 };
  }
}

export function writeOwnedMarker(stack: string, unit: string, env: NodeJS.ProcessEnv = process.env): void {
  ensureOndemandDir(env);
  const file = ownedMarkerPath(stack, env);
  const tmp = `${file}.${process.pid}.tmp`;
  const marker: OwnedMarker = { stack, unit, at: new Date().toISOString(), pid: process.pid };
  fs.writeFileSync(tmp, JSON.stringify(marker) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function removeOwnedMarker(stack: string, env: NodeJS.ProcessEnv = process.env): void {
  fs.rmSync(ownedMarkerPath(stack, env), { force: true });
}
