/**
 * zoopa proxy <stack>: the on-demand proxy behind zoopa-ondemand@<stack>.socket
 * (replaces the original's `systemd-socket-proxyd --exit-idle-time`). Runs until
 * the stack is idle (exit 0) or SIGTERM/SIGINT (exit 0). Bad settings exit 2
 * before anything is started. Needs no stacks root: everything comes from the
 * environment (the unit's EnvironmentFile) and the flags.
 */
import type { Command } from 'commander';

interface ProxyOptions {
  upstream?: string;
  idle?: string;
  listen?: string;
  stackUnit?: string;
  ready?: string;
  startTimeout?: string;
}

export function register(program: Command): void {
  program
    .command('proxy <stack>')
    .description('run the on-demand proxy for a stack (started by zoopa-ondemand@<stack>.socket): wake the stack on the first connection, stop it when idle')
    .option('--upstream <target>', 'where to forward: host:port, [v6]:port or /abs/path.sock (env ZOOPA_UPSTREAM)')
    .option('--idle <duration>', 'stop after this long without traffic: 600, 10m, "infinity" (env ZOOPA_IDLE_TIMEOUT, default 10m)')
    .option('--listen <address>', 'listen on this unix socket path or HOST:PORT yourself instead of a socket from systemd')
    .option('--stack-unit <unit>', 'the unit to start and stop, or "none" for a plain proxy (env ZOOPA_STACK_UNIT, default <stack>-stack.service)')
    .option('--ready <check>', '"tcp" or "http:/path" (env ZOOPA_READY, default tcp)')
    .option('--start-timeout <duration>', 'give up waking after this long (env ZOOPA_START_TIMEOUT, default 120s)')
    .addHelpText(
      'after',
      `
Environment (from ~/.config/zoopa-ondemand/<stack>.env under systemd; flags win):
  ZOOPA_UPSTREAM, ZOOPA_IDLE_TIMEOUT, ZOOPA_STACK_UNIT, ZOOPA_READY, ZOOPA_START_TIMEOUT,
  ZOOPA_IDLE_MODE      traffic (default: no bytes for the timeout) | connections (after the last close)
  ZOOPA_STOP_CHECK     command run before an idle stop; a non-zero exit postpones it
  ZOOPA_UPSTREAM_<N>   upstream for the socket whose FileDescriptorName is N (upper-cased, "-" → "_")
State: $XDG_RUNTIME_DIR/ondemand/<stack>.state.json; "started by zoopa": $XDG_RUNTIME_DIR/ondemand/<stack>.owned`,
    )
    .action(async (stack: string, opts: ProxyOptions) => {
      // Loaded here so that other commands do not pay for the proxy's modules.
      const { runProxyCommand } = await import('../../proxy/run.js');
      process.exitCode = await runProxyCommand(stack, opts);
    });
}
