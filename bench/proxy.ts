/**
 * bench/proxy: zoopa proxy against systemd-socket-proxyd and no proxy at all,
 * side by side in one run, on loopback only.
 *
 *   wrk ─▶ front nginx ─┬─▶ upstream nginx                                   (direct)
 *                       ├─▶ unix socket ─▶ systemd-socket-proxyd ─▶ upstream (socket-proxyd)
 *                       └─▶ unix socket ─▶ zoopa proxy ─▶ upstream           (zoopa, zoopa-lean, zoopa-hold)
 *
 * The proxies are socket-activated the same way (systemd-socket-activate -l PATH,
 * from the systemd package), zoopa with --stack-unit none (plain proxy). Each
 * proxy runs twice: one instance takes the small requests, a fresh one the
 * downloads, so each phase's peak RSS (VmHWM) is its own.
 *
 * Small requests, wrk --latency (req/s, p50, p99), two ways:
 *  - keepalive: the front keeps connections to the path open (nginx
 *    `upstream { keepalive }`, HTTP/1.1), the usual production setup;
 *  - new conn: a new connection per request (plain `proxy_pass http://unix:...`,
 *    nginx's default), which makes the proxy accept and connect for every request.
 * Bulk: curl downloading a 100 MB file (GB/s). For the proxies also their own CPU
 * time per request and per GB (from /proc/<pid>/stat: steadier than rates on a
 * shared machine). Rounds rotate the order of the paths; medians are printed.
 * Then a cold start: a client connects before the app listens; measured is the
 * time from the app's first listen to the client's first byte.
 *
 *   npm run bench:proxy [-- --rounds 4 --duration 4 --bulk 3 --cold 5 --connections 50 --only small,bulk,cold]
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_NODE_FLAGS } from '../src/proxy/node-flags.js';
import { which } from '../src/unitfile/tools.js';
import { cpuMs, freePort, killAll, median, peakRssMb, runOut, sleep, start, waitConnectable, type Spawned } from './lib/procs.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ZOOPA = path.join(repo, 'bin', 'zoopa.js');
const SOCKET_PROXYD = '/usr/lib/systemd/systemd-socket-proxyd';
const SOCKET_ACTIVATE = 'systemd-socket-activate';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const ROUNDS = arg('rounds', 4);
const DURATION_S = arg('duration', 4);
const BULK_PER_ROUND = arg('bulk', 3);
const COLD_RUNS = arg('cold', 5);
const WRK_CONNECTIONS = arg('connections', 50);
/** --only small|bulk|cold (comma-separated): run just those parts. */
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return new Set(i < 0 ? ['small', 'bulk', 'cold'] : (process.argv[i + 1] ?? '').split(','));
})();

/**
 * zoopa runs twice, same code for every byte (bin/zoopa.js hands `proxy` to the
 * proxy's own entry, without the rest of the CLI):
 *  - zoopa-lean: `node --max-semi-space-size=1 bin/zoopa.js proxy`, exactly what
 *    zoopa-ondemand@.service runs (V8's young generation capped at 1 MB per
 *    semi-space: less memory under connection churn, a little more CPU);
 *  - zoopa: the same without the flag, for comparison;
 *  - zoopa-hold: zoopa with ZOOPA_WAIT=hold, against zoopa's default `auto`: the
 *    waiting page's peek and classification cost nothing on the data path.
 */
type PathName = 'direct' | 'socket-proxyd' | 'zoopa' | 'zoopa-lean' | 'zoopa-hold';
const PATHS: PathName[] = ['direct', 'socket-proxyd', 'zoopa', 'zoopa-lean', 'zoopa-hold'];
const PROXIES = ['socket-proxyd', 'zoopa', 'zoopa-lean', 'zoopa-hold'] as const;

interface Small {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60000;
}

