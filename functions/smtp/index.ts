/**
 * SMTP client (RFC 5321 + PIPELINING, CHUNKING, STARTTLS, AUTH, SIZE, 8BITMIME, SMTPUTF8) over node:net/node:tls.
 * Zero runtime dependencies. See README.md in this folder.
 */

export {
  type BatchOutcome,
  type SendOutcome,
  SmtpClient,
  type SmtpClientOptions,
  sendBatch,
  sendMail,
  type VerifyResult,
  verify,
} from './client.ts';
export { SmtpError, type SmtpErrorKind } from './error.ts';
export * from './types.ts';
