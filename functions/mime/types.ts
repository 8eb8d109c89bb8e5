/** Public types of the message composer (RFC 5322, MIME RFC 2045–2049, RFC 2047, RFC 2231, RFC 6532). */

/** One RFC 5322 mailbox. `address` is the addr-spec (`local@domain`); `name` the display name, unencoded. */
export interface Mailbox {
  address: string;
  name?: string;
}

/** A mailbox as given: `"Name <a@b>"`, `"a@b"`, or an object. */
export type AddressInput = string | Mailbox;

export interface AttachmentInput {
  /** Shown to the recipient; any Unicode (RFC 2231 `filename*` plus an ASCII `filename` fallback). */
  filename: string;
  /** `type/subtype` with optional parameters. Default: guessed from the filename extension. */
  contentType?: string;
  /** Exact bytes; always sent base64 so they arrive unchanged. */
  content: Uint8Array;
  /** Makes the part an inline image of the HTML body (`cid:` URL) → multipart/related. */
  contentId?: string;
  /** Default: `inline` with a contentId, else `attachment`. */
  disposition?: 'attachment' | 'inline';
}

export interface MessageInput {
  from: AddressInput;
  replyTo?: AddressInput | AddressInput[];
  to?: AddressInput | AddressInput[];
  cc?: AddressInput | AddressInput[];
  /** Envelope only: never written to a header. */
  bcc?: AddressInput | AddressInput[];
  subject: string;
  /** The text part. With `html` but no `text`, one is generated from the HTML (no HTML-only mail). */
  text?: string;
  /** The HTML part; a fragment (no `<html>` element) is sent as `<html><body>…</body></html>`. */
  html?: string;
  attachments?: AttachmentInput[];
  /**
   * Extra header fields from an allowlist (List-*, In-Reply-To, References, Keywords, Comments,
   * Auto-Submitted, Precedence, X-*, …). Structural fields (Content-*, From, Bcc, …) are refused.
   */
  headers?: Record<string, string>;
  /** Right-hand side of the Message-ID. Default: the From domain. */
  messageIdDomain?: string;
  /** Origination date. Default: `opts.now()`. */
  date?: Date;
}

export interface ComposeOptions {
  /**
   * The server offers 8BITMIME: text parts may be sent `8bit` (raw UTF-8, lines ≤ 998 octets)
   * instead of quoted-printable/base64.
   */
  eightBitMime?: boolean;
  /**
   * `true`: the server offers SMTPUTF8, UTF-8 headers are written raw (RFC 6532).
   * `false`: it does not; anything that cannot be sent without SMTPUTF8 (a non-ASCII local part) is refused.
   * `undefined` (unknown): headers are encoded (RFC 2047); a non-ASCII local part is allowed and
   * reported through `ComposedMessage.smtpUtf8`, the client refuses it if the server lacks SMTPUTF8.
   */
  smtpUtf8?: boolean;
  /** Source of random bytes for boundaries and the Message-ID. Default: `crypto.randomBytes`. */
  random?: (n: number) => Uint8Array;
  /** Clock for the Date header. Default: `new Date()`. */
  now?: () => Date;
}

export interface ComposedMessage {
  /** The RFC 5322 message: CRLF line endings, no line over 998 octets. */
  bytes: Uint8Array;
  /** `<…@domain>` as written in the Message-ID header. */
  messageId: string;
  /** Reverse path and forward paths: to + cc + bcc, deduplicated (domain compared case-insensitively). */
  envelope: { from: string; to: string[] };
  /** Some octet > 127 in the message: send with BODY=8BITMIME. */
  eightBit: boolean;
  /** A non-ASCII address or raw UTF-8 header: requires SMTPUTF8. */
  smtpUtf8: boolean;
  /** `bytes.length`. */
  size: number;
  /** Top-level header fields as written (unfolded), in order. */
  headers: Array<[string, string]>;
}
