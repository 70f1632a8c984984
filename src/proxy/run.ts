/**
 * The body of `zoopa proxy <stack>`, shared by the commander command
 * (src/cli/commands/proxy.ts) and the lean entry (src/proxy/main.ts). Checks
 * everything (InputError, nothing started), runs the proxy until it exits at
 * idle or on SIGTERM/SIGINT, and returns the exit status (0).
 */
import { resolveProxySettings, type ProxyFlags } from './config.js';
import { takeListenFds } from './listen-fds.js';
import { Proxy } from './proxy.js';
import { SystemctlUnits } from './units.js';

export async function runProxyCommand(stack: string, flags: ProxyFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const fds = takeListenFds(env, process.pid);
  const settings = resolveProxySettings(stack, env, flags);
  const proxy = await Proxy.start(settings, {
    env,
    units: settings.stackUnit === null ? null : new SystemctlUnits(env),
    listenFds: settings.listen ? [] : fds,
  });
  const onSignal = () => void proxy.close('signal');
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await proxy.done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  // Everything is closed; should a stray handle keep the loop alive, do not linger:
  // systemd only starts a new proxy once this one has exited.
  setTimeout(() => process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode)), 2000).unref();
  return 0;
}
