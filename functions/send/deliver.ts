/**
 * The use case: check the allowlists, compose (functions/mime), submit (functions/smtp) through the warm session,
 * with ONE deadline per invocation and a bounded, jittered retry of transient failures — never when the server may
 * already have the message (`delivery: 'unknown' | 'accepted'`). An SMTP 535 re-reads the secret and retries once,
 * so a credential rotation needs no redeploy.
 */

import { MimeError } from '../mime/error.ts';
import { compose } from '../mime/index.ts';
import type { ComposedMessage, MessageInput } from '../mime/types.ts';
import { SmtpError } from '../smtp/error.ts';
import type { OutgoingMessage } from '../smtp/types.ts';
import { domainOf, isAllowed } from './allowlist.ts';
import { type FieldError, SendError, type SmtpDetail, validationFailed } from './errors.ts';
import {
  isBatchRequest,
  mimeDetail,
  type ValidSendRequest,
  validateBatchEnvelope,
  validateSendRequest,
} from './request.ts';
import type { SmtpTransport } from './transport.ts';
import type {
  BatchDeliveryResult,
  BatchItemOutcome,
  DeliveryResult,
  DeliveryTrace,
  SendPolicy,
  SmtpSettings,
  SmtpSettingsSource,
} from './types.ts';

export interface RetryPolicy {
  /** Attempts for transient failures (the 535 re-read does not count). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Do not start an attempt with less than this left before the deadline. */
  minAttemptMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 3,
  baseDelayMs: 300,
  maxDelayMs: 2000,
  minAttemptMs: 1000,
};

/** Taken off `context.getRemainingTimeInMillis()` so we answer before Lambda kills us. */
export const DEADLINE_SAFETY_MS = 1500;

