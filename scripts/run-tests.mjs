#!/usr/bin/env node
/**
 * Runs the compiled tests with `node --test`: first dist/test/unit/**\/*.test.js,
 * then dist/test/integration/**\/*.test.js (one file at a time: they share the
 * machine's cores and drive real systemd/podman/nginx).
 *
 *   node scripts/run-tests.mjs                 # everything
 *   node scripts/run-tests.mjs unit            # unit tests only
 *   node scripts/run-tests.mjs integration     # integration tests only
 *   node scripts/run-tests.mjs testbed status  # files whose path (under dist/test/) contains "testbed" or "status"
 *   node scripts/run-tests.mjs integration --test-name-pattern=wake   # arguments starting with -- go to node
 *
 * Node 20 does not expand globs in `--test` arguments, so the files are listed here.
 * A compiled test whose source (test/**\/*.test.ts) was deleted is not run (tsc never
 * removes stale output). Output is node's spec reporter; a TAP copy is written to a
 * temp file only to print the closing totals (`# pass N`, `# fail N`, ...) over all runs.
 * Exits non-zero when a run fails or when no test file matched.
 * Build first (`npm run build`); `npm test` does both.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distTest = path.join(repo, 'dist', 'test');
const srcTest = path.join(repo, 'test');

const PHASES = [
  { name: 'unit', args: [] },
  // A deadline per test so a hung integration test fails CI instead of eating its time.
  { name: 'integration', args: ['--test-concurrency=1', '--test-timeout=900000'] },
];

const argv = process.argv.slice(2);
const nodeArgs = argv.filter((a) => a.startsWith('-'));
const words = argv.filter((a) => !a.startsWith('-'));
const phaseFilter = words.filter((w) => PHASES.some((p) => p.name === w));
const substrings = words.filter((w) => !PHASES.some((p) => p.name === w));

/** All *.test.js files under dir, as paths relative to dist/test, sorted. */
function listTests(dir) {
  const out = [];
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && e.name.endsWith('.test.js')) out.push(path.relative(distTest, full));
    }
  };
  walk(dir);
  return out.sort();
}

/** A compiled test is current when its TypeScript source still exists. */
function hasSource(rel) {
  if (!fs.existsSync(srcTest)) return true;
  const base = rel.replace(/\.js$/, '');
  return ['.ts', '.mts', '.tsx'].some((ext) => fs.existsSync(path.join(srcTest, base + ext)));
}

function runNode(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repo, stdio: 'inherit' });
    child.on('error', (e) => {
      console.error(`run-tests: could not start node: ${e.message}`);
      resolve(1);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** Totals from a TAP file: the `# name N` lines at its end. */
function readTotals(file) {
  const totals = {};
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return totals;
  }
  for (const m of text.matchAll(/^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) {
    totals[m[1]] = (totals[m[1]] ?? 0) + Number(m[2]);
  }
  return totals;
}

async function main() {
  if (!fs.existsSync(distTest)) {
    console.error(`run-tests: ${path.relative(process.cwd(), distTest) || distTest} does not exist; run "npm run build" first`);
    process.exit(1);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-run-tests-'));
  const sum = {};
  let failed = false;
  let ran = 0;
  try {
    for (const phase of PHASES) {
      if (phaseFilter.length > 0 && !phaseFilter.includes(phase.name)) continue;
      const all = listTests(path.join(distTest, phase.name));
      const stale = all.filter((f) => !hasSource(f));
      if (stale.length > 0) console.error(`run-tests: skipping stale compiled tests without a source: ${stale.join(', ')}`);
      const files = all
        .filter(hasSource)
        .filter((f) => substrings.length === 0 || substrings.some((s) => f.includes(s)));
      if (files.length === 0) continue;
      ran += files.length;
      console.log(`\n=== ${phase.name}: ${files.length} file(s)`);
      const tap = path.join(tmp, `${phase.name}.tap`);
      const status = await runNode([
        '--test',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        '--test-reporter=tap',
        `--test-reporter-destination=${tap}`,
        ...phase.args,
        ...nodeArgs,
        ...files.map((f) => path.join('dist', 'test', f)),
      ]);
      const totals = readTotals(tap);
      for (const [k, v] of Object.entries(totals)) sum[k] = (sum[k] ?? 0) + v;
      if (status !== 0) {
        failed = true;
        console.error(`run-tests: ${phase.name} tests failed (exit ${status})`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (ran === 0) {
    console.error(`run-tests: no test file matched ${words.length ? words.join(' ') : '(all)'} under dist/test`);
    process.exit(1);
  }
  console.log('');
  for (const k of ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo']) console.log(`# ${k} ${sum[k] ?? 0}`);
  if ((sum.fail ?? 0) > 0 || (sum.cancelled ?? 0) > 0) failed = true;
  process.exit(failed ? 1 : 0);
}

await main();
