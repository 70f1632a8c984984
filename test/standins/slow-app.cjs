#!/usr/bin/env node
// Stand-in for a stack's app in the proxy's integration tests (a hand-written
// <stack>-stack.service runs it): an HTTP server that logs its start, starts
// listening after a delay (a slow app), answers "<name> <pid>", and on SIGTERM
// stops listening at once but finishes stopping later (like podman-compose down).
//
//   node slow-app.cjs PORT DELAY_MS LOG_FILE [PORT2]     env STOP_DELAY_MS
// LOG_FILE gets one line per event: "start PID", "listening main|api", "stopping", "stopped".
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const [port, delayMs, log, port2] = process.argv.slice(2);
const say = (m) => fs.appendFileSync(log, m + '\n');
say('start ' + process.pid);
const servers = [];
const serve = (p, name) =>
  servers.push(http.createServer((q, r) => r.end(name + ' ' + process.pid + '\n')).listen(Number(p), '127.0.0.1', () => say('listening ' + name)));
setTimeout(() => { serve(port, 'main'); if (port2) serve(port2, 'api'); }, Number(delayMs));
// Like a real app: stop listening at once, finish stopping later.
process.on('SIGTERM', () => { say('stopping'); for (const s of servers) s.close(); setTimeout(() => { say('stopped'); process.exit(0); }, Number(process.env.STOP_DELAY_MS || 0)); });
