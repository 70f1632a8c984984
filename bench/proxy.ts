/**
 * bench/proxy: zoopa proxy against systemd-socket-proxyd and no proxy at all,
 * side by side in one run, on loopback only.
 *
 *   wrk ─▶ front nginx ─┬─▶ upstream nginx                                   (direct)
 *                       ├─▶ unix socket ─▶ systemd-socket-proxyd ─▶ upstream (socket-proxyd)
 *                       └─▶ unix socket ─▶ zoopa proxy ─▶ upstream           (zoopa)
 *
 * Both proxies are socket-activated the same way (systemd-socket-activate -l PATH,
 * from the systemd package), zoopa with --stack-unit none (plain proxy). The front
 * opens a new connection per request to each path, as the original setup's
 * `proxy_pass http://unix:...` does. Small requests: wrk --latency (req/s, p50,
 * p99); bulk: curl downloading a 100 MB file (GB/s); memory: the proxies' peak
 * RSS (VmHWM). Rounds alternate between paths so drift hits all of them alike;
 * medians are printed. Then a cold start: a client connects before the app
 * listens; measured is the time from the app's first listen to the client's first
 * byte.
 *
 *   npm run bench:proxy [-- --rounds 3 --duration 8 --bulk 5 --cold 5]
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killAll, median, peakRssMb, runOut, sleep, start, waitConnectable, type Spawned } from './lib/procs.js';

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

const ROUNDS = arg('rounds', 3);
const DURATION_S = arg('duration', 8);
const BULK_PER_ROUND = arg('bulk', 3);
const COLD_RUNS = arg('cold', 5);
const WRK_CONNECTIONS = arg('connections', 50);

/**
 * zoopa runs twice: through bin/zoopa.js (the whole CLI loaded, as the unit's
 * ExecStart does today) and through the lean entry dist/src/proxy/main.js (only
 * the proxy's modules). Same code path for every byte.
 */
