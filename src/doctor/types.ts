/** What one doctor check found (a leaf: checks in every feature return it). */
export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  detail: string;
  fix?: string;
}
