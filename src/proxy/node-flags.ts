/**
 * Node flags the proxy runs with (zoopa-ondemand@.service's ExecStart, and the
 * bench). V8's young generation capped at 1 MB per semi-space: measured with
 * bench/proxy, peak RSS under connection churn 62 MB instead of 91 MB, for about
 * 8% more CPU per small request. A long-lived process per stack on a home
 * server is worth that trade.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
