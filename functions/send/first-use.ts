/**
 * A module loaded by `import()` at its first use instead of at init (what only some requests need: the CAPTCHA
 * check, the OAuth token code, DKIM signing, the SQS records' code; the bundle puts each in a chunk of its own).
 * Concurrent first uses share one load. A failed load is not kept — the next use tries again (Node retries a
 * file it could not find) — and reaches the caller as `failure(error)`: the feature's own typed error, so an
 * adapter answers it with that feature's stable code instead of an internal error.
 */
export function atFirstUse<M>(load: () => Promise<M>, failure: (error: unknown) => Error): () => Promise<M> {
  let loaded: Promise<M> | undefined;
  return () => {
    loaded ??= load().catch((e: unknown) => {
      loaded = undefined;
      throw failure(e);
    });
    return loaded;
  };
}

/** The error's name for a log line or a detail (never its message: a path or a stack stays out of answers). */
export function loadFailureName(error: unknown): string {
  return String((error as { code?: unknown })?.code ?? (error as Error)?.name ?? 'error').slice(0, 60);
}
