/**
 * The function instance: its runtime, and its network work — the secret fetch and, with the configuration's `smtp`
 * server, the SMTP session (`prewarm`) — started right after init: `setImmediate` runs it as soon as init is over,
 * when the Lambda runtime yields to fetch the first event, so it is on the wire before the handler runs and overlaps
 * the first request's work. Measured at the 256 MB share (docs/benchmarks.md): calling it inside init instead gave
 * the same time to the first response but put ~11 ms of CPU (the two TLS handshakes' set-up) into init, +25 ms of
 * Init Duration. (Only the TCP connect is inside init: `connect-ahead.ts`, the entry's first step.)
 */
import type { TcpOpening } from '../smtp/transport.ts';
import { createHandler, type LambdaHandler } from './create-handler.ts';
import { createRuntime, prewarm, type Runtime } from './runtime.ts';

export { createHandler };

/** The instance's runtime and handler; `opening`: the TCP connection the entry opened ahead, if any. */
export function startInstance(opening?: TcpOpening): { runtime: Runtime; handler: LambdaHandler } {
  const runtime = createRuntime();
  setImmediate(() => prewarm(runtime, opening));
  return { runtime, handler: createHandler({ runtime }) };
}
