/**
 * One validated request → one composed message: the sender/recipient allowlists, then composition, then the DKIM
 * signature(s) when the secret has `dkim` (mime/dkim.ts).
 */
import { signMessage } from '../mime/dkim.ts';
import { MimeError } from '../mime/error.ts';
import { compose } from '../mime/index.ts';
import type { ComposedMessage, Mailbox, MessageInput } from '../mime/types.ts';
import { isNonAscii } from '../smtp/command.ts';
import { domainOf, isAllowed } from './allowlist.ts';
import { type FieldError, SendError, validationFailed } from './errors.ts';
import { mimeDetail, type ValidSendRequest } from './request.ts';
import type { SendPolicy, SmtpSettings } from './types.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export interface PrepareOptions {
  /**
   * Enforce `policy.allowedRecipients` / `allowedSenders` (default true). Forms pass false: their recipients and
   * sender are fixed by configuration, never by the request.
   */
  enforcePolicy?: boolean;
}

/**
 * A composed message, and for a request whose Reply-To is optional (`replyToOptional`) and needs SMTPUTF8, the
 * same message without that Reply-To (same Message-ID and Date), for a server without SMTPUTF8.
 */
export interface PreparedMessage extends ComposedMessage {
  withoutSmtpUtf8?: ComposedMessage;
}

/** Policy checks + composition. Throws `SendError`. */
export function prepare(
  valid: ValidSendRequest,
  settings: SmtpSettings,
  policy: SendPolicy,
  opts: PrepareOptions = {},
): PreparedMessage {
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
    const sign = (m: ComposedMessage) => (settings.dkim ? signMessage(m, settings.dkim) : m);
    const random = recordedRandom();
    const now = new Date();
    const composed: PreparedMessage = sign(compose(input, { random: random.record, now: () => now }));
    const utf8 = (m: Mailbox) => isNonAscii(m.address.slice(0, m.address.lastIndexOf('@')));
    if (valid.replyToOptional && composed.smtpUtf8 && valid.replyTo.some(utf8)) {
      const replyTo = valid.replyTo.filter((m) => !utf8(m));
      const { replyTo: _, ...rest } = input;
      const alt = compose(replyTo.length ? { ...rest, replyTo } : rest, {
        random: random.replay,
        now: () => now,
      });
      if (!alt.smtpUtf8) composed.withoutSmtpUtf8 = sign(alt);
    }
    return composed;
  } catch (e) {
    if (e instanceof MimeError) {
      throw validationFailed([{ field: e.field, code: e.code, message: mimeDetail(e) }]);
    }
    throw e;
  }
}

/** A random source that records what it gave, and one that gives the same bytes again (same Message-ID). */
function recordedRandom(): { record: (n: number) => Uint8Array; replay: (n: number) => Uint8Array } {
  const given: Uint8Array[] = [];
  let next = 0;
  return {
    record: (n) => {
      const b = crypto().randomBytes(n);
      given.push(b);
      return b;
    },
    replay: (n) => (given[next]?.length === n ? given[next++]! : crypto().randomBytes(n)),
  };
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