export interface DeliverDeps {
  smtp: SmtpSettingsSource;
  policy: SendPolicy;
  transport: SmtpTransport;
  retry?: RetryPolicy;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface DeliverOptions {
  /** Epoch ms after which nothing more is attempted. */
  deadline: number;
  trace?: DeliveryTrace;
  /**
   * Enforce `policy.allowedRecipients` / `allowedSenders` (default true). Forms pass false: their recipients and
   * sender are fixed by configuration, never by the request.
   */
  enforcePolicy?: boolean;
}

/** `getRemainingTimeInMillis()` → absolute deadline with the safety margin. */
export function deadlineFrom(remainingMs: number, now = Date.now()): number {
  return now + Math.max(0, remainingMs - DEADLINE_SAFETY_MS);
}

/** Validate + deliver one message or a batch (whichever `input` is). */
export async function deliverRequest(
  input: unknown,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<({ kind: 'single' } & DeliveryResult) | ({ kind: 'batch' } & BatchDeliveryResult)> {
  if (isBatchRequest(input)) return { kind: 'batch', ...(await deliverBatch(input, deps, opts)) };
  return { kind: 'single', ...(await deliver(input, deps, opts)) };
}

/** Validate and deliver one message. Throws `SendError`. */
export async function deliver(
  input: unknown,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<DeliveryResult> {
  const valid = validateSendRequest(input, deps.policy.limits);
  return deliverValid(valid, deps, opts);
}

/** Deliver an already validated message (forms build one from their configuration). */
export async function deliverValid(
  valid: ValidSendRequest,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<DeliveryResult> {
  let settings = await deps.smtp.get();
  let message = prepare(valid, settings, deps.policy, opts);
  const trace = opts.trace ?? ({ attempts: 0, roundTrips: 0 } as DeliveryTrace);
  trace.recipientDomains = [...new Set(message.envelope.to.map(domainOf))];
  trace.size = message.size;
  const retry = deps.retry ?? DEFAULT_RETRY;
  let refreshed = false;
  for (let attempt = 1; ; attempt++) {
    trace.attempts++;
    try {
      const out = await deps.transport.send(settings, outgoing(message), opts.deadline);
      trace.roundTrips += out.roundTrips;
      trace.reused = out.reused;
      const result: DeliveryResult = {
        messageId: message.messageId,
        accepted: out.accepted.map((r) => r.address),
        rejected: out.rejected.map((r) => ({ address: r.address, code: r.code, message: r.message })),
      };
      return result;
    } catch (e) {
      const err = asSmtpError(e);
      trace.roundTrips += err.roundTrips ?? 0; // the failed attempt's round trips count too
      trace.smtpCode = err.code;
      trace.smtpPhase = err.phase;
      if (err.delivery === 'accepted') {
        // The server took the message; the failure came after (e.g. QUIT). Not an error for the caller.
        return { messageId: message.messageId, accepted: [...message.envelope.to], rejected: [] };
      }
      if (err.delivery === 'unknown') throw deliveryUnknown(err, message.messageId);
      if (isAuthFailure(err) && !refreshed) {
        refreshed = true;
        trace.secretRefreshed = true;
        settings = await deps.smtp.refresh();
        message = prepare(valid, settings, deps.policy, opts);
        attempt--;
        continue;
      }
      if (err.transient && attempt < retry.maxAttempts) {
        const wait = backoff(attempt, retry, deps.random);
        if (Date.now() + wait + retry.minAttemptMs < opts.deadline) {
          await (deps.sleep ?? sleep)(wait);
          continue;
        }
      }
      throw mapSmtpError(err, refreshed);
    }
  }
}

/** Validate each message and send all of them over one SMTP session; every message gets its own outcome. */
export async function deliverBatch(
  input: unknown,
  deps: DeliverDeps,
  opts: DeliverOptions,
): Promise<BatchDeliveryResult> {
  const items = validateBatchEnvelope(input, deps.policy.limits);
  let settings = await deps.smtp.get();
  const trace = opts.trace ?? ({ attempts: 0, roundTrips: 0 } as DeliveryTrace);
  const results: Array<BatchItemOutcome | undefined> = new Array(items.length).fill(undefined);
  const valid: Array<ValidSendRequest | undefined> = [];
  const prepared = new Map<number, ComposedMessage>();
  items.forEach((item, index) => {
    try {
      const v = validateSendRequest(item, deps.policy.limits, `messages[${index}]`);
      valid[index] = v;
      prepared.set(index, prepare(v, settings, deps.policy, opts));
    } catch (e) {
      results[index] = { index, status: 'rejected', error: toSendError(e).toJSON() };
    }
  });
  trace.recipientDomains = [...new Set([...prepared.values()].flatMap((m) => m.envelope.to.map(domainOf)))];
  trace.size = [...prepared.values()].reduce((n, m) => n + m.size, 0);

  const retry = deps.retry ?? DEFAULT_RETRY;
  let pending = [...prepared.keys()];
  let refreshed = false;
  for (let attempt = 1; pending.length > 0; attempt++) {
    trace.attempts++;
    const canRetry = () => {
      if (attempt >= retry.maxAttempts) return 0;
      const wait = backoff(attempt, retry, deps.random);
      return Date.now() + wait + retry.minAttemptMs < opts.deadline ? wait : 0;
    };
    let outcome: Awaited<ReturnType<SmtpTransport['sendBatch']>>;
    try {
      outcome = await deps.transport.sendBatch(
        settings,
        pending.map((i) => outgoing(prepared.get(i)!)),
        opts.deadline,
      );
    } catch (e) {
      // The session itself failed (connect, TLS, AUTH...).
      const err = asSmtpError(e);
      trace.roundTrips += err.roundTrips ?? 0;
      trace.smtpCode = err.code;
      trace.smtpPhase = err.phase;
      if (err.delivery === 'not-sent') {
        if (isAuthFailure(err) && !refreshed) {
          refreshed = true;
          trace.secretRefreshed = true;
          settings = await deps.smtp.refresh();
          for (const i of pending) prepared.set(i, prepare(valid[i]!, settings, deps.policy, opts));
          attempt--;
          continue;
        }
        const wait = err.transient ? canRetry() : 0;
        if (wait) {
          await (deps.sleep ?? sleep)(wait);
          continue;
        }
      }
      const mapped = err.delivery === 'not-sent' ? mapSmtpError(err, refreshed) : undefined;
      for (const i of pending) {
        const messageId = prepared.get(i)!.messageId;
        results[i] = mapped
          ? {
              index: i,
              status: mapped.transient ? 'not_sent' : 'rejected',
              messageId,
              error: mapped.toJSON(),
            }
          : { index: i, status: 'unknown', messageId, error: deliveryUnknown(err, messageId).toJSON() };
      }
      break;
    }
    trace.roundTrips += outcome.roundTrips;
    const again: number[] = [];
    const authFailed: number[] = [];
    outcome.results.forEach((r, j) => {
      const index = pending[j]!;
      const message = prepared.get(index)!;
      if (r.ok) {
        results[index] = {
          index,
          status: 'accepted',
          messageId: message.messageId,
          accepted: r.accepted.map((x) => x.address),
          rejected: r.rejected.map((x) => ({ address: x.address, code: x.code, message: x.message })),
        };
        return;
      }
      const err = asSmtpError(r.error);
      trace.smtpCode = err.code;
      trace.smtpPhase = err.phase;
      const failed = (status: 'rejected' | 'unknown' | 'not_sent', error: SendError) => {
        results[index] = { index, status, messageId: message.messageId, error: error.toJSON() };
      };
      if (err.delivery === 'accepted') {
        results[index] = {
          index,
          status: 'accepted',
          messageId: message.messageId,
          accepted: [...message.envelope.to],
          rejected: [],
        };
      } else if (isAuthFailure(err) && !refreshed) {
        authFailed.push(index);
        failed('rejected', mapSmtpError(err, refreshed));
      } else if (err.delivery === 'unknown') {
        failed('unknown', deliveryUnknown(err, message.messageId));
      } else if (err.transient) {
        again.push(index);
        failed('not_sent', mapSmtpError(err, refreshed));
      } else {
        failed('rejected', mapSmtpError(err, refreshed));
      }
    });
    // The client returns one result per message it was given; anything missing was not attempted.
    for (const index of pending.slice(outcome.results.length)) {
      again.push(index);
      results[index] = {
        index,
        status: 'not_sent',
        error: new SendError('smtp_unavailable', 'the session ended before this message was sent').toJSON(),
      };
    }
    if (authFailed.length > 0) {
      // The session's AUTH was refused: the secret may have rotated. Read it again, retry once.
      refreshed = true;
      trace.secretRefreshed = true;
      settings = await deps.smtp.refresh();
      for (const i of authFailed) prepared.set(i, prepare(valid[i]!, settings, deps.policy, opts));
      pending = [...authFailed, ...again];
      attempt--;
      continue;
    }
    if (again.length === 0) break;
    const wait = canRetry();
    if (!wait) break;
    await (deps.sleep ?? sleep)(wait);
    pending = again;
  }
  return { results: results.map((r, index) => r ?? notAttempted(index)) };
}

function notAttempted(index: number): BatchItemOutcome {
  return {
    index,
    status: 'not_sent',
    error: new SendError('smtp_unavailable', 'not attempted before the deadline').toJSON(),
  };
}

/** Policy checks + composition. Throws `SendError`. */
export function prepare(
  valid: ValidSendRequest,
  settings: SmtpSettings,
  policy: SendPolicy,
  opts: Pick<DeliverOptions, 'enforcePolicy'> = {},
): ComposedMessage {
  const enforce = opts.enforcePolicy ?? true;
  const sender = valid.from ?? {
    address: settings.from,
    ...(settings.fromName ? { name: settings.fromName } : {}),
  };
  if (enforce && valid.from) {
    const allowed = policy.allowedSenders ?? [settings.from];
    if (!isAllowed(valid.from.address, allowed)) {
      throw new SendError(
        'sender_not_allowed',
        `a sender at ${domainOf(valid.from.address)} is not in allowedSenders`,
        {
          errors: [{ field: 'from', code: 'sender_not_allowed', message: 'this sender is not allowed' }],
        },
      );
    }
  }
  if (enforce) {
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
    return compose(input);
  } catch (e) {
    if (e instanceof MimeError) {
      throw validationFailed([{ field: e.field, code: e.code, message: mimeDetail(e) }]);
    }
    throw e;
  }
}

function outgoing(m: ComposedMessage): OutgoingMessage {
  return { envelope: m.envelope, content: m.bytes, info: { eightBit: m.eightBit, smtpUtf8: m.smtpUtf8 } };
}

function isAuthFailure(e: SmtpError): boolean {
  return e.phase === 'auth' && e.code === 535;
}

function asSmtpError(e: unknown): SmtpError {
  if (e instanceof SmtpError) return e;
  if (e instanceof SendError) throw e;
  // Anything else came from inside the client: we cannot know whether the server has the message.
  return new SmtpError('unexpected client failure', {
    phase: 'data',
    kind: 'protocol',
    delivery: 'unknown',
    cause: e,
  });
}

function smtpDetail(e: SmtpError): SmtpDetail {
  const d: SmtpDetail = { phase: e.phase };
  if (e.code !== undefined) d.code = e.code;
  if (e.enhancedCode !== undefined) d.enhancedCode = e.enhancedCode;
  return d;
}

function describe(e: SmtpError): string {
  const code = e.code !== undefined ? `${e.code}${e.enhancedCode ? ` ${e.enhancedCode}` : ''}` : e.kind;
  return `${code} during ${e.phase}`;
}

function deliveryUnknown(e: SmtpError, messageId: string): SendError {
  return new SendError(
    'delivery_unknown',
    `The connection failed after the message was handed over (${describe(e)}); the server may have it ` +
      `(Message-ID ${messageId}). Do not retry blindly: check the recipient first.`,
    { smtp: smtpDetail(e) },
  );
}

/** SMTP failure (delivery not-sent) → stable code. */
export function mapSmtpError(e: SmtpError, afterRefresh = false): SendError {
  if (isAuthFailure(e)) {
    return new SendError(
      'configuration_error',
      `SMTP authentication failed (${describe(e)})${afterRefresh ? ' even with a freshly read secret' : ''}`,
      { smtp: smtpDetail(e) },
    );
  }
  if (e.kind === 'security') {
    return new SendError(
      'configuration_error',
      `the SMTP session was refused by a safety rule (${describe(e)})`,
      {
        smtp: smtpDetail(e),
      },
    );
  }
  if (e.kind === 'usage') {
    return new SendError(
      'smtp_rejected',
      `the message cannot be sent to this server (${describe(e)}): ${e.message}`,
      {
        smtp: smtpDetail(e),
      },
    );
  }
  if (e.transient || e.code === undefined) {
    return new SendError(
      'smtp_unavailable',
      `the mail server is unavailable (${describe(e)}); try again later`,
      {
        smtp: smtpDetail(e),
        retryAfter: e.code === undefined ? 10 : 60,
      },
    );
  }
  return new SendError('smtp_rejected', `the mail server rejected the message (${describe(e)})`, {
    smtp: smtpDetail(e),
  });
}

function toSendError(e: unknown): SendError {
  if (e instanceof SendError) return e;
  throw e;
}

/** Exponential backoff with jitter in [d/2, d]. */
export function backoff(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
