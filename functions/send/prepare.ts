/**
 * One validated request → one composed message: the sender/recipient allowlists, then composition, then the DKIM
 * signature(s) when the secret has `dkim` (mime/dkim.ts).
 */
import { signMessage } from '../mime/dkim.ts';
import { MimeError } from '../mime/error.ts';
import { compose } from '../mime/index.ts';
import type { ComposedMessage, MessageInput } from '../mime/types.ts';
import { domainOf, isAllowed } from './allowlist.ts';
import { type FieldError, SendError, validationFailed } from './errors.ts';
import { mimeDetail, type ValidSendRequest } from './request.ts';
import type { SendPolicy, SmtpSettings } from './types.ts';

export interface PrepareOptions {
  /**
   * Enforce `policy.allowedRecipients` / `allowedSenders` (default true). Forms pass false: their recipients and
   * sender are fixed by configuration, never by the request.
   */
  enforcePolicy?: boolean;
}

/** Policy checks + composition. Throws `SendError`. */
export function prepare(
  valid: ValidSendRequest,
  settings: SmtpSettings,
  policy: SendPolicy,
  opts: PrepareOptions = {},
): ComposedMessage {
  if (opts.enforcePolicy ?? true) {
    checkSender(valid, settings, policy);
    checkRecipients(valid, policy);
  }
  const sender = valid.from ?? {
    address: settings.from,
    ...(settings.fromName ? { name: settings.fromName } : {}),
  };
  const input: MessageInput = { from: sender, subject: valid.subject };
  if (valid.to.length) input.to = valid.to;
  if (valid.cc.length) input.cc = valid.cc;
  if (valid.bcc.length) input.bcc = valid.bcc;
  if (valid.replyTo.length) input.replyTo = valid.replyTo;
  if (valid.text !== undefined) input.text = valid.text;
  if (valid.html !== undefined) input.html = valid.html;
  if (valid.attachments.length) input.attachments = valid.attachments;
  if (Object.keys(valid.headers).length) input.headers = valid.headers;
  try {
    const composed = compose(input);
    return settings.dkim ? signMessage(composed, settings.dkim) : composed;
  } catch (e) {
    if (e instanceof MimeError) {
      throw validationFailed([{ field: e.field, code: e.code, message: mimeDetail(e) }]);
    }
    throw e;
  }
}

function checkSender(valid: ValidSendRequest, settings: SmtpSettings, policy: SendPolicy): void {
  if (!valid.from) return;
  const allowed = policy.allowedSenders ?? [settings.from];
  if (isAllowed(valid.from.address, allowed)) return;
  throw new SendError(
    'sender_not_allowed',
    `a sender at ${domainOf(valid.from.address)} is not in allowedSenders`,
    {
      errors: [{ field: 'from', code: 'sender_not_allowed', message: 'this sender is not allowed' }],
    },
  );
}

function checkRecipients(valid: ValidSendRequest, policy: SendPolicy): void {
  const refused: FieldError[] = [];
  for (const [name, list] of [
    ['to', valid.to],
    ['cc', valid.cc],
    ['bcc', valid.bcc],
  ] as const) {
    list.forEach((m, i) => {
      if (!isAllowed(m.address, policy.allowedRecipients)) {
        refused.push({
          field: list.length > 1 ? `${name}[${i}]` : name,
          code: 'recipient_not_allowed',
          message: `${domainOf(m.address)} is not an allowed recipient domain/address`,
        });
      }
    });
  }
  if (refused.length) {
    throw new SendError('recipient_not_allowed', `${refused.length} recipient(s) not allowed`, {
      errors: refused,
    });
  }
}
