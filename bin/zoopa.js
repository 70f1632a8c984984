#!/usr/bin/env node
// The installed entry point: the compiled CLI lives in dist/ (npm run build).
// `zoopa proxy ...` (what the on-demand units run, long-lived) goes straight to
// the proxy's own entry, so it does not load the rest of the CLI.
if (process.argv[2] === 'proxy') {
  const { proxyMain } = await import('../dist/src/proxy/main.js');
  process.exitCode = await proxyMain(process.argv.slice(3));
} else {
  await import('../dist/src/cli/main.js');
}
