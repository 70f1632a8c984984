/**
 * Notifications of a stack's backup result (`backup.notify` in zoopa.yaml): each
 * target is `{ ntfy: URL }` (ntfy's plain POST: the message as the body, Title,
 * Priority and Tags headers) or `{ webhook: URL }` (a JSON POST: stack, result,
 * duration, downtime, snapshot, error), sent `on: [failure]` (default) or
 * `[failure, success]`. All targets are sent at once, each with its own short
 * timeout; a notification that fails is a warning, never a failed backup. The
 * URL's path (an ntfy topic, a webhook token) is its secret: warnings show only
 * its origin (src/backup/redact.ts).
 */
import type { NotifyTarget } from './config.js';
import { redactPingUrl, redactUrls } from './redact.js';

export interface NotifyEvent {
  stack: string;
  result: 'ok' | 'failed' | 'interrupted' | 'skipped';
  durationSec?: number | undefined;
  downtimeSec?: number | undefined;
  snapshot?: string | undefined;
  error?: string | undefined;
}

function wants(t: NotifyTarget, e: NotifyEvent): boolean {
  return t.on.includes(e.result === 'ok' ? 'success' : 'failure');
}

/** The HTTP request a target gets for an event. */
export function notifyRequest(t: NotifyTarget, e: NotifyEvent): { url: string; headers: Record<string, string>; body: string } {
  const ok = e.result === 'ok';
  if ('ntfy' in t) {
    const text = ok
      ? `backup of ${e.stack} done${e.durationSec !== undefined ? ` in ${Math.round(e.durationSec)}s` : ''}${e.snapshot ? ` (snapshot ${e.snapshot})` : ''}`
      : `backup of ${e.stack} ${e.result}: ${e.error ?? 'no detail'}`;
    return {
      url: t.ntfy,
      headers: { Title: `zoopa backup ${e.stack}: ${ok ? 'ok' : e.result}`, Priority: ok ? 'default' : 'high', Tags: ok ? 'white_check_mark' : 'warning', 'Content-Type': 'text/plain; charset=utf-8' },
      body: redactUrls(text).slice(0, 4000),
    };
  }
  const body = {
    stack: e.stack,
    result: e.result,
    duration: e.durationSec ?? null,
    downtime: e.downtimeSec ?? null,
    snapshot: e.snapshot ?? null,
    error: e.error === undefined ? null : redactUrls(e.error),
  };
  return { url: t.webhook, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

/** Send one event to every target that wants it. Returns the warnings (URLs redacted); never throws. */
export async function notify(targets: readonly NotifyTarget[], e: NotifyEvent): Promise<string[]> {
  const sends = targets.filter((t) => wants(t, e)).map(async (t) => {
    const req = notifyRequest(t, e);
    const shown = `${'ntfy' in t ? 'ntfy' : 'webhook'} ${redactPingUrl(req.url)}`;
    try {
      const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(t.timeout * 1000) });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? undefined : `notification to ${shown}: HTTP ${res.status}`;
    } catch (err) {
      const x = err as Error & { cause?: { message?: string } };
      const why = x.name === 'TimeoutError' ? `no answer within ${t.timeout}s` : (x.cause?.message ?? x.message);
      return `notification to ${shown}: ${redactUrls(why.split(req.url).join(redactPingUrl(req.url)))}`;
    }
  });
  return (await Promise.all(sends)).filter((w): w is string => w !== undefined);
}

/** Each stack's outcome of a run, as events (the snapshot id read from restic's summary). */
export async function notifyRun(
  targets: readonly NotifyTarget[],
  stacks: ReadonlyArray<{ stack: string; result: NotifyEvent['result']; durationSec?: number; downtimeSec?: number | undefined; error?: string | undefined; jobs?: Array<{ summary: string }> }>,
  warn: (line: string) => void,
): Promise<void> {
  if (!targets.length) return;
  for (const s of stacks) {
    const snapshot = s.jobs?.map((j) => /snapshot ([0-9a-f]{8,64})/.exec(j.summary)?.[1]).find(Boolean);
    for (const w of await notify(targets, { stack: s.stack, result: s.result, durationSec: s.durationSec, downtimeSec: s.downtimeSec, snapshot, error: s.error })) {
      warn(`${s.stack}: ${w} (the backup result stands)`);
    }
  }
}