type PathName = 'direct' | 'socket-proxyd' | 'zoopa' | 'zoopa-lean';
const PATHS: PathName[] = ['direct', 'socket-proxyd', 'zoopa', 'zoopa-lean'];
const ZOOPA_LEAN = path.join(repo, 'dist', 'src', 'proxy', 'main.js');

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
    await runOut(['sh', '-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is not installed (apt-get install nginx wrk curl systemd)`);
    });
  }
  if (!fs.existsSync(SOCKET_PROXYD)) throw new Error(`${SOCKET_PROXYD} is missing`);
  if (!fs.existsSync(path.join(repo, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run "npm run build" first');

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
    const upConf = nginxConf(
      dir,
      'upstream',
      `  sendfile on; tcp_nopush on;
  server { listen 127.0.0.1:${upPort} backlog=4096; root ${www}; }`,
    );
    procs.push(start(['nginx', '-c', upConf]));
    await waitConnectable({ port: upPort });

    // The two proxies, socket-activated the same way.
    const spdSock = path.join(dir, 'spd.sock');
    const zSock = path.join(dir, 'zoopa.sock');
    const zlSock = path.join(dir, 'zoopa-lean.sock');
    const rt = path.join(dir, 'rt');
    fs.mkdirSync(rt, { mode: 0o700 });
    const spd = start([SOCKET_ACTIVATE, '-l', spdSock, SOCKET_PROXYD, `127.0.0.1:${upPort}`]);
    procs.push(spd);
    const zEnv = { ...process.env, XDG_RUNTIME_DIR: rt, ZOOPA_UPSTREAM: `127.0.0.1:${upPort}`, ZOOPA_STACK_UNIT: 'none' };
    const activate = (sock: string) => [SOCKET_ACTIVATE, '-l', sock, '-E', 'XDG_RUNTIME_DIR', '-E', 'ZOOPA_UPSTREAM', '-E', 'ZOOPA_STACK_UNIT'];
    const zoopa = start([...activate(zSock), process.execPath, ZOOPA, 'proxy', 'bench'], { env: zEnv });
    procs.push(zoopa);
    const zoopaLean = start([...activate(zlSock), process.execPath, ZOOPA_LEAN, 'proxy', 'bench-lean'], { env: zEnv });
    procs.push(zoopaLean);
    await waitConnectable({ path: spdSock });
    await waitConnectable({ path: zSock });
    await waitConnectable({ path: zlSock });

    // Front: one server per path.
    const ports: Record<PathName, number> = { direct: await freePort(), 'socket-proxyd': await freePort(), zoopa: await freePort(), 'zoopa-lean': await freePort() };
    const frontConf = nginxConf(
      dir,
      'front',
      `  proxy_max_temp_file_size 0;
  server { listen 127.0.0.1:${ports.direct} backlog=4096; location / { proxy_pass http://127.0.0.1:${upPort}; } }
  server { listen 127.0.0.1:${ports['socket-proxyd']} backlog=4096; location / { proxy_pass http://unix:${spdSock}:; } }
  server { listen 127.0.0.1:${ports.zoopa} backlog=4096; location / { proxy_pass http://unix:${zSock}:; } }
  server { listen 127.0.0.1:${ports['zoopa-lean']} backlog=4096; location / { proxy_pass http://unix:${zlSock}:; } }`,
    );
    procs.push(start(['nginx', '-c', frontConf]));
    for (const p of PATHS) await waitConnectable({ port: ports[p] });

    // Sanity: every path serves both files, byte-identical.
    for (const p of PATHS) {
      const got = await runOut(['sh', '-c', `curl -sf http://127.0.0.1:${ports[p]}/big.bin | sha256sum`]);
      const want = await runOut(['sh', '-c', `sha256sum < ${path.join(www, 'big.bin')}`]);
      if (got.split(' ')[0] !== want.split(' ')[0]) throw new Error(`${p}: big.bin differs through the path`);
    }

    const small = Object.fromEntries(PATHS.map((p) => [p, [] as Small[]])) as Record<PathName, Small[]>;
    const bulk = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
    const cores = os.cpus().length;
    console.log(`bench/proxy: ${ROUNDS} rounds × (wrk -t2 -c${WRK_CONNECTIONS} -d${DURATION_S}s small.txt, ${BULK_PER_ROUND} × 100 MB) per path; ${cores} cores; node ${process.version}`);
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round.
      const order = PATHS.map((_, i) => PATHS[(i + round) % PATHS.length]!);
      for (const p of order) {
        const out = await runOut(['wrk', '-t2', `-c${WRK_CONNECTIONS}`, `-d${DURATION_S}s`, '--latency', `http://127.0.0.1:${ports[p]}/small.txt`]);
        const r = parseWrk(out);
        small[p].push(r);
        console.log(`  round ${round + 1} ${p.padEnd(13)} small ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${r.errors ? `  ERRORS ${r.errors}` : ''}`);
        await sleep(500);
      }
      for (const p of order) {
        for (let i = 0; i < BULK_PER_ROUND; i++) {
          const out = await runOut(['curl', '-sf', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `http://127.0.0.1:${ports[p]}/big.bin`]);
          const [speed, size] = out.trim().split(' ').map(Number);
          if (size !== 100 * (1 << 20)) throw new Error(`${p}: downloaded ${size} bytes, not 100 MiB`);
          bulk[p].push(speed! / 1e9);
        }
        console.log(`  round ${round + 1} ${p.padEnd(13)} bulk  ${bulk[p].slice(-BULK_PER_ROUND).map((g) => g.toFixed(2)).join(' ')} GB/s`);
      }
    }
    const rss: Record<PathName, number | null> = { direct: null, 'socket-proxyd': peakRssMb(spd.pid), zoopa: peakRssMb(zoopa.pid), 'zoopa-lean': peakRssMb(zoopaLean.pid) };

    const med = (p: PathName) => ({
      rps: median(small[p].map((s) => s.rps)),
      p50: median(small[p].map((s) => s.p50)),
      p99: median(small[p].map((s) => s.p99)),
      errors: small[p].reduce((a, s) => a + s.errors, 0),
      bulk: median(bulk[p]),
    });
    const m = Object.fromEntries(PATHS.map((p) => [p, med(p)])) as Record<PathName, ReturnType<typeof med>>;
    console.log('\n| path | small req/s | p50 ms | p99 ms | errors | 100 MB GB/s | peak RSS MB |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const p of PATHS) {
      const r = rss[p];
      console.log(`| ${p} | ${m[p].rps.toFixed(0)} | ${m[p].p50.toFixed(2)} | ${m[p].p99.toFixed(2)} | ${m[p].errors} | ${m[p].bulk.toFixed(2)} | ${r === null ? '-' : r.toFixed(1)} |`);
    }
    const s = m['socket-proxyd'];
    const d = m.direct;
    const goal = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log('\n| ratio | zoopa | zoopa-lean | goal |');
    console.log('| --- | ---: | ---: | --- |');
    const row = (name: string, f: (z: ReturnType<typeof med>, p: PathName) => number, unit: string, ok: (v: number) => boolean, goalText: string) => {
      const a = f(m.zoopa, 'zoopa');
      const b = f(m['zoopa-lean'], 'zoopa-lean');
      console.log(`| ${name} | ${a.toFixed(2)}${unit} ${goal(ok(a))} | ${b.toFixed(2)}${unit} ${goal(ok(b))} | ${goalText} |`);
    };
    row('small: / direct', (z) => z.rps / d.rps, '×', (v) => v >= 0.95, '≥ 0.95×');
    row('small: / socket-proxyd', (z) => z.rps / s.rps, '×', (v) => v >= 1.1, '≥ 1.10×');
    row('p99: / socket-proxyd', (z) => z.p99 / s.p99, '×', (v) => v <= 1, '≤ 1.00×');
    row('bulk: / socket-proxyd', (z) => z.bulk / s.bulk, '×', (v) => v >= 1, '≥ 1.00×');
    row('peak RSS MB', (_z, p) => rss[p] ?? Infinity, '', (v) => v <= 50, `≤ 50 (socket-proxyd ${rss['socket-proxyd']?.toFixed(1)})`);

    await coldStart(dir, rt);
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
