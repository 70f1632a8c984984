/**
 * zoopa's command line. Each command lives in src/cli/commands/<name>.ts and
 * exports register(program). Commands throw, or return their exit status
 * (context.ts returnsStatus); the edge (src/report.ts) prints errors and chooses
 * the exit status.
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { reportError } from '../report.js';
import { registerCommands } from './commands/index.js';
import { takeExitStatus } from './context.js';

/** The command word in argv (skipping global options and --root's value). */
export function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--root') {
      i++;
      continue;
    }
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export async function buildProgram(word?: string): Promise<Command> {
  const program = new Command('zoopa')
    .description('Run a folder of podman-compose stacks as systemd user services: units, on-demand wake and sleep, backups, llama.cpp services.')
    .option('--root <dir>', 'the stacks root (default: $ZOOPA_ROOT, the nearest folder upward with zoopa.yaml, else ~/podman-compose)')
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  await registerCommands(program, word);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = await buildProgram(commandWord(argv.slice(2)));
  try {
    await program.parseAsync(argv);
    // Every command returns its exit status (context.ts returnsStatus); none sets process.exitCode.
    return takeExitStatus() ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return reportError(new UsageError(e.message.replace(/^error: /, ''), { hint: 'run "zoopa --help" or "zoopa <command> --help"' }));
    }
    return reportError(e);
  }
}

const status = await main();
// Let pending output flush, then exit with the status.
process.exitCode = status;