function parseWrk(out: string): Small {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk output:\n${out}`);
  return { rps, p50, p99, errors };
}

function nginxConf(dir: string, name: string, body: string): string {
  const file = path.join(dir, `${name}.conf`);
  const tmp = path.join(dir, `${name}-tmp`);
  fs.mkdirSync(tmp, { recursive: true });
  fs.writeFileSync(
    file,
    `user root;
worker_processes 1;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  default_type application/octet-stream;
${body}
}
`,
  );
  return file;
}

async function main(): Promise<void> {
  for (const tool of ['nginx', 'wrk', 'curl', SOCKET_ACTIVATE]) {
    if (!which(tool)) throw new Error(`${tool} is not installed (apt-get install nginx wrk curl systemd)`);
  }
  if (!fs.existsSync(SOCKET_PROXYD)) throw new Error(`${SOCKET_PROXYD} is missing`);
  if (!fs.existsSync(path.join(repo, 'dist', 'src', 'proxy', 'main.js'))) throw new Error('run "npm run build" first');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-bench-proxy-'));
  fs.chmodSync(dir, 0o755);
  const procs: Spawned[] = [];
  try {
    // Upstream: a static nginx with a small file and a 100 MB file.
    const www = path.join(dir, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'small.txt'), 'x'.repeat(612) + '\n');
    const big = fs.openSync(path.join(www, 'big.bin'), 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 100; i++) {
      for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((i * 2654435761 + j) >>> 0, j);
      fs.writeSync(big, chunk);
    }
    fs.closeSync(big);
    const upPort = await freePort();
    const upConf = nginxConf(dir, 'upstream', `  sendfile on; tcp_nopush on;\n  server { listen 127.0.0.1:${upPort} backlog=4096; root ${www}; }`);
    procs.push(start(['nginx', '-c', upConf]));
    await waitConnectable({ port: upPort });

    // The proxies: a small-request instance and a download instance of each.
    const rt = path.join(dir, 'rt');
    fs.mkdirSync(rt, { mode: 0o700 });
    const zEnv = { ...process.env, XDG_RUNTIME_DIR: rt, ZOOPA_UPSTREAM: `127.0.0.1:${upPort}`, ZOOPA_STACK_UNIT: 'none' };
    const activate = (sock: string) => [SOCKET_ACTIVATE, '-l', sock, '-E', 'XDG_RUNTIME_DIR', '-E', 'ZOOPA_UPSTREAM', '-E', 'ZOOPA_STACK_UNIT'];
    const launch: Record<Exclude<PathName, 'direct'>, (sock: string, name: string) => string[]> = {
      'socket-proxyd': (sock) => [SOCKET_ACTIVATE, '-l', sock, SOCKET_PROXYD, `127.0.0.1:${upPort}`],
      zoopa: (sock, name) => [...activate(sock), process.execPath, ZOOPA, 'proxy', name],
      'zoopa-lean': (sock, name) => [...activate(sock), process.execPath, ...PROXY_NODE_FLAGS, ZOOPA, 'proxy', name],
      'zoopa-hold': (sock, name) => [...activate(sock), '-E', 'ZOOPA_WAIT=hold', process.execPath, ZOOPA, 'proxy', name],
    };
    const sockets: Record<PathName, { small: string; bulk: string } | null> = { direct: null, 'socket-proxyd': null, zoopa: null, 'zoopa-lean': null, 'zoopa-hold': null };
    const pids: Record<PathName, { small: number; bulk: number } | null> = { direct: null, 'socket-proxyd': null, zoopa: null, 'zoopa-lean': null, 'zoopa-hold': null };
    for (const p of PROXIES) {
      const small = path.join(dir, `${p}-small.sock`);
      const bulkSock = path.join(dir, `${p}-bulk.sock`);
      const a = start(launch[p](small, `${p.replace('zoopa-', '')}-small`), { env: zEnv });
      const b = start(launch[p](bulkSock, `${p.replace('zoopa-', '')}-bulk`), { env: zEnv });
      procs.push(a, b);
      sockets[p] = { small, bulk: bulkSock };
      pids[p] = { small: a.pid, bulk: b.pid };
    }
    for (const p of PROXIES) {
      await waitConnectable({ path: sockets[p]!.small });
      await waitConnectable({ path: sockets[p]!.bulk });
    }

    // Front: per path a keepalive server, a new-connection server and a download server.
    type Mode = 'keepalive' | 'new conn' | 'bulk';
    const ports = {} as Record<PathName, Record<Mode, number>>;
    const servers: string[] = [];
    for (const p of PATHS) {
      ports[p] = { keepalive: await freePort(), 'new conn': await freePort(), bulk: await freePort() };
      const target = (kind: 'small' | 'bulk') => (p === 'direct' ? `127.0.0.1:${upPort}` : `unix:${sockets[p]![kind]}`);
      const pool = `pool_${p.replace(/-/g, '_')}`;
      servers.push(
        `  upstream ${pool} { server ${target('small')}; keepalive 64; }`,
        `  server { listen 127.0.0.1:${ports[p].keepalive} backlog=4096; location / { proxy_pass http://${pool}; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        `  server { listen 127.0.0.1:${ports[p]['new conn']} backlog=4096; location / { proxy_pass http://${target('small')}:; } }`,
        `  server { listen 127.0.0.1:${ports[p].bulk} backlog=4096; location / { proxy_pass http://${target('bulk')}:; } }`,
      );
    }
    const frontConf = nginxConf(dir, 'front', `  proxy_max_temp_file_size 0;\n${servers.join('\n').replace(/http:\/\/127\.0\.0\.1:(\d+):;/g, 'http://127.0.0.1:$1;')}`);
    procs.push(start(['nginx', '-c', frontConf]));
    for (const p of PATHS) for (const mode of ['keepalive', 'new conn', 'bulk'] as const) await waitConnectable({ port: ports[p][mode] });

    // Sanity: every path serves the big file byte-identical.
    const want = (await runOut(['sh', '-c', `sha256sum < ${path.join(www, 'big.bin')}`])).split(' ')[0];
    for (const p of PATHS) {
      const got = (await runOut(['sh', '-c', `curl -sf http://127.0.0.1:${ports[p].bulk}/big.bin | sha256sum`])).split(' ')[0];
      if (got !== want) throw new Error(`${p}: big.bin differs through the path`);
    }

    const SMALL_MODES = ['keepalive', 'new conn'] as const;
    type SmallMode = (typeof SMALL_MODES)[number];
    const small = {} as Record<SmallMode, Record<PathName, Small[]>>;
    const cpuSmall = {} as Record<SmallMode, Record<PathName, number[]>>;
    for (const mode of SMALL_MODES) {
      small[mode] = Object.fromEntries(PATHS.map((p) => [p, [] as Small[]])) as Record<PathName, Small[]>;
      cpuSmall[mode] = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
    }
    const bulk = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
    const cpuBulk = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
    const cores = os.cpus().length;
    console.log(
      `bench/proxy: ${ROUNDS} rounds × (wrk -t2 -c${WRK_CONNECTIONS} -d${DURATION_S}s small.txt, keepalive and new conn; ${BULK_PER_ROUND} × 100 MB) per path; ${cores} cores; node ${process.version}; load ${os.loadavg()[0]!.toFixed(2)}`,
    );
    for (let round = 0; round < ROUNDS; round++) {
      const order = PATHS.map((_, i) => PATHS[(i + round) % PATHS.length]!);
      for (const mode of ONLY.has('small') ? SMALL_MODES : []) {
        for (const p of order) {
          const pid = pids[p]?.small ?? null;
          const c0 = pid === null ? null : cpuMs(pid);
          const out = await runOut(['wrk', '-t2', `-c${WRK_CONNECTIONS}`, `-d${DURATION_S}s`, '--latency', `http://127.0.0.1:${ports[p][mode]}/small.txt`]);
          const r = parseWrk(out);
          small[mode][p].push(r);
          const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
          if (pid !== null && c0 !== null && requests > 0) cpuSmall[mode][p].push(((cpuMs(pid)! - c0) * 1000) / requests);
          console.log(
            `  round ${round + 1} ${p.padEnd(13)} ${mode.padEnd(9)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${r.errors ? `  ERRORS ${r.errors}` : ''}`,
          );
          await sleep(300);
        }
      }
      for (const p of ONLY.has('bulk') ? order : []) {
        const pid = pids[p]?.bulk ?? null;
        for (let i = 0; i < BULK_PER_ROUND; i++) {
          const c0 = pid === null ? null : cpuMs(pid);
          const out = await runOut(['curl', '-sf', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `http://127.0.0.1:${ports[p].bulk}/big.bin`]);
          const [speed, size] = out.trim().split(' ').map(Number);
          if (size !== 100 * (1 << 20)) throw new Error(`${p}: downloaded ${size} bytes, not 100 MiB`);
          bulk[p].push(speed! / 1e9);
          if (pid !== null && c0 !== null) cpuBulk[p].push((cpuMs(pid)! - c0) / (size! / 1e9));
        }
        console.log(`  round ${round + 1} ${p.padEnd(13)} bulk      ${bulk[p].slice(-BULK_PER_ROUND).map((g) => g.toFixed(2)).join(' ')} GB/s`);
      }
    }
    const rss = (p: PathName, which: 'small' | 'bulk') => (pids[p] ? (peakRssMb(pids[p]![which]) ?? NaN) : NaN);

    const f = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '-');
    const smallMed = (mode: SmallMode, p: PathName) => ({
      rps: median(small[mode][p].map((x) => x.rps)),
      p50: median(small[mode][p].map((x) => x.p50)),
      p99: median(small[mode][p].map((x) => x.p99)),
      errors: small[mode][p].reduce((a, x) => a + x.errors, 0),
      cpu: median(cpuSmall[mode][p]),
    });
    console.log(`\nmedians over ${ROUNDS} rounds; proxy CPU is the proxy process's own user+system time`);
    console.log('| path | mode | small req/s | p50 ms | p99 ms | errors | proxy CPU µs/req |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const mode of SMALL_MODES) {
      for (const p of PATHS) {
        const x = smallMed(mode, p);
        console.log(`| ${p} | ${mode} | ${f(x.rps)} | ${f(x.p50, 2)} | ${f(x.p99, 2)} | ${x.errors} | ${p === 'direct' ? '-' : f(x.cpu)} |`);
      }
    }
    console.log('\n| path | 100 MB GB/s | proxy CPU ms/GB | peak RSS MB, small-request instance | peak RSS MB, download instance |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const p of PATHS) {
      console.log(`| ${p} | ${f(median(bulk[p]), 2)} | ${p === 'direct' ? '-' : f(median(cpuBulk[p]))} | ${p === 'direct' ? '-' : f(rss(p, 'small'), 1)} | ${p === 'direct' ? '-' : f(rss(p, 'bulk'), 1)} |`);
    }

    const goal = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log('\n| ratio | zoopa | zoopa-lean | goal |');
    console.log('| --- | ---: | ---: | --- |');
    const row = (name: string, fn: (p: PathName) => number, unit: string, ok: ((v: number) => boolean) | null, goalText: string) => {
      const cell = (p: PathName) => {
        const v = fn(p);
        return `${f(v, unit === '×' ? 2 : 1)}${unit}${ok ? ` ${goal(ok(v))}` : ''}`;
      };
      console.log(`| ${name} | ${cell('zoopa')} | ${cell('zoopa-lean')} | ${goalText} |`);
    };
    for (const mode of SMALL_MODES) {
      const d = smallMed(mode, 'direct');
      const s = smallMed(mode, 'socket-proxyd');
      row(`small (${mode}): req/s / direct`, (p) => smallMed(mode, p).rps / d.rps, '×', (v) => v >= 0.95, '≥ 0.95×');
      row(`small (${mode}): req/s / socket-proxyd`, (p) => smallMed(mode, p).rps / s.rps, '×', (v) => v >= 1.1, '≥ 1.10×');
      row(`small (${mode}): p99 / socket-proxyd`, (p) => smallMed(mode, p).p99 / s.p99, '×', (v) => v <= 1, '≤ 1.00×');
      row(`small (${mode}): CPU per request / socket-proxyd`, (p) => smallMed(mode, p).cpu / s.cpu, '×', null, 'lower is better');
    }
    row('bulk: GB/s / socket-proxyd', (p) => median(bulk[p]) / median(bulk['socket-proxyd']), '×', (v) => v >= 1, '≥ 1.00×');
    row('bulk: CPU per GB / socket-proxyd', (p) => median(cpuBulk[p]) / median(cpuBulk['socket-proxyd']), '×', null, 'lower is better');
    row('peak RSS, small-request instance', (p) => rss(p, 'small'), ' MB', (v) => v <= 50, `≤ 50 MB (socket-proxyd ${f(rss('socket-proxyd', 'small'), 1)})`);
    row('peak RSS, download instance', (p) => rss(p, 'bulk'), ' MB', (v) => v <= 50, `≤ 50 MB (socket-proxyd ${f(rss('socket-proxyd', 'bulk'), 1)})`);

    // The waiting page's classification runs only on held connections: zoopa (wait auto, the default) against zoopa-hold.
    for (const mode of SMALL_MODES) {
      const auto = smallMed(mode, 'zoopa');
      const hold = smallMed(mode, 'zoopa-hold');
      console.log(`wait auto / wait hold, small (${mode}): req/s ${f(auto.rps / hold.rps, 2)}×, CPU per request ${f(auto.cpu / hold.cpu, 2)}× (about 1.00×: the data path is the same)`);
    }

    if (ONLY.has('cold')) await coldStart(dir, rt);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
    killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A tiny app that listens after being started and prints the time it listened. */
