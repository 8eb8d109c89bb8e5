/**
 * Twin of functions/mime for the cold-start comparison: what a handler written with nodemailer does.
 * It does not build bytes itself — nodemailer composes the message while sending (its MailComposer,
 * inside `transport.sendMail`), so `compose` only records the nodemailer mail options for the
 * message and hands them to the twin SMTP client (./smtp.ts) through `mailOptionsFor`.
 * Address parsing is nodemailer's `addressparser`. `MimeError` is the product's (the use case
 * checks `instanceof` on it), so validation errors keep their shape.
 * The cold-start benchmark builds this file into the frozen handler tree (./frozen.ts), so it may only import
 * what `functions/mime` exported at TWIN_COMMIT.
 */
import { randomUUID } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { lineBreakIn, MimeError } from '../../functions/mime/error.ts';
import type {
  AddressInput,
  ComposedMessage,
  ComposeOptions,
  Mailbox,
  MessageInput,
} from '../../functions/mime/types.ts';

// The product's own line-break check (a validation rule of the handler, not composition): the handler imports it
// from the message layer, so the twin's message layer passes it through.
export { lineBreakIn, MimeError };

const pending = new WeakMap<Uint8Array, SendMailOptions>();

/** The nodemailer mail options recorded by `compose` for this content placeholder. */
export function mailOptionsFor(content: Uint8Array): SendMailOptions | undefined {
  return pending.get(content);
}

function list(a: AddressInput | AddressInput[] | undefined): Mailbox[] {
  if (a === undefined) return [];
  return (Array.isArray(a) ? a : [a]).map((x) => (typeof x === 'string' ? parseMailbox(x) : x));
}

export function compose(input: MessageInput, _opts?: ComposeOptions): ComposedMessage {
  const from = list(input.from)[0]!;
  const to = list(input.to);
  const cc = list(input.cc);
  const bcc = list(input.bcc);
  const domain = input.messageIdDomain ?? from.address.split('@').pop() ?? 'localhost';
  const messageId = `<${randomUUID()}@${domain}>`;
  const seen = new Set<string>();
  const envelopeTo: string[] = [];
  for (const m of [...to, ...cc, ...bcc]) {
    const key = m.address.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      envelopeTo.push(m.address);
    }
  }
  const mail: SendMailOptions = {
    from,
    subject: input.subject,
    messageId,
    envelope: { from: from.address, to: envelopeTo },
  };
  if (to.length) mail.to = to;
  if (cc.length) mail.cc = cc;
  if (bcc.length) mail.bcc = bcc;
  const replyTo = list(input.replyTo);
  if (replyTo.length) mail.replyTo = replyTo;
  if (input.text !== undefined) mail.text = input.text;
  if (input.html !== undefined) mail.html = input.html;
  if (input.headers) mail.headers = input.headers;
  if (input.date) mail.date = input.date;
  if (input.attachments?.length) {
    mail.attachments = input.attachments.map((a) => ({
      filename: a.filename,
      content: Buffer.from(a.content),
      ...(a.contentType ? { contentType: a.contentType } : {}),
      ...(a.contentId ? { cid: a.contentId } : {}),
      ...(a.disposition ? { contentDisposition: a.disposition } : {}),
    }));
  }
  // Size is only an estimate here (nodemailer knows it after building); used for logging only.
  const size =
    (input.text?.length ?? 0) +
    (input.html?.length ?? 0) +
    (input.attachments ?? []).reduce((n, a) => n + Math.ceil(a.content.length / 3) * 4, 0);
  const bytes = new Uint8Array(0);
  pending.set(bytes, mail);
  return {
    bytes,
    messageId,
    envelope: { from: from.address, to: envelopeTo },
    eightBit: false,
    smtpUtf8: false,
    size,
    headers: [],
  };
}

export function parseAddressList(s: string): Mailbox[] {
  const parsed = addressparser(s, { flatten: true });
  if (!parsed.length) throw new MimeError('address', 'invalid_address', 'is not a valid address');
  return parsed.map((p) => (p.name ? { address: p.address, name: p.name } : { address: p.address }));
}

export function parseMailbox(s: string): Mailbox {
  const parsed = addressparser(s, { flatten: true });
  const first = parsed[0];
  if (parsed.length !== 1 || !first || !/^[^\s@]+@[^\s@]+$/u.test(first.address)) {
    throw new MimeError('address', 'invalid_address', 'is not a valid address');
  }
  return first.name ? { address: first.address, name: first.name } : { address: first.address };
}
