/**
 * CPU lists as users write them for `cpus:` ("0 1 6-11", "0,1,6-11"), parsed
 * strictly: junk, reversed ranges and CPUs named twice are errors, because a
 * typo here silently pins a model to the wrong cores.
 */

/** systemd's CPUAffinity= accepts CPU numbers below this (CPU_SET_MAX-ish; 8192 on Linux). */
export const MAX_CPU = 8191;

export class CpusSpecError extends Error {}

/** Sorted, distinct CPU numbers. Throws CpusSpecError with a message naming the bad part. */
export function parseCpus(text: string): number[] {
  const tokens = text.split(/[\s,]+/).filter(Boolean);
  if (tokens.length === 0) throw new CpusSpecError('no CPUs listed');
  const seen = new Set<number>();
  for (const tok of tokens) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(tok);
    if (!m) throw new CpusSpecError(`${JSON.stringify(tok)} is neither a CPU number nor a range like 6-11`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new CpusSpecError(`range ${tok} is reversed (write ${hi}-${lo})`);
    if (hi > MAX_CPU) throw new CpusSpecError(`CPU ${hi} is out of range (0-${MAX_CPU})`);
    for (let c = lo; c <= hi; c++) {
      if (seen.has(c)) throw new CpusSpecError(`CPU ${c} is listed twice (in ${tok})`);
      seen.add(c);
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * The canonical text of a CPU list, as CPUAffinity= takes it: runs of three or
 * more as ranges, others as single numbers ("0 1 6-11").
 */
export function formatCpus(cpus: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < cpus.length) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    if (j - i >= 2) out.push(`${cpus[i]}-${cpus[j]}`);
    else for (let k = i; k <= j; k++) out.push(String(cpus[k]));
    i = j + 1;
  }
  return out.join(' ');
}
