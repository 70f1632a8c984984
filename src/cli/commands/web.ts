/**
 * zoopa web [--listen ADDR] [--idle-exit DURATION]
 *   the status page, /metrics and /api/status (read-only); started by zoopa-web.socket
 *   when zoopa.yaml has a `web:` section (zoopa install renders it), or by hand.
 * zoopa metrics [--textfile DIR]
 *   the same metrics once, on stdout or atomically into DIR/zoopa.prom for
 *   node_exporter's textfile collector.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { parseDuration, DURATION_HINT } from '../../config/duration.js';
import { UsageError } from '../../errors.js';
import { writeFileAtomic } from '../../fsutil.js';
import { createLogger } from '../../log.js';
import { listenOnFd, listenOnSpec, takeListenFds } from '../../proxy/listen-fds.js';
import { loadProject } from '../../stacks/discover.js';
import { collectReport, type StatusReport } from '../../status/collect.js';
import { DEFAULT_WEB_LISTEN, parseWebListen, WEB_LISTEN_HINT } from '../../web/config.js';
import { renderMetrics } from '../../web/metrics.js';
import { WebServer } from '../../web/server.js';
import { globalOptions } from '../context.js';
import { statusSources } from './status.js';

function collector(cmd: Command, env: NodeJS.ProcessEnv): () => Promise<StatusReport> {
  const root = globalOptions(cmd).root;
  return async () => {
    const project = loadProject({ root });
    return collectReport(project, project.stacks.filter((s) => s.config.enabled), statusSources(env));
  };
}

export function register(program: Command): void {
  program
    .command('web')
    .description('serve the status page, /metrics (Prometheus) and /api/status, read-only (started by zoopa-web.socket, or by hand)')
    .option('--listen <addr>', `host:port or an absolute unix socket path (default: the socket systemd passes, else web.listen of zoopa.yaml, else ${DEFAULT_WEB_LISTEN})`)
    .option('--idle-exit <duration>', 'exit after this long without a request (default 0: never; the socket unit passes web.idle_exit)', '0')
    .addHelpText('after', '\nPaths: / (status page), /metrics, /api/status. Configure in zoopa.yaml:\n  web:\n    listen: 127.0.0.1:9330\n    idle_exit: 60s\nthen "zoopa install" renders zoopa-web.socket and zoopa-web.service.\n')
    .action(async (opts: { listen?: string; idleExit: string }, cmd: Command) => {
      const env = process.env;
      const idle = parseDuration(opts.idleExit);
      if (idle === undefined) throw new UsageError(`--idle-exit ${JSON.stringify(opts.idleExit)} is not a duration`, { hint: DURATION_HINT });
      const fds = takeListenFds(env);
      const log = createLogger({ prefix: 'web: ' });
      const web = new WebServer({ collect: collector(cmd, env), log, idleExitSec: idle });
      let where: string;
      if (fds.length > 0 && !opts.listen) {
        await listenOnFd(web.server, fds[0]!);
        where = `the socket systemd passed (${fds[0]!.name})`;
      } else {
        let text = opts.listen;
        if (!text) {
          try {
            text = loadProject({ root: globalOptions(cmd).root }).config.web?.listen;
          } catch {
            /* no project: the default */
          }
        }
        text ??= DEFAULT_WEB_LISTEN;
        const spec = parseWebListen(text);
        if (typeof spec === 'string') throw new UsageError(`--listen ${JSON.stringify(text)}: ${spec}`, { hint: WEB_LISTEN_HINT });
        await listenOnSpec(web.server, spec.kind === 'unix' ? { kind: 'unix', path: spec.path } : { kind: 'tcp', host: spec.host, port: spec.port });
        where = spec.kind === 'unix' ? spec.path : `http://${spec.text}/`;
      }
      log.info(`serving the status page, /metrics and /api/status on ${where}`);
      const stop = () => web.close();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await web.closed();
    });

  program
    .command('metrics')
    .description('print the Prometheus metrics of /metrics once, or write them for node_exporter\'s textfile collector')
    .option('--textfile <dir>', 'write <dir>/zoopa.prom atomically instead of printing')
    .action(async (opts: { textfile?: string }, cmd: Command) => {
      const text = renderMetrics(await collector(cmd, process.env)());
      if (!opts.textfile) {
        process.stdout.write(text);
        return;
      }
      // node_exporter reads *.prom files; a temp file + rename means it never sees half a file.
      writeFileAtomic(path.join(path.resolve(opts.textfile), 'zoopa.prom'), text, { mode: 0o644 });
    });
}
