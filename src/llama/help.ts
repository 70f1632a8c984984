/**
 * What a llama-server binary accepts, read from its own `--help`, and the flags a
 * rendered command line uses. llama.cpp renames flags over time (--mmap/--no-mmap/--mlock
 * became --load-mode), so `zoopa doctor` compares the two for the configured binary.
 */

/**
 * Every flag name `llama-server --help` lists. Its option lines start at column 0 with
 * the names separated by commas, then the value placeholder and the description:
 *
 *   -t,    --threads N                      number of CPU threads ...
 *   -kvo,  --kv-offload, -nkvo, --no-kv-offload
 *   --spec-draft-type-k, -ctkd, --cache-type-k-draft TYPE
 *
 * Indented lines are descriptions (which may mention flags) and are skipped.
 */
export function parseHelpFlags(helpText: string): Set<string> {
  const flags = new Set<string>();
  for (const line of helpText.split('\n')) {
    if (!line.startsWith('-') || line.startsWith('---')) continue;
    for (const word of line.trim().split(/\s+/)) {
      if (!word.startsWith('-')) break;
      const name = word.replace(/,$/, '');
      if (/^--?[A-Za-z0-9]/.test(name)) flags.add(name);
      if (!word.endsWith(',')) break;
    }
  }
  return flags;
}

/**
 * The flags of a command line (binary first), as llama-server reads them: `--x_y` is
 * `--x-y`, `--x=v` is `--x`. Values are skipped by shape: words not starting with `-`,
 * and negative numbers.
 */
export function commandLineFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const word of argv.slice(1)) {
    if (!word.startsWith('-') || /^-\d/.test(word) || word === '-' || word === '--') continue;
    const name = word.split('=')[0]!;
    out.push(name.startsWith('--') ? name.replace(/_/g, '-') : name);
  }
  return out;
}

/** Flags of `argv` that `helpFlags` does not list, each once, in command line order. */
export function unknownFlags(argv: readonly string[], helpFlags: ReadonlySet<string>): string[] {
  return [...new Set(commandLineFlags(argv).filter((f) => !helpFlags.has(f)))];
}
