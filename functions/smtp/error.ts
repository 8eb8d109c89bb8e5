/**
 * The one error type of the SMTP client. Every failure says where it happened (`phase`), what the server said
 * (`code`, `enhancedCode`, `serverText`), whether trying again later may help (`transient`) and what we know about
 * the message (`delivery`). `command` is always redacted (AUTH payloads never appear).
 */
import { formatReply } from './reply.ts';
import type { Delivery, Phase, Reply, TranscriptLine } from './types.ts';

/** Broad cause, for callers that want to branch without parsing messages. */
export type SmtpErrorKind =
  /** The server answered with a 4xx/5xx reply. */
  | 'reply'
  /** The server broke the protocol (malformed or oversized reply, bytes where none are allowed). */
  | 'protocol'
  /** TCP/TLS trouble: refused, reset, closed. */
  | 'network'
  /** A phase timeout or the overall deadline. */
  | 'timeout'
  /** The caller aborted through its AbortSignal. */
  | 'aborted'
  /** A security rule refused to go on (no STARTTLS, clear-text AUTH, certificate). */
  | 'security'
  /** Bad input from the caller (CR/LF in an argument, missing extension for the message). */
  | 'usage';

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** What `new SmtpError` takes: the error's own fields (see the class), all but `phase` and `kind` optional. */
export interface SmtpErrorInit
  extends Partial<
    Writable<
      Pick<
        SmtpError,
        | 'command'
        | 'code'
        | 'enhancedCode'
        | 'serverText'
        | 'transient'
        | 'delivery'
        | 'roundTrips'
        | 'transcript'
      >
    >
  > {
  phase: Phase;
  kind: SmtpErrorKind;
  cause?: unknown;
}

export class SmtpError extends Error {
  override readonly name = 'SmtpError';
  readonly phase: Phase;
  readonly kind: SmtpErrorKind;
  /** The command the error answers, redacted (`AUTH PLAIN ***`). */
  readonly command?: string;
  readonly code?: number;
  readonly enhancedCode?: string;
  readonly serverText?: string;
  readonly transient: boolean;
  readonly delivery: Delivery;
  /** Round trips of the operation up to the failure (set on every error `sendMail`/`verify`/`send` throw). */
  readonly roundTrips?: number;
  /**
   * The redacted transcript of the operation up to the failure (only with `transcript: true`). Not in `toJSON()`:
   * it names every address of the envelope; print it on purpose (CLI `--transcript`), never log it by default.
   */
  readonly transcript?: TranscriptLine[];

  constructor(message: string, init: SmtpErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.phase = init.phase;
    this.kind = init.kind;
    if (init.command !== undefined) this.command = init.command;
    if (init.code !== undefined) this.code = init.code;
    if (init.enhancedCode !== undefined) this.enhancedCode = init.enhancedCode;
    if (init.serverText !== undefined) this.serverText = init.serverText;
    // Default: a 4xx reply, or trouble on the way (network, timeout, abort) that a later try may not meet.
    this.transient =
      init.transient ??
      (init.code !== undefined
        ? init.code >= 400 && init.code < 500
        : init.kind === 'network' || init.kind === 'timeout' || init.kind === 'aborted');
    this.delivery = init.delivery ?? 'not-sent';
    if (init.roundTrips !== undefined) this.roundTrips = init.roundTrips;
    if (init.transcript !== undefined) this.transcript = init.transcript;
  }

  /** A copy with another delivery verdict (the verdict is only known by whoever tracks the message). */
  withDelivery(delivery: Delivery, phase: Phase = this.phase): SmtpError {
    return this.with({ phase, delivery });
  }

  /**
   * A copy with some fields changed (an error is never changed once made: several transactions may hold it).
   * The own fields carry everything; fields left undefined stay unset in the copy, as in the original.
   */
  with(changes: Partial<Pick<SmtpErrorInit, 'phase' | 'delivery' | 'roundTrips' | 'transcript'>>): SmtpError {
    const copy = new SmtpError(this.message, { ...this, ...changes, cause: this.cause });
    copy.stack = this.stack;
    return copy;
  }

  /**
   * Safe to log: no secrets are ever stored on the error (commands are redacted when built). The transcript is
   * left out (addresses); `roundTrips` is in.
   */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      phase: this.phase,
      kind: this.kind,
      command: this.command,
      code: this.code,
      enhancedCode: this.enhancedCode,
      serverText: this.serverText,
      transient: this.transient,
      delivery: this.delivery,
      roundTrips: this.roundTrips,
    };
  }
}

/** The caller aborted through its AbortSignal (its reason is kept as the cause). */
export function abortError(phase: Phase, signal?: AbortSignal): SmtpError {
  return new SmtpError('operation aborted by the caller', { phase, kind: 'aborted', cause: signal?.reason });
}

/** The error for a refusing reply: code, enhanced code and text from the server, the redacted command. */
export function replyError(
  message: string,
  phase: Phase,
  reply: Reply,
  command: string,
  transient?: boolean,
): SmtpError {
  const { code, enhancedCode, text: serverText } = reply;
  return new SmtpError(`${message}: ${formatReply(reply)}`, {
    phase,
    kind: 'reply',
    command,
    code,
    enhancedCode,
    serverText,
    ...(transient === undefined ? {} : { transient }),
  });
}

/** Anything thrown that is not an `SmtpError` (e.g. Node's RangeError for a bad port) becomes a `usage` error. */
export function asSmtpError(e: unknown, phase: Phase): SmtpError {
  if (e instanceof SmtpError) return e;
  return new SmtpError(e instanceof Error ? e.message : String(e), { phase, kind: 'usage', cause: e });
}
