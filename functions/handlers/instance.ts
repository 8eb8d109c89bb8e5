/**
 * The function instance's runtime, created first (index.ts imports this module before any other), and its network
 * work — the secret fetch and, with the configuration's `smtp` server, the SMTP connection (`prewarm`) — started
 * right after init: `setImmediate` runs it as soon as the module graph has loaded, when the Lambda runtime yields
 * to fetch the first event, so it is on the wire before the handler runs and overlaps the first request's work.
 * Measured at the 256 MB share (docs/benchmarks.md): calling it inside init instead gave the same time to the
 * first response but put ~11 ms of CPU (the two TLS handshakes' set-up) into init, +25 ms of Init Duration.
 */
import { createRuntime, prewarm } from './runtime.ts';

export const instanceRuntime = createRuntime();
setImmediate(() => prewarm(instanceRuntime));
