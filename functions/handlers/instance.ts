/**
 * The function instance's runtime, created — and its network work started (`prewarm`) — before the rest of the
 * handler code is even evaluated: index.ts imports this module FIRST, so in the bundle the secret fetch and the SMTP
 * connection are on the wire while the route, form and use-case modules load (at Lambda's CPU share, loading code
 * is most of a cold start; waiting for the network overlaps it).
 */
import { createRuntime, prewarm } from './runtime.ts';

export const instanceRuntime = createRuntime();
prewarm(instanceRuntime);
