/**
 * The edge (the CLI's main and the proxy's): the only place errors become text and exit
 * statuses. Below both, so neither reaches into the other.
 *  InputError → exit 2, one message naming file, key and value, plus a hint.
 *  Other ZoopaError → exit 1 (or its own exitStatus), message and hint.
 *  Anything else is a bug: exit 70 with the stack.
 */
import { CommandError, InputError, isZoopaError } from './errors.js';
import { createLogger } from './log.js';

export function describeError(e: unknown): { text: string; status: number } {
  if (e instanceof InputError) {
    const where = [e.file, e.key && !e.message.includes(e.key) ? e.key : undefined].filter(Boolean).join(': ');
    const lines = [`${where ? where + ': ' : ''}${e.message}`];
    if (e.hint) lines.push(`hint: ${e.hint}`);
    return { text: lines.join('\n'), status: 2 };
  }
  if (isZoopaError(e)) {
    const lines = [e.message];
    if (e instanceof CommandError && e.stderr && !e.message.includes(e.stderr)) lines.push(e.stderr.split('\n').slice(-5).join('\n'));
    if (e.hint) lines.push(`hint: ${e.hint}`);
    return { text: lines.join('\n'), status: e.exitStatus };
  }
  return { text: `internal error (please report): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, status: 70 };
}

export function reportError(e: unknown): number {
  const { text, status } = describeError(e);
  createLogger().error(text);
  return status;
}
