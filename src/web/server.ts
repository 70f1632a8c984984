/**
 * `zoopa web`: a small read-only HTTP server (node's own http) for the status page,
 * `/metrics` (Prometheus) and `/api/status` (the JSON of `zoopa status --json`).
 *
 *   GET /              the status page (HTML; refreshes itself through /fragment)
 *   GET /fragment      the page's <main>, for the refresh
 *   GET /api/status    StatusReport as JSON
 *   GET /metrics       Prometheus text format
 *   GET /assets/...    the page's CSS and script (assets/web/ of the package)
 *
 * Socket-activated by zoopa-web.socket (or `--listen`); with `idleExitSec` > 0 it
 * closes and resolves after that long without a request, and systemd starts it
 * again on the next one. Concurrent requests share one status collection, and a
 * collection is reused for a second, so a page polling every 2 s and a Prometheus
 * scrape cost at most one round of systemctl/podman calls per second.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { StatusReport } from '../status/collect.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import { renderMain, renderPage } from './page.js';

export interface WebServerOptions {
  /** Gathers the status (reloads zoopa.yaml each time, so edits show without a restart). */
  collect: () => Promise<StatusReport>;
  log: Logger;
  /** Exit after this many seconds without a request; 0: never. */
  idleExitSec: number;
  /** How often the page refreshes itself (seconds). */
  refreshSec?: number;
  /** Reuse a collected report for this long (ms). */
  cacheMs?: number;
  /** Folder of zoopa.css / zoopa.js (default: the package's assets/web). */
  assetsDir?: string;
}

/** <package>/assets/web (dist/src/web/server.js → ../../../assets/web). */
export function defaultAssetsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'assets', 'web');
}

const ASSETS: Record<string, string> = {
  'zoopa.css': 'text/css; charset=utf-8',
  'zoopa.js': 'text/javascript; charset=utf-8',
};

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

export class WebServer {
  readonly server: http.Server;
  private cached: { at: number; report: Promise<StatusReport> } | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private active = 0;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly assets: Map<string, Buffer>;

  constructor(private readonly opts: WebServerOptions) {
    const dir = opts.assetsDir ?? defaultAssetsDir();
    this.assets = new Map(Object.keys(ASSETS).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    this.done = new Promise((r) => (this.resolveDone = r));
    this.armIdle();
  }

  /** Resolves when the server closed (idle exit or close()). */
  closed(): Promise<void> {
    return this.done;
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.server.close(() => this.resolveDone());
    this.server.closeIdleConnections();
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.opts.idleExitSec <= 0 || this.active > 0) return;
    this.idleTimer = setTimeout(() => {
      this.opts.log.info(`no request for ${this.opts.idleExitSec} s: exiting (the socket stays; the next request starts zoopa web again)`);
      this.close();
    }, this.opts.idleExitSec * 1000);
  }

  private report(): Promise<StatusReport> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.opts.cacheMs ?? 1000)) return this.cached.report;
    const report = this.opts.collect();
    this.cached = { at: now, report };
    report.catch(() => {
      if (this.cached?.report === report) this.cached = undefined;
    });
    return report;
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...SECURITY_HEADERS, ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.active++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    res.on('close', () => {
      this.active--;
      this.armIdle();
    });
    this.route(req, res).catch((e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      this.opts.log.error(`${req.method} ${req.url}: ${msg}`);
      if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', `zoopa web: cannot collect the status: ${msg}\n`);
      else res.destroy();
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.send(res, 405, 'text/plain; charset=utf-8', 'zoopa web is read-only: GET or HEAD\n', { Allow: 'GET, HEAD' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://zoopa.invalid');
    const p = url.pathname;
    if (p === '/' || p === '/index.html') {
      this.send(res, 200, 'text/html; charset=utf-8', renderPage(await this.report(), { refreshSeconds: this.opts.refreshSec ?? 2 }));
    } else if (p === '/fragment') {
      this.send(res, 200, 'text/html; charset=utf-8', renderMain(await this.report()));
    } else if (p === '/api/status') {
      this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(await this.report(), null, 2) + '\n');
    } else if (p === '/metrics') {
      this.send(res, 200, METRICS_CONTENT_TYPE, renderMetrics(await this.report()));
    } else if (p.startsWith('/assets/') && ASSETS[p.slice(8)]) {
      const name = p.slice(8);
      this.send(res, 200, ASSETS[name]!, this.assets.get(name)!, { 'Cache-Control': 'max-age=300' });
    } else {
      this.send(res, 404, 'text/plain; charset=utf-8', `not found: ${p}\nsee / (status page), /metrics, /api/status\n`);
    }
  }
}
