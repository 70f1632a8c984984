/**
 * A real nginx in front of the test bed, running as the test user (so its workers
 * can enter the 0700 runtime folder, like the stack owner's nginx in the original
 * setup), with its own config, pid file, logs and temp folders inside the test bed.
 *
 *   const web = await tb.startNginx([{ path: '/', upstream: `unix:${sock}` }]);
 *   await fetch(web.url);            // http://127.0.0.1:<port>/
 *   await web.stop();
 *
 * Started in the foreground (`daemon off`) as a child of the test process; the
 * startup error log goes to the instance folder (`-e`). Upstream connections are
 * HTTP/1.0 and closed after each request (nginx's default, as in a plain
 * `proxy_pass`), unless a location asks for `keepalive`.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { canConnect, freePort, WaitAborted, waitFor } from './util.js';

export interface NginxLocation {
  /** Location prefix, e.g. '/' or '/app/'. */
  path: string;
  /** 'unix:/abs/path.sock' or 'HOST:PORT' (e.g. '127.0.0.1:8080'). */
  upstream: string;
  /** Keep up to this many idle upstream connections per worker (HTTP/1.1 to the upstream). */
  keepalive?: number;
  /** Extra directives for the location block, each without the trailing ';'. */
  directives?: string[];
}

export interface NginxOptions {
  /** Listen port on 127.0.0.1; a free one by default. */
  port?: number;
  /** worker_processes (default 1). */
  workers?: number;
}

export interface Nginx {
  port: number;
  /** http://127.0.0.1:<port> (no trailing slash). */
  url: string;
  /** The instance folder: nginx.conf, error.log, access.log, nginx.pid, tmp/. */
  dir: string;
  confFile: string;
  pid: number;
  errorLog(): string;
  accessLog(): string;
  /** Fast shutdown (SIGTERM), waits for the master to exit. Idempotent. */
  stop(): Promise<void>;
}

export type UserSpawner = (argv: readonly string[], opts: { cwd?: string; logFile?: string }) => ChildProcess;

const SAFE_PATH = /^\/[A-Za-z0-9_./-]*$/;
const UNIX_UPSTREAM = /^unix:(\/[A-Za-z0-9_./@-]+)$/;
const TCP_UPSTREAM = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;
const DIRECTIVE = /^[^;{}\n]+$/;

export function renderNginxConf(dir: string, port: number, locations: readonly NginxLocation[], workers = 1): string {
  if (locations.length === 0) throw new Error('startNginx: no locations');
  const upstreams: string[] = [];
  const locs: string[] = [];
  locations.forEach((loc, i) => {
    if (!SAFE_PATH.test(loc.path)) throw new Error(`startNginx: bad location path "${loc.path}"`);
    if (!UNIX_UPSTREAM.test(loc.upstream) && !TCP_UPSTREAM.test(loc.upstream)) {
      throw new Error(`startNginx: upstream must be "unix:/abs.sock" or "host:port", got "${loc.upstream}"`);
    }
    for (const d of loc.directives ?? []) if (!DIRECTIVE.test(d)) throw new Error(`startNginx: bad directive "${d}"`);
    const name = `zoopa_up${i}`;
    upstreams.push(
      `  upstream ${name} {\n    server ${loc.upstream};\n${loc.keepalive ? `    keepalive ${loc.keepalive};\n` : ''}  }`,
    );
    const body = [
      `proxy_pass http://${name}`,
      'proxy_set_header Host $host',
      'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for',
      ...(loc.keepalive ? ['proxy_http_version 1.1', 'proxy_set_header Connection ""'] : []),
      ...(loc.directives ?? []),
    ];
    locs.push(`    location ${loc.path} {\n${body.map((d) => `      ${d};`).join('\n')}\n    }`);
  });
  const tmp = path.join(dir, 'tmp');
  return `# Written by the Zoopa test bed.
daemon off;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;

events {
  worker_connections 1024;
}

http {
  access_log ${dir}/access.log;
  client_body_temp_path ${tmp}/client_body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  default_type application/octet-stream;

${upstreams.join('\n')}

  server {
    listen 127.0.0.1:${port};
    server_name localhost;
${locs.join('\n')}
  }
}
`;
}

/**
 * Writes the config into `dir` (which the test user owns) and starts nginx through
 * `spawnAsUser`; resolves once the port accepts connections.
 */
export async function startNginx(
  dir: string,
  spawnAsUser: UserSpawner,
  locations: readonly NginxLocation[],
  opts: NginxOptions = {},
): Promise<Nginx> {
  const port = opts.port ?? (await freePort());
  const confFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confFile, renderNginxConf(dir, port, locations, opts.workers ?? 1));
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const startupLog = path.join(dir, 'error.log');
  const child = spawnAsUser(['/usr/sbin/nginx', '-c', confFile, '-p', `${dir}/`, '-e', startupLog], {
    cwd: dir,
    logFile: path.join(dir, 'stdout.log'),
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      exited = { code: child.exitCode, signal: child.signalCode };
      resolve();
      return;
    }
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  const read = (f: string) => {
    try {
      return fs.readFileSync(path.join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new WaitAborted(`nginx exited (${exited.code ?? exited.signal}): ${read('error.log').trim()}`);
        return canConnect(port);
      },
      { timeoutMs: 20_000, intervalMs: 25, what: `nginx on 127.0.0.1:${port}` },
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  let stopping: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    confFile,
    pid: child.pid ?? 0,
    errorLog: () => read('error.log'),
    accessLog: () => read('access.log'),
    stop() {
      stopping ??= (async () => {
        if (exited) return;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}
