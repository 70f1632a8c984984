/**
 * zoopa sudoers [--user NAME] [--json]: the sudoers file for this setup, exactly
 * the commands Zoopa runs as root (src/sudoers/rule.ts), ready for
 * `sudo visudo -f /etc/sudoers.d/zoopa`.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { renderSudoers, rootCommands, sudoersLine } from '../../sudoers/rule.js';
import { output, projectFor, returnsStatus } from '../context.js';

export function register(program: Command): void {
  program
    .command('sudoers')
    .description('print the sudoers file granting exactly what zoopa runs as root (rootful stack, podman ps, Duplicati), for visudo -f /etc/sudoers.d/zoopa')
    .option('--user <name>', 'the user the rule is for (default: you)')
    .option('--json', 'print the commands as JSON')
    .addHelpText('after', '\nInstall it with:\n  zoopa sudoers > zoopa.sudoers\n  sudo visudo -c -f zoopa.sudoers && sudo install -m 0440 -o root -g root zoopa.sudoers /etc/sudoers.d/zoopa\nThen "zoopa doctor" probes every command of the rule with sudo -n -l.\n')
    .action(returnsStatus((opts: { user?: string; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const user = opts.user ?? (process.env.USER || process.env.LOGNAME || os.userInfo().username);
      const commands = rootCommands(project, process.env);
      const text = renderSudoers(user, commands, project.configFile ?? project.root);
      output(opts.json, { user, commands: commands.map((c) => ({ ...c, sudoers: sudoersLine(c) })) }, () => text);
      return 0;
    }));
}
