/**
 * `zoopa proxy`'s arguments and help: the one parser of the command.
 * bin/zoopa.js hands `zoopa proxy ...` (what the units' ExecStart runs) straight
 * here, so the long-running proxy does not load commander and the rest of the
 * CLI; `zoopa --root X proxy ...` reaches it through src/cli/commands/proxy.ts.
 * Errors go through src/report.ts like every command's.
 */
import { parseArgs } from 'node:util';
import { reportError } from '../report.js';
import { UsageError } from '../errors.js';
import { runProxyCommand } from './run.js';

const USAGE = `Usage: zoopa proxy [options] <stack>

run the on-demand proxy for a stack (started by zoopa-ondemand@<stack>.socket)

Options:
  --upstream <target>         host:port, [v6]:port or /abs/path.sock (env ZOOPA_UPSTREAM)
  --idle <duration>           stop after this long without traffic (env ZOOPA_IDLE_TIMEOUT, default 10m)
  --listen <address>          listen on this unix socket path or HOST:PORT yourself
  --stack-unit <unit>         the unit to start and stop, or "none" (env ZOOPA_STACK_UNIT)
  --ready <check>             "tcp" or "http:/path" (env ZOOPA_READY, default tcp)
  --start-timeout <duration>  give up waking after this long (env ZOOPA_START_TIMEOUT, default 120s)
  -h, --help                  display help for command

Environment (from ~/.config/zoopa-ondemand/<stack>.env under systemd; flags win):
  ZOOPA_UPSTREAM, ZOOPA_IDLE_TIMEOUT, ZOOPA_STACK_UNIT, ZOOPA_READY, ZOOPA_START_TIMEOUT,
  ZOOPA_IDLE_MODE      traffic (default: no bytes for the timeout) | connections (after the last close)
  ZOOPA_STOP_CHECK     command run before an idle stop; a non-zero exit postpones it
  ZOOPA_MAX_HELD       connections held at most while the stack wakes (default 1024); more are closed
  ZOOPA_CONN_IDLE_TIMEOUT  close a connection with no byte either way for this long (default: never)
  ZOOPA_WAIT           auto (default: a browser's page load gets the waiting page) | hold | page
  ZOOPA_PAGE_AFTER     in auto, a page load still waiting this long gets the waiting page (default 1s)
  ZOOPA_PAGE_TEMPLATE  your own waiting page: an HTML file (absolute path)
  ZOOPA_MAINTENANCE_TEMPLATE  your own maintenance page (shown while frozen)
  ZOOPA_UPSTREAM_<N>   upstream for the socket whose FileDescriptorName is N (upper-cased, "-" → "_")
State: $XDG_RUNTIME_DIR/ondemand/<stack>.state.json; "started by zoopa": $XDG_RUNTIME_DIR/ondemand/<stack>.owned
While $XDG_RUNTIME_DIR/ondemand/<stack>.frozen.json exists (zoopa freeze, a backup), the proxy wakes
nothing: HTTP requests get a 503 maintenance page, other connections are closed.
`;

export async function proxyMain(argv: string[]): Promise<number> {
  const args = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        upstream: { type: 'string' },
        idle: { type: 'string' },
        listen: { type: 'string' },
        'stack-unit': { type: 'string' },
        ready: { type: 'string' },
        'start-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return reportError(new UsageError((e as Error).message, { hint: 'run "zoopa proxy --help"', cause: e }));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    return reportError(
      new UsageError(positionals.length === 0 ? "missing required argument 'stack'" : `too many arguments: ${positionals.join(' ')}`, { hint: 'run "zoopa proxy --help"' }),
    );
  }
  try {
    return await runProxyCommand(positionals[0]!, {
      upstream: values.upstream,
      idle: values.idle,
      listen: values.listen,
      stackUnit: values['stack-unit'],
      ready: values.ready,
      startTimeout: values['start-timeout'],
    });
  } catch (e) {
    return reportError(e);
  }
}

