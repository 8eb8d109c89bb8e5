/**
 * The one error type of the message layer. `field` is a path into the `MessageInput`
 * (`subject`, `to[2]`, `to[2].name`, `attachments[0].filename`, `headers.X-Foo`) so callers can
 * point at the offending input; `code` is a stable machine-readable reason.
 */
export type MimeErrorCode =
  | 'header_injection'
  | 'invalid_address'
  | 'address_too_long'
  | 'invalid_domain'
  | 'smtputf8_required'
  | 'missing_recipient'
  | 'invalid_header_name'
  | 'header_not_allowed'
  | 'duplicate_header'
  | 'structural_header'
  | 'non_ascii_structured'
  | 'invalid_header_value'
  | 'line_too_long'
  | 'invalid_unicode'
  | 'invalid_content_type'
  | 'invalid_content_id'
  | 'invalid_filename'
  | 'invalid_attachment'
  | 'invalid_date'
  | 'invalid_option';

export class MimeError extends Error {
  override readonly name = 'MimeError';
  readonly field: string;
  readonly code: MimeErrorCode;

  constructor(field: string, code: MimeErrorCode, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
    this.code = code;
  }
}

/** The first CR, LF or NUL in a header-bound input, by name; `undefined` when the value is one clean line. */
export function lineBreakIn(value: string): 'CR' | 'LF' | 'NUL' | undefined {
  const bad = /[\r\n\0]/.exec(value);
  if (!bad) return undefined;
  return bad[0] === '\r' ? 'CR' : bad[0] === '\n' ? 'LF' : 'NUL';
}

/** CR, LF or NUL anywhere in a header-bound input is refused, never stripped. */
export function assertNoLineBreak(value: string, field: string): void {
  const what = lineBreakIn(value);
  if (what) throw new MimeError(field, 'header_injection', `contains ${what} (header injection refused)`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Lone surrogates cannot be encoded as UTF-8; refuse rather than replace them with U+FFFD. */
export function assertWellFormed(value: string, field: string): void {
  if (LONE_SURROGATE.test(value)) {
    throw new MimeError(field, 'invalid_unicode', 'contains a lone surrogate (not valid Unicode)');
  }
}
