/**
 * bench/status: `zoopa status` over 30 installed stacks (2 of them running), in
 * the test bed's real systemd user manager with rootless podman.
 *
 * Prints wall time (median, min, max over the runs), how many `systemctl` and
 * `podman` processes one `zoopa status` spawned (counted by PATH shims that log
 * and exec the real programs), and, side by side in the same run, the peer: what
 * a script asking per stack does (one `systemctl --user show` and one
 * `podman ps --filter` per stack). Goal: at most 2 of each process, under 400 ms.
 *
 *   npm run bench:status            (RUNS=10 STACKS=30 to change the sizes)
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpStack } from '../test/fixtures/stacks.js';
import { freePort, Testbed } from '../test/testbed/index.js';

const STACKS = Number(process.env.STACKS ?? 30);
const RUNS = Number(process.env.RUNS ?? 10);
const RUNNING = 2;

function stats(ms: number[]): { median: number; min: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

async function main(): Promise<void> {
  const tb = await Testbed.start({ name: 'bench-status' });
  try {
    const names: string[] = [];
    for (let i = 0; i < STACKS; i++) {
      const name = `app${String(i).padStart(2, '0')}`;
      httpStack(tb.root, name, { port: await freePort() });
      names.push(name);
    }
    const inst = await tb.zoopa(['--root', tb.root, 'install']);
    if (inst.status !== 0) throw new Error(`install failed: ${inst.stderr}`);
    for (const n of names.slice(0, RUNNING)) {
      const r = await tb.zoopa(['--root', tb.root, 'up', n]);
      if (r.status !== 0) throw new Error(`up ${n} failed: ${r.stderr}`);
    }

    // Counting shims: log one line per process, then exec the real program.
    const shims = path.join(tb.dir, 'bench-shims');
    const counts = path.join(tb.dir, 'bench-counts');
    fs.mkdirSync(shims, { recursive: true });
    tb.chown(shims);
    for (const prog of ['systemctl', 'podman']) {
      const real = ['/usr/bin', '/bin'].map((d) => path.join(d, prog)).find((p) => fs.existsSync(p))!;
      tb.writeFile(path.join(shims, prog), `#!/bin/sh\necho ${prog} >> "${counts}"\nexec ${real} "$@"\n`, 0o755);
    }
    const env = { PATH: `${shims}:${tb.env.PATH}` };
    const countAndReset = (): Record<string, number> => {
      const lines = fs.existsSync(counts) ? fs.readFileSync(counts, 'utf8').split('\n').filter(Boolean) : [];
      fs.rmSync(counts, { force: true });
      return { systemctl: lines.filter((l) => l === 'systemctl').length, podman: lines.filter((l) => l === 'podman').length };
    };

    // Warm up both paths once (page cache, podman storage).
    await tb.zoopa(['--root', tb.root, 'status'], { env });
    countAndReset();

    const peerScript = `
      const { execFileSync } = require('node:child_process');
      const names = ${JSON.stringify(names)};
      const rows = names.map((n) => {
        const show = execFileSync('systemctl', ['--user', 'show', '--property=ActiveState', n + '-stack.service']).toString();
        const ps = execFileSync('podman', ['ps', '-q', '--filter', 'label=io.podman.compose.project=' + n]).toString();
        return [n, show.trim(), ps.split('\\n').filter(Boolean).length];
      });
      process.stdout.write(JSON.stringify(rows).length + '\\n');`;

    const zoopaMs: number[] = [];
    const peerMs: number[] = [];
    let perRun: Record<string, number> = {};
    let peerPerRun: Record<string, number> = {};
    for (let i = 0; i < RUNS; i++) {
      let t = process.hrtime.bigint();
      const r = await tb.zoopa(['--root', tb.root, 'status'], { env });
      zoopaMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
      perRun = countAndReset();

      t = process.hrtime.bigint();
      const p = await tb.run([process.execPath, '-e', peerScript], { env });
      peerMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (p.status !== 0) throw new Error(`peer failed: ${p.stderr}`);
      peerPerRun = countAndReset();
    }
    const z = stats(zoopaMs);
    const p = stats(peerMs);
    const f = (n: number) => `${n.toFixed(0)} ms`;
    console.log(`zoopa status over ${STACKS} installed stacks (${RUNNING} running), ${RUNS} runs each, side by side`);
    console.log('');
    console.log(`| path | median | min | max | systemctl | podman |`);
    console.log(`| --- | --- | --- | --- | --- | --- |`);
    console.log(`| zoopa status | ${f(z.median)} | ${f(z.min)} | ${f(z.max)} | ${perRun.systemctl} | ${perRun.podman} |`);
    console.log(`| per-stack script (peer) | ${f(p.median)} | ${f(p.min)} | ${f(p.max)} | ${peerPerRun.systemctl} | ${peerPerRun.podman} |`);
    console.log('');
    console.log(`ratio: zoopa status takes ${(z.median / p.median).toFixed(2)}x the peer's time (${(p.median / z.median).toFixed(1)}x faster)`);
    const ok = (perRun.systemctl ?? 9) <= 2 && (perRun.podman ?? 9) <= 2 && z.median < 400;
    console.log(`goal (<= 2 systemctl, <= 2 podman, < 400 ms): ${ok ? 'met' : 'NOT met'}`);
  } finally {
    await tb.stop();
  }
}

await main();
