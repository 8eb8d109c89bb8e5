/** Layer 2, the message: RFC 5322 / MIME composition and address parsing. Zero runtime dependencies. */
export { mailboxDomain, parseAddressList, parseMailbox } from './address.ts';
export { compose } from './compose.ts';
export { lineBreakIn, MimeError, type MimeErrorCode } from './error.ts';
export type {
  AddressInput,
  AttachmentInput,
  ComposedMessage,
  ComposeOptions,
  Mailbox,
  MessageInput,
} from './types.ts';
