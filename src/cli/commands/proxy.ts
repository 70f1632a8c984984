/**
 * zoopa proxy <stack>: the on-demand proxy behind zoopa-ondemand@<stack>.socket
 * (replaces the original's `systemd-socket-proxyd --exit-idle-time`). Its
 * arguments and help live in src/proxy/main.ts, the command's one parser; this
 * lists it in `zoopa --help` and hands it the words after "proxy".
 */
import type { Command } from 'commander';
import { returnsStatus } from '../context.js';

export function register(program: Command): void {
  program
    .command('proxy')
    .description('run the on-demand proxy for a stack (started by zoopa-ondemand@<stack>.socket): wake the stack on the first connection, stop it when idle; "zoopa proxy --help" for options')
    .argument('[args...]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(
      returnsStatus(async (args: string[]) => {
        const { proxyMain } = await import('../../proxy/main.js');
        return proxyMain(args);
      }),
    );
}
