/** Exit codes of `smtp-send` (documented in `--help` and docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** Internal error (a bug): should never happen. */
  internal: 1,
  /** Bad command line, unreadable file, invalid address or message input. */
  usage: 2,
  /** Permanent failure: 5xx, certificate or security refusal; retrying the same thing will fail again. */
  permanent: 3,
  /** Transient failure: 4xx, connection refused/reset, timeout; retrying later may work. */
  transient: 4,
  /** Interrupted (Ctrl-C at the prompt or during the session): 128 + SIGINT, as shells do. */
  interrupted: 130,
} as const;

/** A problem with what the user typed; printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
