/**
 * On-demand state of stacks for `zoopa status`, from files only (the proxy's
 * state file and the freeze record): no processes.
 * (First version by the lead: the interface is fixed; the ondemand engineer fills it in.)
 */
export interface OndemandStatus {
  state: 'sleeping' | 'waking' | 'awake' | 'stopping' | 'frozen' | 'off';
  connections: number;
  bytes: number;
  secondsUntilIdleStop: number | null;
  lastWake: { at: string; peer?: string } | null;
  /** Zoopa started the stack (and so may stop it at idle). */
  owned: boolean;
}

export function ondemandStatus(stacks: readonly string[], _env: NodeJS.ProcessEnv = process.env): Map<string, OndemandStatus> {
  return new Map(stacks.map((s) => [s, { state: 'off', connections: 0, bytes: 0, secondsUntilIdleStop: null, lastWake: null, owned: false }]));
}
