/**
 * "Zoopa started this stack": a marker file `%t/ondemand/<stack>.owned`, written
 * before the start job and removed after the idle stop. It outlives the proxy
 * process (systemd starts a fresh proxy per activation), so a restarted proxy
 * still stops a stack that an earlier one woke, and never one started by hand.
 *
 * Ownership follows the run, not the unit: the marker records the unit's
 * InvocationID once the start job ran, and a run is zoopa's only while the
 * unit's InvocationID is still that one (`ownsRun`). A start by hand, or one
 * that cancelled zoopa's idle stop, is a new invocation: the user's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ondemandRuntimeDir } from '../paths.js';
import { replaceRuntimeFile } from './runtime-file.js';

export interface OwnedMarker {
  stack: string;
  unit: string;
  /** ISO time of the start. */
  at: string;
  /** The proxy that started it. */
  pid: number;
  /** The unit's InvocationID of the run zoopa started; '' until known (or from an older zoopa). */
  invocation: string;
}

/** Is the unit's current run (InvocationID `current`) the one the marker records? */
export function ownsRun(marker: OwnedMarker | null, current: string): boolean {
  if (marker === null) return false;
  return marker.invocation === '' || current === '' || marker.invocation === current;
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
    return { stack, unit: String(m.unit ?? ''), at: String(m.at ?? ''), pid: Number(m.pid ?? 0), invocation: typeof m.invocation === 'string' ? m.invocation : '' };
  } catch {
    // A marker we cannot read still says "owned": stopping is what it is for.
    return { stack, unit: '', at: '', pid: 0, invocation: '' };
  }
}

export function writeOwnedMarker(stack: string, unit: string, env: NodeJS.ProcessEnv = process.env, invocation = ''): void {
  ensureOndemandDir(env);
  const marker: OwnedMarker = { stack, unit, at: new Date().toISOString(), pid: process.pid, invocation };
  replaceRuntimeFile(ownedMarkerPath(stack, env), JSON.stringify(marker) + '\n');
}

export function removeOwnedMarker(stack: string, env: NodeJS.ProcessEnv = process.env): void {
  fs.rmSync(ownedMarkerPath(stack, env), { force: true });
}
