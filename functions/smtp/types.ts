/**
 * Public types of the SMTP client (RFC 5321 and extensions). This file is the contract between
 * the protocol layer and everything above it; implementation lives beside it.
 */

/** How the connection is secured. `starttls` (default) REQUIRES the upgrade (RFC 3207). */
export type Security = 'starttls' | 'tls' | 'none';

/** SMTP phases, used in errors, transcripts and timings. */
export type Phase =
  | 'connect'
  | 'greeting'
  | 'ehlo'
  | 'starttls'
  | 'auth'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'rset'
  | 'quit';

/**
 * What we know about the message when an error happens:
 * - `not-sent`: the server has certainly not accepted it (safe to resend),
 * - `accepted`: the server accepted it (do not resend),
 * - `unknown`: the last byte was written but the final reply never came (do NOT resend blindly).
 */
export type Delivery = 'not-sent' | 'accepted' | 'unknown';

/** One parsed SMTP reply (RFC 5321 §4.2), with RFC 3463 enhanced status code when present. */
export interface Reply {
  code: number;
  /** e.g. "2.1.0" when ENHANCEDSTATUSCODES is in effect and the text starts with one. */
  enhancedCode?: string;
  /** Text of each line without the code/separator (enhanced code kept out of `text`, left in `lines`). */
  lines: string[];
  /** Lines joined with "\n", enhanced code stripped from the first line. */
  text: string;
}

export type AuthMechanism = 'PLAIN' | 'LOGIN' | 'XOAUTH2';

export type Credentials =
  | { username: string; password: string; mechanism?: 'PLAIN' | 'LOGIN' }
  | { username: string; accessToken: string; mechanism?: 'XOAUTH2' };

export interface PhaseTimeouts {
  /** TCP (+ implicit TLS) connect. Default 10 s. */
  connect?: number;
  /** Waiting for the 220 greeting. Default 10 s. */
  greeting?: number;
  /** Waiting for any other reply. Default 10 s. */
  reply?: number;
  /** Waiting for the reply to the final dot / BDAT LAST. Default 30 s. */
  data?: number;
}

export interface ConnectionOptions {
  host: string;
  /** Default: 587 for starttls/none, 465 for tls. */
  port?: number;
  /** Default: 'starttls'. */
  security?: Security;
  /** Permit `security: 'none'` to a non-loopback host. Never needed for 127.0.0.1/::1/localhost. */
  allowPlaintext?: boolean;
  /** Permit AUTH over clear text to a loopback host (tests, local relays). Default false. */
  allowPlaintextAuth?: boolean;
  /** Extra trusted CA certificates (PEM), added to — never replacing verification. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** TLS server name for SNI and certificate check. Default: host (when it is a name, not an IP). */
  servername?: string;
  /**
   * Our EHLO name: a domain or an address literal, usually the sender's domain. Default "localhost", for a
   * loopback server only: to any other server it must be given, and "localhost" is refused.
   */
  clientName?: string;
  auth?: Credentials;
  timeouts?: PhaseTimeouts;
  /** Keep a redacted, timestamped transcript (AUTH payloads hidden). */
  transcript?: boolean;
  /** Turn extensions off even when advertised (benchmarks, interop). Default true. */
  pipelining?: boolean;
  chunking?: boolean;
}

/** Absolute deadline and/or abort signal for one operation (connect + send + quit). */
export interface Deadline {
  /** Epoch milliseconds after which everything is abandoned. */
  deadline?: number;
  signal?: AbortSignal;
}

export interface Envelope {
  /** Reverse path (MAIL FROM). Empty string means the null sender `<>`. */
  from: string;
  /** Forward paths (RCPT TO), at least one. */
  to: string[];
}

/** What the composer knows about the bytes; lets the client pick BODY=/SMTPUTF8/SIZE. */
export interface MessageInfo {
  /** Any octet > 127 in the content. Requires 8BITMIME (BODY=8BITMIME) or BDAT with BINARYMIME. */
  eightBit?: boolean;
  /** Non-ASCII in an address or raw UTF-8 headers: requires SMTPUTF8. */
  smtpUtf8?: boolean;
}

export interface OutgoingMessage {
  envelope: Envelope;
  /** The RFC 5322 message. Line endings are normalised to CRLF by the client. */
  content: Uint8Array;
  info?: MessageInfo;
  /**
   * The same message for a server without SMTPUTF8, sent instead of `content` when this one needs SMTPUTF8
   * (`info.smtpUtf8`) and the server does not offer it. Chosen after EHLO, in the same session (no extra round
   * trip); the result then says `withoutSmtpUtf8: true`. The envelope is shared and must not need SMTPUTF8.
   */
  withoutSmtpUtf8?: { content: Uint8Array; info?: MessageInfo };
  /**
   * Called and awaited just before the write that holds the message's last byte (the final `.` or BDAT LAST;
   * with PIPELINING and CHUNKING that write also holds MAIL and RCPT). It is the point of no return: a caller
   * records there, durably, that the message may arrive (the idempotency marker). If it rejects, nothing of
   * that write leaves us: the message is `not-sent` and the connection is closed (after a 354 there is no
   * way back but to drop it). Called again if the client reconnects and tries the message once more.
   */
  beforeDataEnd?: () => Promise<void>;
}

export interface RecipientResult {
  address: string;
  code: number;
  enhancedCode?: string;
  message: string;
}

export interface TransactionResult {
  /** Recipients the server accepted (2xx to RCPT). */
  accepted: RecipientResult[];
  /** Recipients the server refused (4xx/5xx to RCPT); the message went to the others. */
  rejected: RecipientResult[];
  /** Final reply to the end of data (often carries the queue id). */
  response: Reply;
  /** Best-effort queue id parsed from `response` ("queued as X", "id=X", "Ok: queued as X"). */
  queueId?: string;
  /** The server lacked SMTPUTF8: the message's `withoutSmtpUtf8` form was sent. */
  withoutSmtpUtf8?: true;
}

/** Outcome of one message in a batch: the transaction result, or the error that ended it. */
export type BatchItemResult =
  | ({ ok: true } & TransactionResult)
  | { ok: false; error: import('./error.ts').SmtpError };

export interface TranscriptLine {
  /** Milliseconds since the session started. */
  t: number;
  dir: 'C' | 'S' | 'I';
  line: string;
}

export interface TlsInfo {
  protocol: string | null;
  cipher: string;
  /** Certificate subject CN / issuer CN as strings for display. */
  subject?: string;
  issuer?: string;
  validTo?: string;
}

export interface Capabilities {
  /** Raw EHLO keyword → params (upper-cased keyword). */
  keywords: Map<string, string[]>;
  pipelining: boolean;
  chunking: boolean;
  binaryMime: boolean;
  startTls: boolean;
  smtpUtf8: boolean;
  eightBitMime: boolean;
  enhancedStatusCodes: boolean;
  /** SIZE limit in octets (0 = no limit announced), undefined when SIZE not advertised. */
  size?: number;
  /** AUTH mechanisms, upper-case. */
  auth: string[];
}

export interface SessionStats {
  /** Times the client wrote and then had to wait for the server (incl. TCP/TLS handshakes). */
  roundTrips: number;
  /** Milliseconds per phase (connect, greeting, ehlo, starttls, auth, mail…). */
  timings: Partial<Record<Phase | 'tls', number>>;
}
