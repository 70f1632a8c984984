/** Moved to src/report.ts (below both the CLI and the proxy); kept for src/proxy/main.ts until it imports that. */
export { describeError, reportError } from '../report.js';