const APP = `
const http = require('node:http');
const s = http.createServer((req, res) => res.end('hello from the app\\n'));
s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write(String(performance.timeOrigin + performance.now()) + '\\n'));
`;

/** Connect, send a request, resolve with the time of the first byte (or the error). */
function firstByte(sockPath: string): Promise<{ at: number } | { error: string }> {
  return new Promise((resolve) => {
    const c = net.connect({ path: sockPath });
    let done = false;
    const finish = (r: { at: number } | { error: string }) => {
      if (done) return;
      done = true;
      c.destroy();
      resolve(r);
    };
    c.on('connect', () => c.write('GET / HTTP/1.0\r\nHost: app\r\n\r\n'));
    c.on('data', () => finish({ at: performance.timeOrigin + performance.now() }));
    c.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.message }));
    c.on('close', () => finish({ error: 'closed without a byte' }));
    setTimeout(() => finish({ error: 'no byte within 30 s' }), 30_000).unref();
  });
}

async function coldStart(dir: string, rt: string): Promise<void> {
  const appPort = await freePort();
  const zSock = path.join(dir, 'cold-zoopa.sock');
  const spdSock = path.join(dir, 'cold-spd.sock');
  const env = { ...process.env, XDG_RUNTIME_DIR: rt, ZOOPA_UPSTREAM: `127.0.0.1:${appPort}`, ZOOPA_STACK_UNIT: 'none', ZOOPA_START_TIMEOUT: '30s' };
  const zoopa = start([SOCKET_ACTIVATE, '-l', zSock, '-E', 'XDG_RUNTIME_DIR', '-E', 'ZOOPA_UPSTREAM', '-E', 'ZOOPA_STACK_UNIT', '-E', 'ZOOPA_START_TIMEOUT', process.execPath, ZOOPA, 'proxy', 'cold'], { env });
  const spd = start([SOCKET_ACTIVATE, '-l', spdSock, SOCKET_PROXYD, `127.0.0.1:${appPort}`]);
  try {
    await waitConnectable({ path: zSock });
    await waitConnectable({ path: spdSock });
    const results: Record<'zoopa' | 'socket-proxyd', number[]> = { zoopa: [], 'socket-proxyd': [] };
    const failures: Record<'zoopa' | 'socket-proxyd', string[]> = { zoopa: [], 'socket-proxyd': [] };
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const which of ['zoopa', 'socket-proxyd'] as const) {
        const pending = firstByte(which === 'zoopa' ? zSock : spdSock);
        await sleep(300); // the client is waiting before the app exists
        const app = start([process.execPath, '-e', APP, String(appPort)]);
        const r = await pending;
        for (let t = 0; t < 100 && !app.output().trim(); t++) await sleep(20);
        const listenedAt = Number(app.output().trim().split('\n')[0]);
        await app.stop();
        if ('error' in r) failures[which].push(r.error);
        else results[which].push(r.at - listenedAt);
      }
    }
    console.log(`\ncold start (client waiting before the app listens; ${COLD_RUNS} runs): app's first listen → client's first byte`);
    for (const which of ['zoopa', 'socket-proxyd'] as const) {
      const ok = results[which];
      const text = ok.length ? `median ${median(ok).toFixed(1)} ms, max ${Math.max(...ok).toFixed(1)} ms` : 'no run succeeded';
      const fails = failures[which].length ? `; ${failures[which].length} failed (${[...new Set(failures[which])].join(', ')})` : '';
      console.log(`  ${which.padEnd(13)} ${ok.length}/${COLD_RUNS} served: ${text}${fails}`);
    }
  } finally {
    await zoopa.stop();
    await spd.stop();
  }
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

main().catch((e) => {
  killAll();
  console.error(`bench/proxy: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
