/**
 * "What became of my message?": the status of a message by its Message-ID (`GET /messages/{messageId}`, direct
 * invoke `{"action":"status","messageId":…}`). Never a body or a subject; recipients as domains only unless the
 * caller is authenticated (`full`).
 */
import * as v from 'valibot';
import { domainOf } from './allowlist.ts';
import { SendError } from './errors.ts';
import type { IdempotencyPolicy, MessageStatus } from './idempotency.ts';
import { RecordStoreError } from './idempotency.ts';

/** A Message-ID as callers write it: `<id@domain>`, with or without the angle brackets. */
export const MessageIdSchema = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(3, 'must be a Message-ID like <id@example.com>'),
  v.maxLength(998, 'at most 998 characters'),
  v.regex(/^<?[!-;=?-~]+@[!-;=?-~]+>?$/u, 'must be a Message-ID like <id@example.com>'),
  v.transform((s) => (s.startsWith('<') ? s : `<${s}`) + (s.endsWith('>') ? '' : '>')),
);

/** The status as answered: the record, with recipients reduced to their domains unless `full`. */
export type StatusView = MessageStatus;

export async function messageStatus(
  policy: IdempotencyPolicy | undefined,
  rawMessageId: unknown,
  opts: { full: boolean },
): Promise<StatusView> {
  const parsed = v.safeParse(MessageIdSchema, rawMessageId);
  if (!parsed.success) {
    throw new SendError('validation_failed', `messageId: ${parsed.issues[0].message}`, {
      errors: [{ field: 'messageId', code: 'invalid', message: parsed.issues[0].message }],
    });
  }
  if (!policy) {
    throw new SendError(
      'message_not_found',
      'this endpoint keeps no message status (idempotency is turned off)',
    );
  }
  let status: MessageStatus | undefined;
  try {
    status = await policy.store.status(parsed.output);
  } catch (e) {
    if (!(e instanceof RecordStoreError)) throw e;
    throw new SendError('idempotency_unavailable', 'the message status cannot be read right now', {
      cause: e,
    });
  }
  if (!status) {
    throw new SendError(
      'message_not_found',
      'no status for this Message-ID: unknown, expired, or the message was never handed to the mail server',
    );
  }
  return opts.full ? status : domainsOnly(status);
}

function domainsOnly(s: MessageStatus): StatusView {
  // The server's reply text may repeat an address: only its code and queue id are kept.
  const { reply, ...rest } = s;
  return {
    ...rest,
    ...(reply
      ? { reply: { code: reply.code, text: '', ...(reply.queueId ? { queueId: reply.queueId } : {}) } }
      : {}),
    accepted: s.accepted.map((r) => ({ ...r, address: `*@${domainOf(r.address)}` })),
    rejected: s.rejected.map((r) => ({ ...r, address: `*@${domainOf(r.address)}`, message: '' })),
  };
}
