/**
 * healthchecks.io-style pings: `<url>/start` when a run begins, `<url>` when it
 * succeeded, `<url>/fail` when it failed, the summary as the body. A short
 * timeout; a ping that fails is a warning, never a failed backup. The URL's path
 * is its secret: warnings show only its origin.
 */
import { redactPingUrl, redactUrls } from './redact.js';

export type PingKind = 'start' | 'success' | 'fail';

export function pingTarget(url: string, kind: PingKind): string {
  const base = url.replace(/\/+$/, '');
  return kind === 'start' ? `${base}/start` : kind === 'fail' ? `${base}/fail` : base;
}

/** Returns an error message (the URL's secret path redacted), or undefined when the ping got a 2xx answer. */
export async function ping(url: string, kind: PingKind, body: string, timeoutSec: number): Promise<string | undefined> {
  const target = pingTarget(url, kind);
  const shown = redactPingUrl(url, kind === 'success' ? '' : `/${kind}`);
  try {
    const res = await fetch(target, { method: 'POST', body: body.slice(0, 10_000), signal: AbortSignal.timeout(timeoutSec * 1000) });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? undefined : `ping ${shown}: HTTP ${res.status}`;
  } catch (e) {
    const err = e as Error & { cause?: { message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutSec}s` : (err.cause?.message ?? err.message);
    return `ping ${shown}: ${redactUrls(why.split(target).join(shown).split(url).join(shown))}`;
  }
}
