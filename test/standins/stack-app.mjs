#!/usr/bin/env node
// STAND-IN for a stack's app behind the on-demand proxy (test/integration/proxy.test.ts
// runs it as `<stack>-stack.service` instead of podman-compose, to control its timing).
// Like a real app it starts, listens after a while, and on SIGTERM stops listening at
// once and finishes stopping later. Every step is a line in LOG, which tests wait on.
//
//   node stack-app.mjs PORT DELAY_MS LOG [API_PORT]
//
//  - PORT: answers every HTTP request with "main <pid>\n" on 127.0.0.1:PORT;
//  - API_PORT (optional): the same with "api <pid>\n" (a second listener);
//  - DELAY_MS: milliseconds between "start <pid>" and listening ("listening main",
//    "listening api");
//  - SIGTERM: "stopping", close the listeners, then after $STOP_DELAY_MS milliseconds
//    (default 0) "stopped" and exit 0.
import fs from 'node:fs';
import http from 'node:http';

const [port, delayMs, log, port2] = process.argv.slice(2);
const say = (m) => fs.appendFileSync(log, m + '\n');
say('start ' + process.pid);
const servers = [];
const serve = (p, name) =>
  servers.push(http.createServer((q, r) => r.end(name + ' ' + process.pid + '\n')).listen(Number(p), '127.0.0.1', () => say('listening ' + name)));
setTimeout(() => {
  serve(port, 'main');
  if (port2) serve(port2, 'api');
}, Number(delayMs));
process.on('SIGTERM', () => {
  say('stopping');
  for (const s of servers) s.close();
  setTimeout(() => {
    say('stopped');
    process.exit(0);
  }, Number(process.env.STOP_DELAY_MS || 0));
});
